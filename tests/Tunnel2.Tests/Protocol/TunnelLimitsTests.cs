using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Tests.Protocol;

public class TunnelLimitsTests
{
    [Fact]
    public void Defaults_AreTheDocumentedOnes()
    {
        var limits = new TunnelLimits();

        // docs/protocol.md §7.
        Assert.Equal(64 * 1024, limits.MaxFrameSize);
        Assert.Equal(1000, limits.MaxConcurrentStreams);
        Assert.Equal(1024 * 1024, limits.InitialStreamWindowSize);
        Assert.Equal(16 * 1024 * 1024, limits.ConnectionWindowSize);
        Assert.Equal(64 * 1024, limits.MaxHeaderListSize);
        Assert.Equal(TimeSpan.FromSeconds(10), limits.KeepAliveInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), limits.KeepAliveTimeout);
        Assert.Equal(10_000, limits.MaxQueuedControlFrames);
        Assert.Equal(new TunnelSettings(1000, 1024 * 1024, 64 * 1024, 64 * 1024), limits.ToSettings());
    }

    [Theory]
    [InlineData(nameof(TunnelLimits.MaxFrameSize), (16 * 1024) - 1)]
    [InlineData(nameof(TunnelLimits.MaxFrameSize), (1024 * 1024) + 1)]
    [InlineData(nameof(TunnelLimits.MaxConcurrentStreams), 0)]
    [InlineData(nameof(TunnelLimits.InitialStreamWindowSize), (16 * 1024) - 1)]
    [InlineData(nameof(TunnelLimits.ConnectionWindowSize), (64 * 1024) - 1)]
    [InlineData(nameof(TunnelLimits.MaxHeaderListSize), 1023)]
    [InlineData(nameof(TunnelLimits.MaxQueuedControlFrames), 15)]
    public void Setter_OutOfRange_Throws(string property, int value)
    {
        var limits = new TunnelLimits();
        var setter = typeof(TunnelLimits).GetProperty(property)!;

        var ex = Assert.Throws<System.Reflection.TargetInvocationException>(() => setter.SetValue(limits, value));

        Assert.IsType<ArgumentOutOfRangeException>(ex.InnerException);
    }

    [Theory]
    [InlineData(nameof(TunnelLimits.MaxFrameSize), 16 * 1024)]
    [InlineData(nameof(TunnelLimits.MaxFrameSize), 1024 * 1024)]
    [InlineData(nameof(TunnelLimits.InitialStreamWindowSize), int.MaxValue)]
    [InlineData(nameof(TunnelLimits.ConnectionWindowSize), 64 * 1024)]
    [InlineData(nameof(TunnelLimits.MaxQueuedControlFrames), 16)]
    public void Setter_AtBound_Accepted(string property, int value)
    {
        var limits = new TunnelLimits();
        var setter = typeof(TunnelLimits).GetProperty(property)!;

        setter.SetValue(limits, value);

        Assert.Equal(value, setter.GetValue(limits));
    }

    [Fact]
    public void KeepAlive_ZeroOrNegative_Throws()
    {
        var limits = new TunnelLimits();

        Assert.Throws<ArgumentOutOfRangeException>(() => limits.KeepAliveInterval = TimeSpan.Zero);
        Assert.Throws<ArgumentOutOfRangeException>(() => limits.KeepAliveTimeout = TimeSpan.FromSeconds(-1));
    }
}
