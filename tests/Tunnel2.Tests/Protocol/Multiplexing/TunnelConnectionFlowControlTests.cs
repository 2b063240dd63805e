using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// Per-stream and per-connection windows (docs/protocol.md §7): a sender never has more in flight than the peer
/// agreed to buffer, and credit goes back when the consumer reads, not when bytes arrive.
/// </summary>
public class TunnelConnectionFlowControlTests
{
    private const int Window16K = 16 * 1024;
    private const int Window64K = 64 * 1024;

    private readonly ITestOutputHelper _output;

    public TunnelConnectionFlowControlTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task SendDataAsync_PeerStreamWindowExhausted_StallsUntilWindowUpdate()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync((SettingsParameter.InitialWindowSize, Window16K));
        var stream = await OpenAsync(peer);

        var send = stream.WriteAsync(TestFrames.Pattern(Window64K), endStream: true, CancellationToken.None).AsTask();

        // Exactly one window's worth left; the rest waits for credit.
        Assert.False(send.IsCompleted);
        var sent = await peer.PingFenceAsync();
        Assert.Equal(Window16K, sent.Where(f => f.Type == FrameType.Data).Sum(f => f.Header.PayloadLength));
        Assert.Equal(1, peer.Connection.FlowControlStalls);

        await peer.SendWindowUpdateAsync(2, 100);
        await peer.ExpectAsync(FrameType.Data, withLength: 100, withFlags: FrameFlags.None, withStreamId: 2);
        Assert.False(send.IsCompleted);

        await peer.SendWindowUpdateAsync(2, Window64K);
        await peer.ExpectAsync(FrameType.Data, withLength: Window16K, withStreamId: 2);
        await peer.ExpectAsync(FrameType.Data, withLength: Window16K, withStreamId: 2);
        await peer.ExpectAsync(FrameType.Data, withLength: Window16K - 100, withFlags: FrameFlags.EndStream, withStreamId: 2);
        await send.DefaultTimeout();

