using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>Stream ids, concurrency limits and refusals as seen on the wire (docs/protocol.md §5).</summary>
public class TunnelStreamRuleTests
{
    private readonly ITestOutputHelper _output;

    public TunnelStreamRuleTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task TrySendHeaders_StreamsSentInOtherOrderThanOpened_IdsOnTheWireStillIncrease()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var first));
        Assert.True(peer.Connection.TryOpenStream(out var second));
        Assert.Equal((2, 4), (first.StreamId, second.StreamId));

        Assert.True(second.SendHead(TunnelStreamTestExtensions.RequestHead("/b")));
        Assert.True(first.SendHead(TunnelStreamTestExtensions.RequestHead("/a")));

        // Had stream 2 gone out after 4, the peer would have taken it for a closed stream and dropped it.
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 4);
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 6);
        Assert.Equal(6, first.StreamId);

        // The moved stream works under its new id, and its old id is never used.
        await first.SendBytesAsync([1, 2, 3], endStream: true);
        await peer.ExpectAsync(FrameType.Data, withLength: 3, withFlags: FrameFlags.EndStream, withStreamId: 6);
        await peer.SendHeadersAsync(6, TunnelStreamTestExtensions.ResponseHead(202), endStream: true);
        Assert.Equal(202, (await first.ReadHeadAsync()).Status);
        Assert.Equal(1, peer.Connection.ActiveStreamCount);
        Assert.True(peer.Connection.TryOpenStream(out var third));
        Assert.Equal(8, third.StreamId);
    }

    [Fact]
    public async Task TrySetAbortCallback_RunsOnceOnTheReset_NotOnceCleared_RefusedAfterTheAbort()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        var runs = 0;
        var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        Assert.True(stream.TrySetAbortCallback(_ => { Interlocked.Increment(ref runs); ran.TrySetResult(); }, null));
        await peer.SendResetAsync(2, TunnelErrorCode.Cancel);
        await ran.Task.DefaultTimeout();

        Assert.Equal(1, Volatile.Read(ref runs));
        Assert.False(stream.TrySetAbortCallback(_ => Interlocked.Increment(ref runs), null));
        Assert.True(peer.Connection.TryOpenStream(out var cleared));
        Assert.True(cleared.TrySetAbortCallback(_ => Interlocked.Increment(ref runs), null));
        Assert.True(cleared.TrySetAbortCallback(null, null));
        cleared.Reset(TunnelErrorCode.Cancel);
        Assert.Equal(1, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task TryOpenStream_AtPeerMaxConcurrentStreams_FalseUntilAStreamEnds()
    {
        await using var peer = await StartAsync(peerSettings: (SettingsParameter.MaxConcurrentStreams, 2));
        Assert.True(peer.Connection.TryOpenStream(out var a));
        Assert.True(peer.Connection.TryOpenStream(out _));

        Assert.False(peer.Connection.TryOpenStream(out _));
        Assert.Equal(2, peer.Connection.LocalStreamCount);

        Assert.True(a.SendHead(TunnelStreamTestExtensions.RequestHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.ResponseHead(), endStream: true);
        await a.ReadHeadAsync();
        Assert.Empty(await a.Input.ReadToEndAsync());
        await peer.ExpectNothingMoreAsync();

        Assert.Equal(1, peer.Connection.LocalStreamCount);
        Assert.True(peer.Connection.TryOpenStream(out var c));
        Assert.Equal(6, c.StreamId);
    }

    [Fact]
    public async Task TryOpenStream_PeerAllowsNone_False()
    {
        await using var peer = await StartAsync(peerSettings: (SettingsParameter.MaxConcurrentStreams, 0));

        Assert.False(peer.Connection.TryOpenStream(out _));
    }

    [Fact]
    public async Task HEADERS_AboveMaxConcurrentStreams_RefusedStream()
    {
        await using var peer = await StartAsync(limits => limits.MaxConcurrentStreams = 1);
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var first = await peer.Streams!.AcceptAsync();

        await peer.SendHeadersAsync(3, TunnelStreamTestExtensions.RequestHead());
        await peer.SendDataAsync(3, 100, endStream: true);

        await peer.ExpectResetAsync(3, TunnelErrorCode.RefusedStream);
        await peer.ExpectNothingMoreAsync();
        Assert.Equal(1, peer.Streams.OpenedCount);

        // Once the first stream is gone, the next one is accepted.
        first.Reset(TunnelErrorCode.Cancel);
        await peer.ExpectResetAsync(1, TunnelErrorCode.Cancel);
        await peer.SendHeadersAsync(5, TunnelStreamTestExtensions.RequestHead());
        Assert.Equal(5, (await peer.Streams.AcceptAsync()).StreamId);
    }

    [Fact]
    public async Task HEADERS_NoStreamHandler_RefusedStream()
    {
        await using var peer = RawTunnelPeer.Start(_output, acceptStreams: false);
        await peer.HandshakeAsync();

        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());

        await peer.ExpectResetAsync(1, TunnelErrorCode.RefusedStream);
        Assert.Equal(0, peer.Connection.ActiveStreamCount);
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task Reset_LocalStreamBeforeItsHeaders_SendsNothing()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));

        stream.Reset(TunnelErrorCode.Cancel);

        // The peer never heard of the stream, so a RESET would be a protocol error there.
        await peer.ExpectNothingMoreAsync();
        Assert.Equal(0, peer.Connection.LocalStreamCount);
        Assert.False(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
    }

    [Fact]
    public async Task Reset_LocalStreamAfterHeaders_SendsReset()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));

        stream.Reset(TunnelErrorCode.Cancel);

        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        await peer.ExpectResetAsync(2, TunnelErrorCode.Cancel);
        Assert.Equal(0, peer.Connection.ActiveStreamCount);
    }

    [Fact]
    public async Task RESET_FromPeerForClosedStream_Ignored()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var stream = await peer.Streams!.AcceptAsync();
        stream.Reset(TunnelErrorCode.Cancel);
        await peer.ExpectResetAsync(1, TunnelErrorCode.Cancel);

        // The peer's own RESET, DATA and WINDOW_UPDATE crossed ours: all harmless.
        await peer.SendResetAsync(1, TunnelErrorCode.Cancel);
        await peer.SendDataAsync(1, 10);
        await peer.SendWindowUpdateAsync(1, 100);
        await peer.SendHeadersAsync(1, HeaderBlocks.HeaderBlockTestData.Trailers(), endStream: true);

        await peer.ExpectNothingMoreAsync();
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task Complete_SendsEmptyDataWithEndStream()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));

        stream.Complete();
        stream.Complete();

        await peer.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.None, withStreamId: 2);
        await peer.ExpectAsync(FrameType.Data, withLength: 0, withFlags: FrameFlags.EndStream, withStreamId: 2);
        await peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task SendDataAsync_LargerThanPeerMaxFrameSize_SplitWithEndStreamOnLast()
    {
        await using var peer = await StartAsync(peerSettings: (SettingsParameter.InitialWindowSize, 1024 * 1024));
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        var body = TestFrames.Pattern(40_000);

        await stream.SendBytesAsync(body, endStream: true);

        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        var f1 = await peer.ExpectAsync(FrameType.Data, withLength: 16_384, withFlags: FrameFlags.None, withStreamId: 2);
        var f2 = await peer.ExpectAsync(FrameType.Data, withLength: 16_384, withFlags: FrameFlags.None, withStreamId: 2);
        var f3 = await peer.ExpectAsync(FrameType.Data, withLength: 40_000 - 32_768, withFlags: FrameFlags.EndStream, withStreamId: 2);
        Assert.Equal(body, (byte[])[.. f1.Payload, .. f2.Payload, .. f3.Payload]);
    }

    [Fact]
    public async Task TrySendHeaders_BlockLargerThanPeerMaxFrameSize_Throws()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        var block = System.Buffers.ArrayPool<byte>.Shared.Rent((16 * 1024) + 1);

        // The peer announced the 16 KiB default; a HEADERS frame above it would be a connection error there.
        Assert.Throws<InvalidOperationException>(() => stream.TrySendHeaders(block, (16 * 1024) + 1, endStream: false));
        await peer.ExpectNothingMoreAsync();
    }

    private async Task<RawTunnelPeer> StartAsync(Action<TunnelLimits>? configure = null, params (SettingsParameter Id, uint Value)[] peerSettings)
    {
        var peer = RawTunnelPeer.Start(_output, TunnelRole.Server, configure);
        await peer.HandshakeAsync(peerSettings);
        return peer;
    }

    private Task<RawTunnelPeer> StartAsync(params (SettingsParameter Id, uint Value)[] peerSettings) => StartAsync(null, peerSettings);
}
