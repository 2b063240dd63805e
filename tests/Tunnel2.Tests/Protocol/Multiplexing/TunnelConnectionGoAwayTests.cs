using System.Text;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>GOAWAY: graceful drain and error shutdown (docs/protocol.md §5.4).</summary>
public class TunnelConnectionGoAwayTests
{
    private readonly ITestOutputHelper _output;

    public TunnelConnectionGoAwayTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task GoAway_NoStreams_SendsGoAwayNoErrorAndCloses()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        peer.Connection.GoAway("maintenance");

        var goAway = await peer.ExpectGoAwayAsync(TunnelErrorCode.NoError, lastStreamId: 0);
        Assert.Equal("maintenance", Encoding.UTF8.GetString(goAway.Payload.AsSpan(8)));
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.NoError, peer.Connection.CloseErrorCode);
    }

    [Fact]
    public async Task GoAway_WithOpenStreams_RefusesNewStreamsAndClosesWhenTheLastEnds()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        await peer.SendHeadersAsync(3, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        var peer1 = await peer.Streams!.AcceptAsync();
        var peer3 = await peer.Streams.AcceptAsync();
        Assert.True(peer.Connection.TryOpenStream(out var local));
        Assert.True(local.SendHead(TunnelStreamTestExtensions.RequestHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);

        peer.Connection.GoAway("draining");

        // The last stream id the peer opened tells it which of its streams will still be served.
        await peer.ExpectGoAwayAsync(TunnelErrorCode.NoError, lastStreamId: 3);
        Assert.True(peer.Connection.IsClosing);
        Assert.False(peer.Connection.TryOpenStream(out _));

        // A stream the peer opened after our GOAWAY is refused, so the peer may retry it elsewhere.
        await peer.SendHeadersAsync(5, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        await peer.ExpectResetAsync(5, TunnelErrorCode.RefusedStream);
        Assert.Equal(2, peer.Streams.OpenedCount);

        // Streams in flight finish normally.
        Assert.True(peer1.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        Assert.True(peer3.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.EndStream, withStreamId: 1);
        await peer.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.EndStream, withStreamId: 3);
        await peer.ExpectNothingMoreAsync();
        Assert.False(peer.Connection.IsClosed);

        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead(), endStream: true);

        // The last stream ended: the connection closes by itself, without a second GOAWAY.
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.NoError, peer.Connection.CloseErrorCode);
        Assert.Equal(200, (await local.ReadHeadAsync()).Status);
    }

    [Fact]
    public async Task GoAway_Twice_SendsOneGoAway()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        await peer.Streams!.AcceptAsync();

        peer.Connection.GoAway("first");
        peer.Connection.GoAway("second");

        await peer.ExpectGoAwayAsync(TunnelErrorCode.NoError, lastStreamId: 1);
        await peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task GOAWAY_FromPeer_LocalStreamsAboveLastIdFailAsRefused()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        var streams = new List<TunnelStream>();
        for (var i = 0; i < 3; i++)
        {
            Assert.True(peer.Connection.TryOpenStream(out var stream));
            Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead(), endStream: true));
            await peer.ExpectAsync(FrameType.Headers, withStreamId: stream.StreamId);
            streams.Add(stream);
        }

        await peer.SendGoAwayAsync(lastStreamId: 2, TunnelErrorCode.NoError, "restarting");

        // Streams 4 and 6 were never processed by the peer: refused, so the caller can retry them on another uplink.
        foreach (var refused in streams.Skip(1))
        {
            var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => refused.ReadHeadersAsync().AsTask().DefaultTimeout());
            Assert.Equal(TunnelErrorCode.RefusedStream, ex.ErrorCode);
            Assert.False(ex.ResetByPeer);
        }

        // No RESET for them (the peer never knew them) and no new streams; stream 2 carries on.
        await peer.ExpectNothingMoreAsync();
        Assert.True(peer.Connection.IsClosing);
        Assert.False(peer.Connection.TryOpenStream(out _));
        Assert.Equal(1, peer.Connection.ActiveStreamCount);

        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead(), endStream: true);
        Assert.Equal(200, (await streams[0].ReadHeadAsync()).Status);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.NoError, peer.Connection.CloseErrorCode);
    }

    [Fact]
    public async Task GOAWAY_FromPeerWithError_AbortsStreamsAndCloses()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);

        await peer.SendGoAwayAsync(lastStreamId: 2, TunnelErrorCode.InternalError, "boom");

        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => stream.ReadHeadersAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.ConnectionLost, ex.ErrorCode);
        Assert.Contains("boom", ex.Message, StringComparison.Ordinal);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.InternalError, peer.Connection.CloseErrorCode);
        Assert.Equal(0, peer.Connection.ActiveStreamCount);
    }

    [Fact]
    public async Task GoAway_Superseded_SendsSupersededAndDrainsLikeNoError()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        var stream = await peer.Streams!.AcceptAsync();

        peer.Connection.GoAway(TunnelErrorCode.Superseded, "newer instance");

        await peer.ExpectGoAwayAsync(TunnelErrorCode.Superseded, lastStreamId: 1);
        Assert.False(peer.Connection.IsClosed);
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.EndStream, withStreamId: 1);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
    }

    [Theory]
    [InlineData(TunnelErrorCode.ProtocolError)]
    [InlineData(TunnelErrorCode.InternalError)]
    [InlineData(TunnelErrorCode.ConnectionLost)]
    public async Task GoAway_WithErrorCode_RejectedInFavourOfAbort(TunnelErrorCode code)
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        Assert.Throws<ArgumentOutOfRangeException>(() => peer.Connection.GoAway(code, "not a drain"));

        await peer.ExpectNothingMoreAsync();
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task GOAWAY_FromPeerSuperseded_DrainsAndReportsTheCode()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        Assert.False(peer.Connection.PeerGoingAway.IsCompleted);
        Assert.Null(peer.Connection.PeerGoAwayCode);

        await peer.SendGoAwayAsync(lastStreamId: 0, TunnelErrorCode.Superseded, "taken over");

        await peer.Connection.PeerGoingAway.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.Superseded, peer.Connection.PeerGoAwayCode);

        // Stream 2 was opened here, so the peer's last-stream-id (which counts streams it opened) does not cover it:
        // it is refused, and with nothing left the connection closes without error.
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => stream.ReadHeadersAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.RefusedStream, ex.ErrorCode);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.NoError, peer.Connection.CloseErrorCode);
    }

    [Fact]
    public async Task PeerGoingAway_ConnectionClosesWithoutGoAway_Completes()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.Output.CompleteAsync();

        // Owners wait on this one signal to open a replacement, whatever ended the connection.
        await peer.Connection.PeerGoingAway.DefaultTimeout();
        Assert.Null(peer.Connection.PeerGoAwayCode);
    }

    [Fact]
    public async Task GoAway_BetweenRealConnections_BothDrainAndCloseCleanly()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync(endStream: true);

        pair.Server.GoAway("deploy");

        Assert.False(pair.Server.TryOpenStream(out _));
        Assert.True(clientStream.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        Assert.Equal(200, (await serverStream.ReadHeadAsync()).Status);
        await pair.Server.Closed.DefaultTimeout();
        await pair.Client.Closed.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.NoError, pair.Server.CloseErrorCode);
        Assert.Equal(TunnelErrorCode.NoError, pair.Client.CloseErrorCode);
        Assert.False(pair.Client.TryOpenStream(out _));
    }
}
