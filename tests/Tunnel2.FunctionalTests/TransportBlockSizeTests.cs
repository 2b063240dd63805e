using Microsoft.AspNetCore.Connections;
using Tunnel2.Server.Hosting;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests;

/// <summary>
/// Kestrel's socket transport takes its buffers from the server's own pool factory (docs/adr/0012): the factory must
/// be the one in the container, and Kestrel must actually ask it for a pool when it starts listening.
/// </summary>
public sealed class TransportBlockSizeTests
{
    [Fact]
    public async Task Default_KestrelTakesItsPoolFromTheTransportFactory_16KiB()
    {
        await using var server = TunnelServerHost.Build(["--urls", "http://127.0.0.1:0"]);
        await server.StartAsync().DefaultTimeout();

        var factory = Assert.IsType<TransportMemoryPoolFactory>(server.Services.GetService(typeof(IMemoryPoolFactory<byte>)));
        Assert.Equal(16 * 1024, factory.BlockSize);
        Assert.Equal(64 * 1024, factory.LargeBlockSize);
        Assert.Equal(256, factory.MaxLargeBlocks);
        Assert.True(factory.PoolsCreated >= 1, "Kestrel started listening without asking the factory for a pool.");
    }

    [Fact]
    public async Task ConfiguredLargeBlocks_AreUsed_AndZeroMemoryTurnsThemOff()
    {
        await using var server = TunnelServerHost.Build(
            ["--urls", "http://127.0.0.1:0", "--Tunnel:TransportLargeBlockSize", "131072", "--Tunnel:TransportLargeBlockMemory", "1048576"]);
        await using var off = TunnelServerHost.Build(["--urls", "http://127.0.0.1:0", "--Tunnel:TransportLargeBlockMemory", "0"]);

        var factory = Assert.IsType<TransportMemoryPoolFactory>(server.Services.GetService(typeof(IMemoryPoolFactory<byte>)));
        var offFactory = Assert.IsType<TransportMemoryPoolFactory>(off.Services.GetService(typeof(IMemoryPoolFactory<byte>)));
        Assert.Equal(128 * 1024, factory.LargeBlockSize);
        Assert.Equal(8, factory.MaxLargeBlocks);
        Assert.Equal(0, offFactory.MaxLargeBlocks);
    }

    [Fact]
    public async Task Configured_BlockSizeIsUsed()
    {
        await using var server = TunnelServerHost.Build(["--urls", "http://127.0.0.1:0", "--Tunnel:TransportBlockSize", "65536"]);
        await server.StartAsync().DefaultTimeout();

        var factory = Assert.IsType<TransportMemoryPoolFactory>(server.Services.GetService(typeof(IMemoryPoolFactory<byte>)));
        Assert.Equal(64 * 1024, factory.BlockSize);
    }

    [Fact]
    public async Task BlockSize4096_KeepsKestrelsOwnPool()
    {
        await using var server = TunnelServerHost.Build(["--urls", "http://127.0.0.1:0", "--Tunnel:TransportBlockSize", "4096"]);
        await server.StartAsync().DefaultTimeout();

        Assert.IsNotType<TransportMemoryPoolFactory>(server.Services.GetService(typeof(IMemoryPoolFactory<byte>)));
    }

    [Fact]
    public void OutOfRange_ServerRefusesToStart_NamingTheSetting()
    {
        // The options are validated as the app is composed (its endpoints read them), before anything listens.
        var failure = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(
            () => TunnelServerHost.Build(["--urls", "http://127.0.0.1:0", "--Tunnel:TransportBlockSize", "100"]));

        Assert.Contains("Tunnel:TransportBlockSize must be between 4096", failure.Message, StringComparison.Ordinal);
    }
}
