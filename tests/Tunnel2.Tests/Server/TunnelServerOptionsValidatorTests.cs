using Tunnel2.Server;

namespace Tunnel2.Tests.Server;

public sealed class TunnelServerOptionsValidatorTests
{
    [Fact]
    public void Validate_Defaults_Succeed()
        => Assert.True(new TunnelServerOptionsValidator().Validate(null, new TunnelServerOptions()).Succeeded);

    [Fact]
    public void Validate_BadToken_NamesEachProblem()
    {
        var options = new TunnelServerOptions();
        var token = new TunnelTokenOptions { Name = "", Sha256 = "abc" };
        token.Sessions.Add("not-a-guid");
        options.Tokens.Add(token);
        options.UplinkPath = "/session/connect";

        var result = new TunnelServerOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToArray();
        Assert.Contains(failures, f => f.Contains("Tunnel:Tokens:0:Name", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:Tokens:0:Sha256", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("not-a-guid", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkPath", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1024)]
    [InlineData(2 * 1024 * 1024)]
    public void Validate_TransportBlockSizeOutOfRange_NamesIt(int size)
    {
        var result = new TunnelServerOptionsValidator().Validate(null, new TunnelServerOptions { TransportBlockSize = size });

        Assert.Contains(result.Failures!, f => f.Contains("Tunnel:TransportBlockSize must be between 4096", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(8 * 1024, 16L * 1024 * 1024, "Tunnel:TransportLargeBlockSize must be between Tunnel:TransportBlockSize (16384)")]
    [InlineData(2 * 1024 * 1024, 16L * 1024 * 1024, "Tunnel:TransportLargeBlockSize must be between Tunnel:TransportBlockSize (16384)")]
    [InlineData(64 * 1024, -1L, "Tunnel:TransportLargeBlockMemory must be between 0")]
    [InlineData(64 * 1024, 2L * 1024 * 1024 * 1024, "Tunnel:TransportLargeBlockMemory must be between 0")]
    public void Validate_LargeTransportBlocksOutOfRange_NamesTheSetting(int largeSize, long largeMemory, string expected)
    {
        var options = new TunnelServerOptions { TransportLargeBlockSize = largeSize, TransportLargeBlockMemory = largeMemory };

        var result = new TunnelServerOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_DefaultTransportBlocks_Pass()
    {
        var result = new TunnelServerOptionsValidator().Validate(null, new TunnelServerOptions());

        Assert.DoesNotContain(result.Failures ?? [], f => f.Contains("Transport", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_DuplicateTokenNames_Fails()
    {
        var options = new TunnelServerOptions();
        options.Tokens.Add(new TunnelTokenOptions { Name = "a", Sha256 = new string('0', 64) });
        options.Tokens.Add(new TunnelTokenOptions { Name = "a", Sha256 = new string('1', 64) });

        var result = new TunnelServerOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.Contains("used twice", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_UplinkPreAuth_NamesEachProblem()
    {
        var options = new TunnelServerOptions { UplinkPath = "/tunnel/{id}", UplinkListenUrl = "ftp://0.0.0.0:12002" };
        options.UplinkPreAuth.MaxBytes = 100;
        options.UplinkPreAuth.Timeout = TimeSpan.Zero;

        var failures = new TunnelServerOptionsValidator().Validate(null, options).Failures!.ToArray();

        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkPath must be a literal path", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkPreAuth:MaxBytes", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkPreAuth:Timeout", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkListenUrl must be", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:PublicBaseUrl must be set", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("http://0.0.0.0:12002")]
    [InlineData("http://*:12002")]
    [InlineData("https://127.0.0.1:0")]
    public void Validate_UplinkListenUrl_WithAPublicBaseUrl_Succeeds(string url)
    {
        var options = new TunnelServerOptions { UplinkListenUrl = url, PublicBaseUrl = "https://tunnel.example.com" };

        Assert.True(new TunnelServerOptionsValidator().Validate(null, options).Succeeded);
    }
}