        // The connection window started at 64 KiB (this peer never raised it) and is now spent.
        Assert.Equal(0, peer.Connection.FlowControl.ConnectionWindow);
    }

    [Fact]
    public async Task SendDataAsync_ConnectionWindowExhausted_SharedByAllStreams()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync((SettingsParameter.InitialWindowSize, 1024 * 1024));
        var a = await OpenAsync(peer);
        var b = await OpenAsync(peer);

        var sendA = a.WriteAsync(TestFrames.Pattern(48 * 1024), endStream: true, CancellationToken.None).AsTask();
        var sendB = b.WriteAsync(TestFrames.Pattern(48 * 1024), endStream: true, CancellationToken.None).AsTask();

        await sendA.DefaultTimeout();
        Assert.False(sendB.IsCompleted);
        var sent = await peer.PingFenceAsync();
        Assert.Equal(48 * 1024, sent.Where(f => f.Type == FrameType.Data && f.StreamId == 2).Sum(f => f.Header.PayloadLength));
        Assert.Equal(16 * 1024, sent.Where(f => f.Type == FrameType.Data && f.StreamId == 4).Sum(f => f.Header.PayloadLength));

        // Stream credit alone does not help: the connection window is the limit.
        await peer.SendWindowUpdateAsync(4, 1024 * 1024);
        await peer.ExpectNothingMoreAsync();
        Assert.False(sendB.IsCompleted);

        await peer.SendWindowUpdateAsync(0, 32 * 1024);
        await peer.ExpectAsync(FrameType.Data, withLength: Window16K, withFlags: FrameFlags.None, withStreamId: 4);
        await peer.ExpectAsync(FrameType.Data, withLength: Window16K, withFlags: FrameFlags.EndStream, withStreamId: 4);
        await sendB.DefaultTimeout();
    }

    [Fact]
    public async Task SendDataAsync_StalledStreamReset_WaitFailsAndCreditIsNotSpent()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync((SettingsParameter.InitialWindowSize, Window16K));
        var stream = await OpenAsync(peer);
        var send = stream.WriteAsync(TestFrames.Pattern(Window64K), endStream: false, CancellationToken.None).AsTask();
        Assert.False(send.IsCompleted);

        await peer.SendResetAsync(2, TunnelErrorCode.BackendAborted);

        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => send.DefaultTimeout());
        Assert.Equal(TunnelErrorCode.BackendAborted, ex.ErrorCode);
        Assert.Equal(Window64K - Window16K, peer.Connection.FlowControl.ConnectionWindow);
    }

    [Fact]
    public async Task SendDataAsync_StalledAndCancelled_ThrowsOperationCanceled()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync((SettingsParameter.InitialWindowSize, Window16K));
        var stream = await OpenAsync(peer);
        using var cts = new CancellationTokenSource();
        var send = stream.WriteAsync(TestFrames.Pattern(Window64K), endStream: false, cts.Token).AsTask();
        Assert.False(send.IsCompleted);

        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => send.DefaultTimeout());
    }

    [Fact]
    public async Task Input_DataArrives_WindowUpdateOnlyOnceConsumed()
    {
        // 64 KiB windows: credit goes back in batches of a quarter, 16 KiB.
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window64K;
            limits.ConnectionWindowSize = Window64K;
        });
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        await peer.SendDataAsync(2, 40_000);

        // Arrival alone returns no credit, however much arrived.
        await peer.ExpectNothingMoreAsync();

        await stream.ReadHeadAsync();
        var read = await stream.Input.ReadAtLeastBufferedAsync(40_000);
        Assert.Equal(40_000, read.Buffer.Length);

        // Examining without consuming returns nothing; consuming less than a quarter window returns nothing yet.
        stream.Input.AdvanceTo(read.Buffer.Start);
        await peer.ExpectNothingMoreAsync();
        read = await stream.Input.ReadAsync().DefaultTimeout();
        stream.Input.AdvanceTo(read.Buffer.GetPosition(1_000));
        await peer.ExpectNothingMoreAsync();

        read = await stream.Input.ReadAsync().DefaultTimeout();
        stream.Input.AdvanceTo(read.Buffer.End);

        var streamUpdate = await peer.ExpectAsync(FrameType.WindowUpdate, withLength: 4, withStreamId: 2);
        var connectionUpdate = await peer.ExpectAsync(FrameType.WindowUpdate, withLength: 4, withStreamId: 0);
        Assert.Equal(40_000, streamUpdate.WindowIncrement);
        Assert.Equal(40_000, connectionUpdate.WindowIncrement);
        await peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task Input_CreditReturned_PeerCanSendAnotherWindow()
    {
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window16K;
            limits.MaxStreamWindowSize = Window16K;
            limits.ConnectionWindowSize = Window64K;
        });
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        await stream.ReadHeadAsync();

        // Four full stream windows in turn: each is allowed only because the previous one was consumed and credited.
        for (var i = 0; i < 4; i++)
        {
            await peer.SendDataAsync(2, Window16K);
            var read = await stream.Input.ReadAtLeastBufferedAsync(Window16K);
            stream.Input.AdvanceTo(read.Buffer.End);
            var update = await peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 2);
            Assert.Equal(Window16K, update.WindowIncrement);
            var connection = await peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
            Assert.Equal(Window16K, connection.WindowIncrement);
        }

        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task Input_ConsumedAfterEndStream_OnlyConnectionCreditReturned()
    {
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window64K;
            limits.ConnectionWindowSize = Window64K;
        });
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        await peer.SendDataAsync(2, 20_000, endStream: true);
        await stream.ReadHeadAsync();

        Assert.Equal(20_000, (await stream.Input.ReadToEndAsync()).Length);

        // The stream is over on the peer's side, so its window is moot; the shared window is not.
        var update = await peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);
        await peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task Reset_WithUnconsumedData_CreditedBackToConnection()
    {
        await using var peer = await StartWithBufferedDataAsync(20_000);
        var stream = peer.Stream;

        stream.Reset(TunnelErrorCode.Cancel);

        await peer.Peer.ExpectResetAsync(2, TunnelErrorCode.Cancel);
        var update = await peer.Peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);
        await peer.Peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task RESET_FromPeerWithUnconsumedData_CreditedBackToConnection()
    {
        await using var peer = await StartWithBufferedDataAsync(20_000);

        await peer.Peer.SendResetAsync(2, TunnelErrorCode.BackendAborted);

        var update = await peer.Peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => peer.Stream.Input.ReadAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.BackendAborted, ex.ErrorCode);
        Assert.True(ex.ResetByPeer);
    }

    [Fact]
    public async Task DATA_ForResetStream_CreditedBackToConnection()
    {
        await using var peer = await StartWithBufferedDataAsync(0);
        peer.Stream.Reset(TunnelErrorCode.Cancel);
        await peer.Peer.ExpectResetAsync(2, TunnelErrorCode.Cancel);

        // DATA that was in flight when our RESET went out: dropped, but its bytes were counted against the
        // connection window, so they are handed back or the window would shrink for good.
        await peer.Peer.SendDataAsync(2, 10_000);
        await peer.Peer.ExpectNothingMoreAsync();
        await peer.Peer.SendDataAsync(2, 10_000);

        var update = await peer.Peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);
    }

    [Fact]
    public async Task Input_CompletedEarly_BufferedAndLaterDataCreditedToConnection()
    {
        await using var peer = await StartWithBufferedDataAsync(20_000);

        await peer.Stream.Input.CompleteAsync();

        var update = await peer.Peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);

        await peer.Peer.SendDataAsync(2, 20_000);
        update = await peer.Peer.ExpectAsync(FrameType.WindowUpdate, withStreamId: 0);
        Assert.Equal(20_000, update.WindowIncrement);
    }

    [Fact]
    public async Task SlowConsumer_SenderStallsAtTheWindowAndResumesAsTheConsumerReads()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output, client: limits => limits.InitialStreamWindowSize = Window16K);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();
        var body = TestFrames.Pattern(256 * 1024);

        var send = serverStream.WriteAsync(body, endStream: true, CancellationToken.None).AsTask();

        // Nothing has been consumed, so exactly one window can be buffered at the receiver, and the sender waits.
        var buffered = await clientStream.Input.ReadAtLeastBufferedAsync(Window16K);
        Assert.Equal(Window16K, buffered.Buffer.Length);
        clientStream.Input.AdvanceTo(buffered.Buffer.Start);
        Assert.False(send.IsCompleted);
        Assert.True(pair.Server.FlowControlStalls >= 1);

        // Each read hands credit back, and the sender moves on.
        var received = await clientStream.Input.ReadToEndAsync();
        await send.DefaultTimeout();
        Assert.Equal(body, received);
    }

    private static async Task<TunnelStream> OpenAsync(RawTunnelPeer peer)
    {
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: stream.StreamId);
        return stream;
    }

    /// <summary>A server-opened stream 2 whose response head and <paramref name="bytes"/> of DATA have arrived, unread.</summary>
    private async Task<PeerWithStream> StartWithBufferedDataAsync(int bytes)
    {
        var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window64K;
            limits.ConnectionWindowSize = Window64K;
        });
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        if (bytes > 0)
        {
            await peer.SendDataAsync(2, bytes);
        }

        await peer.ExpectNothingMoreAsync();
        return new PeerWithStream(peer, stream);
    }

    private sealed record PeerWithStream(RawTunnelPeer Peer, TunnelStream Stream) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Peer.DisposeAsync();
    }

    [Fact]
    public async Task Input_WindowDrainedFasterThanOneRtt_WindowDoubles()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window16K;
            limits.MaxStreamWindowSize = 4 * Window16K;
            limits.ConnectionWindowSize = 1024 * 1024;
        }, timeProvider: time);
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        await stream.ReadHeadAsync();

        // Burst 1, consumed in quarters: credit comes back a quarter at a time, and the connection samples the RTT.
        await peer.SendDataAsync(2, Window16K);
        var increments = await ConsumeInQuartersAsync(peer, stream, Window16K);
        Assert.Equal([Window16K / 4, Window16K / 4, Window16K / 4, Window16K / 4], increments.Updates);
        var ping = Assert.Single(increments.Pings);

        // The peer answers the PING after 5 ms: the path's RTT.
        time.Advance(TimeSpan.FromMilliseconds(5));
        await peer.SendPingAsync(ping, ack: true);
        await peer.PingFenceAsync();

        // Burst 2: quarters drained back to back, i.e. far faster than a window per RTT: each update that sees this
        // doubles the window and carries the extra credit (16 KiB → 32 KiB → 64 KiB), then growth stops at the maximum.
        await peer.SendDataAsync(2, Window16K);
        increments = await ConsumeInQuartersAsync(peer, stream, Window16K, expectedUpdates: 3);
        Assert.Equal([Window16K / 4, (Window16K / 4) + Window16K, (2 * Window16K / 4) + (2 * Window16K)], increments.Updates);

        // At the maximum: credit per quarter of 64 KiB (one update for these 16 KiB), nothing extra.
        await peer.SendDataAsync(2, Window16K);
        increments = await ConsumeInQuartersAsync(peer, stream, Window16K, expectedUpdates: 1);
        Assert.Equal([Window16K], increments.Updates);
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task Input_GrowthDisabled_NoRttProbesAndFixedCredit()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.InitialStreamWindowSize = Window16K;
            limits.MaxStreamWindowSize = Window16K;
            limits.ConnectionWindowSize = 1024 * 1024;
        }, timeProvider: time);
        await peer.HandshakeAsync();
        var stream = await OpenAsync(peer);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead());
        await stream.ReadHeadAsync();

        for (var burst = 0; burst < 3; burst++)
        {
            await peer.SendDataAsync(2, Window16K);
            var increments = await ConsumeInQuartersAsync(peer, stream, Window16K);
            Assert.All(increments.Updates, update => Assert.Equal(Window16K / 4, update));
            Assert.Empty(increments.Pings);
        }
    }

    /// <summary>Consumes <paramref name="total"/> bytes a quarter window at a time; returns the stream's credit updates and any PINGs sent meanwhile.</summary>
    private static async Task<(List<int> Updates, List<ulong> Pings)> ConsumeInQuartersAsync(RawTunnelPeer peer, TunnelStream stream, int total, int? expectedUpdates = null)
    {
        var updates = new List<int>();
        var pings = new List<ulong>();
        for (var consumed = 0; consumed < total; consumed += Window16K / 4)
        {
            var read = await stream.Input.ReadAtLeastBufferedAsync(Window16K / 4);
            stream.Input.AdvanceTo(read.Buffer.GetPosition(Window16K / 4));
        }

        // Collect the stream's updates (one per quarter unless the window grew), skipping connection credit, noting PINGs.
        while (updates.Count < (expectedUpdates ?? total / (Window16K / 4)))
        {
            var frame = await peer.ReceiveFrameAsync();
            if (frame.Type == FrameType.WindowUpdate && frame.Header.StreamId == 2)
            {
                updates.Add(frame.WindowIncrement);
            }
            else if (frame.Type == FrameType.Ping && !frame.Header.HasFlag(FrameFlags.Ack))
            {
                pings.Add(frame.PingOpaque);
            }
        }

        return (updates, pings);
    }
}
