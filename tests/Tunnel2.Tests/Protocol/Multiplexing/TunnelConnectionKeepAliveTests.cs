using Microsoft.Extensions.Time.Testing;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>Keep-alive on fake time: PING after a quiet interval, death after a silent timeout.</summary>
public class TunnelConnectionKeepAliveTests
{
    private static readonly TimeSpan s_interval = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    private readonly ITestOutputHelper _output;
    private readonly FakeTimeProvider _time = new();

    public TunnelConnectionKeepAliveTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task KeepAlive_QuietForInterval_SendsPingAndMeasuresRoundTrip()
    {
        await using var peer = await StartAsync();

        _time.Advance(s_interval);

        var ping = await peer.ExpectAsync(FrameType.Ping, withLength: 8, withFlags: FrameFlags.None, withStreamId: 0);
        Assert.Null(peer.Connection.RoundTripTime);

        _time.Advance(TimeSpan.FromMilliseconds(250));
        await peer.SendPingAsync(ping.PingOpaque, ack: true);
        await peer.ExpectNothingMoreAsync();

        Assert.Equal(TimeSpan.FromMilliseconds(250), peer.Connection.RoundTripTime);
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task KeepAlive_SilentForTimeout_DeclaresPeerDeadWithGoAway()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);

        _time.Advance(s_interval);
        await peer.ExpectAsync(FrameType.Ping, withFlags: FrameFlags.None);

        // The PING goes unanswered and nothing else arrives.
        _time.Advance(s_timeout - s_interval);

        await peer.ExpectGoAwayAsync(TunnelErrorCode.ConnectionLost);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.ConnectionLost, peer.Connection.CloseErrorCode);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => stream.ReadHeadersAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.ConnectionLost, ex.ErrorCode);
    }

    [Fact]
    public async Task KeepAlive_PeerKeepsTalking_NeverDeclaredDead()
    {
        await using var peer = await StartAsync();

        // Three timeouts' worth of time, with a frame from the peer every 9 s: never silent for 10 s.
        for (var i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(9));
            await peer.ExpectNothingMoreAsync();
        }

        Assert.False(peer.Connection.IsClosing);
        Assert.Null(peer.Connection.RoundTripTime);
    }

    [Fact]
    public async Task KeepAlive_AnsweredPings_KeepTheConnectionAlive()
    {
        await using var peer = await StartAsync();

        for (var i = 0; i < 5; i++)
        {
            _time.Advance(s_interval);
            var ping = await peer.ExpectAsync(FrameType.Ping, withFlags: FrameFlags.None);
            await peer.SendPingAsync(ping.PingOpaque, ack: true);
            await peer.ExpectNothingMoreAsync();
        }

        // 50 s have passed, more than the 30 s timeout, but the peer answered every PING.
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task MinRoundTrip_IsAWindowedMinimum_APathThatGotSlowerIsSeenWithinItsLifetime()
    {
        await using var peer = await StartAsync();

        // A quiet, fast path.
        Assert.Equal(TimeSpan.FromMilliseconds(1), await SampleRoundTripAsync(peer, TimeSpan.FromMilliseconds(1)));

        // A slower sample soon after does not replace the minimum (it may be queueing behind data)...
        _time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromMilliseconds(1), await SampleRoundTripAsync(peer, TimeSpan.FromMilliseconds(200)));
        Assert.Equal(TimeSpan.FromMilliseconds(200), peer.Connection.RoundTripTime);

        // ...but once the minimum is older than its lifetime, the path's current latency takes over, so window growth
        // sizes for the path as it is now (a 1 ms minimum on a 150 ms path would never let a window grow).
        _time.Advance(TunnelConnection.MinRoundTripLifetime - TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromMilliseconds(150), await SampleRoundTripAsync(peer, TimeSpan.FromMilliseconds(150)));
        Assert.False(peer.Connection.IsClosing);
    }

    /// <summary>One RTT probe answered after <paramref name="roundTrip"/>; returns the connection's minimum afterwards.</summary>
    private async Task<TimeSpan?> SampleRoundTripAsync(RawTunnelPeer peer, TimeSpan roundTrip)
    {
        peer.Connection.RequestRttSample();
        var ping = await peer.ExpectAsync(FrameType.Ping, withFlags: FrameFlags.None);
        _time.Advance(roundTrip);
        await peer.SendPingAsync(ping.PingOpaque, ack: true);
        await peer.PingFenceAsync();
        return peer.Connection.MinRoundTripTime;
    }

    private async Task<RawTunnelPeer> StartAsync()
    {
        var peer = RawTunnelPeer.Start(_output, timeProvider: _time, configure: limits =>
        {
            limits.KeepAliveInterval = s_interval;
            limits.KeepAliveTimeout = s_timeout;
        });
        await peer.HandshakeAsync();
        return peer;
    }
}
