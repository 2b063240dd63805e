using System.Net;
using Tunnel2.Testing;

namespace Tunnel2.FaultProxy.Tests;

/// <summary>The text forms a script uses: toxic settings and control commands.</summary>
public sealed class ControlCommandsTests : IAsyncLifetime
{
    private FaultProxy _proxy = null!;

    public async Task InitializeAsync() => _proxy = await FaultProxy.StartAsync(new IPEndPoint(IPAddress.Loopback, 9));

    public Task DisposeAsync() => _proxy.DisposeAsync().AsTask().DefaultTimeout();

    [Theory]
    [InlineData("250", 250)]
    [InlineData("250ms", 250)]
    [InlineData("2s", 2_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("1m", 60_000)]
    [InlineData("0", 0)]
    public void ParseDuration_Units(string text, int milliseconds)
        => Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), ToxicSyntax.ParseDuration(text));

    [Theory]
    [InlineData("1500", 1_500)]
    [InlineData("64k", 65_536)]
    [InlineData("64KiB", 65_536)]
    [InlineData("1m", 1_048_576)]
    [InlineData("2g", 2_147_483_648)]
    public void ParseSize_Units(string text, long bytes) => Assert.Equal(bytes, ToxicSyntax.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("ms")]
    [InlineData("10 parsecs")]
    [InlineData("-5")]
    public void ParseDuration_Garbage_FormatException(string text) => Assert.Throws<FormatException>(() => ToxicSyntax.ParseDuration(text));

    [Fact]
    public void Direction_SetsEveryToxic()
    {
        var reply = ControlCommands.Execute(_proxy, "upstream latency=100ms jitter=20ms bandwidth=64k reset-after=1k limit-data=2k slice=16 slice-delay=5ms half-open=on");

        var up = _proxy.Upstream;
        Assert.Equal(TimeSpan.FromMilliseconds(100), up.Latency);
        Assert.Equal(TimeSpan.FromMilliseconds(20), up.Jitter);
        Assert.Equal(65_536, up.BandwidthBytesPerSecond);
        Assert.Equal(1_024, up.ResetAfterBytes);
        Assert.Equal(2_048, up.LimitDataBytes);
        Assert.Equal(16, up.SliceSize);
        Assert.Equal(TimeSpan.FromMilliseconds(5), up.SliceDelay);
        Assert.True(up.HalfOpen);
        Assert.Equal(TimeSpan.Zero, _proxy.Downstream.Latency);
        Assert.Contains("upstream: latency=100ms", reply, StringComparison.Ordinal);
    }

    [Fact]
    public void Both_AppliesToEachDirection_ClearRemoves()
    {
        ControlCommands.Execute(_proxy, "both stall=10s reset-after=5");
        Assert.NotNull(_proxy.Upstream.StalledUntil);
        Assert.Equal(5, _proxy.Downstream.ResetAfterBytes);

        ControlCommands.Execute(_proxy, "downstream reset-after=off");
        Assert.Null(_proxy.Downstream.ResetAfterBytes);
        Assert.Equal(5, _proxy.Upstream.ResetAfterBytes);

        ControlCommands.Execute(_proxy, "refuse on");
        Assert.True(_proxy.RefuseNewConnections);
        ControlCommands.Execute(_proxy, "clear");
        Assert.Null(_proxy.Upstream.StalledUntil);
        Assert.Null(_proxy.Upstream.ResetAfterBytes);
        Assert.False(_proxy.RefuseNewConnections);
    }

    [Theory]
    [InlineData("upstream latency=100ms bogus=1")]
    [InlineData("upstream latency=fast")]
    [InlineData("upstream")]
    [InlineData("break sideways")]
    [InlineData("refuse maybe")]
    [InlineData("explode")]
    public void BadCommand_FormatException_NothingChanged(string line)
    {
        Assert.Throws<FormatException>(() => ControlCommands.Execute(_proxy, line));

        Assert.Equal(TimeSpan.Zero, _proxy.Upstream.Latency);
        Assert.False(_proxy.RefuseNewConnections);
    }

    [Fact]
    public void Status_NamesBothDirections() =>
        Assert.Matches("(?s)listening 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:9.*upstream: none.*downstream: none", ControlCommands.Execute(_proxy, "status"));

    [Theory]
    [InlineData("reset", BreakMode.Reset)]
    [InlineData("close", BreakMode.Close)]
    [InlineData("half-open", BreakMode.HalfOpen)]
    public void ParseBreakMode_Names(string text, BreakMode mode) => Assert.Equal(mode, ControlCommands.ParseBreakMode(text));
}
