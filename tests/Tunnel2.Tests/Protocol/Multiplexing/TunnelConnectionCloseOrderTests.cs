using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// A closing connection writes what it queued before it lets go of its transport, also over a transport that closes
/// the moment a pending read is cancelled (SocketsHttpHandler's upgraded connection, which the TunnelClient's uplink
/// runs on). Found as a drained uplink that closed with its last response still in the writer's queue: the server saw
/// the transport end and answered 502 for a request that had completed.
/// </summary>
public class TunnelConnectionCloseOrderTests(ITestOutputHelper output)
{
    [Fact]
    public async Task DrainedByPeerGoAway_LastResponseQueued_ReachesThePeerBeforeTheTransportCloses()
    {
        CancelClosesTransportStream? stream = null;
        await using var peer = RawTunnelPeer.Start(output, TunnelRole.Client, transport: pipes => TunnelTransport.FromStream(stream = new CancelClosesTransportStream(pipes)));
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.RequestHead("/hold"), endStream: true);
        var held = await peer.Streams!.AcceptAsync();

        // The server drains: no new streams, the held one carries on.
        await peer.SendGoAwayAsync(lastStreamId: 0, TunnelErrorCode.NoError, "The server is shutting down.");
        await peer.Connection.PeerGoingAway.DefaultTimeout();
        await peer.ExpectNothingMoreAsync();
        await stream!.ReadBlocked.DefaultTimeout();

        // The response is queued while the writer is not running yet; ending the last stream closes the connection.
        stream.HoldWrites();
        Assert.True(held.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        Assert.True(peer.Connection.IsClosed);
        Assert.Equal(TunnelErrorCode.NoError, peer.Connection.CloseErrorCode);
        stream.ReleaseWrites();

        await peer.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.EndStream, withStreamId: 2);
        await peer.ExpectTransportClosedAsync();
        await peer.RunTask.DefaultTimeout();
        Assert.True(stream.IsClosed);
    }

    [Fact]
    public async Task GoAwayWithNoStreams_OverTransportThatClosesOnReadCancel_GoAwayReachesThePeer()
    {
        CancelClosesTransportStream? stream = null;
        await using var peer = RawTunnelPeer.Start(output, TunnelRole.Client, transport: pipes => TunnelTransport.FromStream(stream = new CancelClosesTransportStream(pipes)));
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        var done = await peer.Streams!.AcceptAsync();
        Assert.True(done.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        await peer.ExpectNothingMoreAsync();
        await stream!.ReadBlocked.DefaultTimeout();

        // The client shuts down with nothing in flight: GOAWAY, then the connection closes at once.
        stream.HoldWrites();
        peer.Connection.GoAway("The client is shutting down.");
        Assert.True(peer.Connection.IsClosed);
        stream.ReleaseWrites();

        // The server learns which of its streams were seen (here stream 2), so any it sent meanwhile are retried elsewhere.
        await peer.ExpectGoAwayAsync(TunnelErrorCode.NoError, lastStreamId: 2);
        await peer.ExpectTransportClosedAsync();
        await peer.RunTask.DefaultTimeout();
    }
}
