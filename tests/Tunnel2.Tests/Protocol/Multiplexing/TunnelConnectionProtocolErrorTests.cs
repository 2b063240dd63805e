using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// A peer that breaks a rule of docs/protocol.md §3 gets GOAWAY with the matching code, and only its own connection
/// ends. Each test is named after the rule it breaks.
/// </summary>
public class TunnelConnectionProtocolErrorTests
{
    private readonly ITestOutputHelper _output;

    public TunnelConnectionProtocolErrorTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task FRAME_LengthAboveMaxFrameSize_FrameSizeErrorBeforePayloadArrives()
    {
        await using var peer = await StartAsync();

        // Only the 9-byte header: the connection must not wait for (or buffer) the 16 MiB it announces.
        await peer.SendAsync(TestFrames.CreateRaw(FrameHeader.MaxLengthFieldValue, (byte)FrameType.Data, 0, 1));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FrameSizeError);
    }

    [Fact]
    public async Task FRAME_LengthOneAboveMaxFrameSize_FrameSizeError()
    {
        await using var peer = await StartAsync(limits => limits.MaxFrameSize = 16 * 1024);

        await peer.SendAsync(TestFrames.CreateRaw((16 * 1024) + 1, (byte)FrameType.Headers, 0, 1));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FrameSizeError);
    }

    [Theory]
    [InlineData(0x2)]
    [InlineData(0x5)]
    [InlineData(0x9)]
    [InlineData(0xFF)]
    public async Task FRAME_UnknownType_ProtocolError(byte type)
    {
        await using var peer = await StartAsync();

        await peer.SendAsync(TestFrames.CreateRaw(0, type, 0, 0));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData(FrameType.Data, 0x2, 1, 0)]
    [InlineData(FrameType.Headers, 0x8, 1, 3)]
    [InlineData(FrameType.Reset, 0x1, 1, 4)]
    [InlineData(FrameType.Settings, 0x4, 0, 0)]
    [InlineData(FrameType.Ping, 0x2, 0, 8)]
    [InlineData(FrameType.GoAway, 0x1, 0, 8)]
    [InlineData(FrameType.WindowUpdate, 0x1, 0, 4)]
    public async Task FRAME_UndefinedFlags_ProtocolError(FrameType type, byte flags, int streamId, int length)
    {
        await using var peer = await StartAsync();

        await peer.SendAsync(TestFrames.CreateRaw(length, (byte)type, flags, (uint)streamId, new byte[length]));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData(FrameType.Reset, 1, 8)]
    [InlineData(FrameType.Ping, 0, 4)]
    [InlineData(FrameType.WindowUpdate, 0, 2)]
    [InlineData(FrameType.GoAway, 0, 4)]
    [InlineData(FrameType.Settings, 0, 7)]
    public async Task FRAME_WrongFixedLength_FrameSizeError(FrameType type, int streamId, int length)
    {
        await using var peer = await StartAsync();

        await peer.SendAsync(TestFrames.CreateRaw(length, (byte)type, 0, (uint)streamId, new byte[length]));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FrameSizeError);
    }

    [Theory]
    [InlineData(FrameType.Data, 0, 1)]
    [InlineData(FrameType.Headers, 0, 3)]
    [InlineData(FrameType.Reset, 0, 4)]
    [InlineData(FrameType.Settings, 1, 0)]
    [InlineData(FrameType.Ping, 1, 8)]
    [InlineData(FrameType.GoAway, 3, 8)]
    public async Task FRAME_WrongStreamForType_ProtocolError(FrameType type, int streamId, int length)
    {
        await using var peer = await StartAsync();

        await peer.SendAsync(TestFrames.CreateRaw(length, (byte)type, 0, (uint)streamId, new byte[length]));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData(FrameType.Data, 1, 10)]
    [InlineData(FrameType.Data, 4, 10)]
    [InlineData(FrameType.Reset, 1, 4)]
    [InlineData(FrameType.Reset, 2, 4)]
    [InlineData(FrameType.WindowUpdate, 5, 4)]
    [InlineData(FrameType.WindowUpdate, 2, 4)]
    public async Task FRAME_NeverOpenedStream_ProtocolError(FrameType type, int streamId, int length)
    {
        // The connection is the server: odd ids are the peer's (none opened yet), even ids are its own (none opened).
        await using var peer = await StartAsync();
        var payload = type == FrameType.Data ? new byte[length] : TestFrames.UInt32(1);

        await peer.SendFrameAsync(type, FrameFlags.None, streamId, payload);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Fact]
    public async Task HEADERS_OnOwnParityStreamNeverOpened_ProtocolError()
    {
        // A client may open only odd streams; even ids belong to the server, which has opened none.
        await using var peer = await StartAsync();

        await peer.SendHeadersAsync(2, TunnelStreamTestExtensions.RequestHead());

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
        Assert.Equal(0, peer.Streams!.OpenedCount);
    }

    [Fact]
    public async Task HEADERS_OnOwnParityStreamNeverOpened_ClientRole_ProtocolError()
    {
        await using var peer = await StartAsync(role: TunnelRole.Client);

        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Fact]
    public async Task HEADERS_ReusedStreamId_IgnoredAsLateFrameForClosedStream()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        var first = await peer.Streams!.AcceptAsync();
        first.Reset(TunnelErrorCode.Cancel);
        await peer.ExpectResetAsync(1, TunnelErrorCode.Cancel);

        // Id 1 again: it is not a new stream (ids only grow) but may be a frame that crossed our RESET.
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead(), endStream: true);

        await peer.ExpectNothingMoreAsync();
        Assert.Equal(1, peer.Streams.OpenedCount);
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task HEADERS_LowerThanLastPeerStreamId_NotOpened()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(7, TunnelStreamTestExtensions.RequestHead(), endStream: true);
        Assert.Equal(7, (await peer.Streams!.AcceptAsync()).StreamId);

        // Ids 1, 3 and 5 were skipped, which closes them implicitly (as RFC 9113 §5.1.1).
        await peer.SendHeadersAsync(3, TunnelStreamTestExtensions.RequestHead(), endStream: true);

        await peer.ExpectNothingMoreAsync();
        Assert.Equal(1, peer.Streams.OpenedCount);
    }

    [Fact]
    public async Task WINDOW_UPDATE_ConnectionWindowAbove2Pow31_FlowControlError()
    {
        await using var peer = await StartAsync();

        // The send window starts at 64 KiB; 2^31 - 1 more overflows it.
        await peer.SendWindowUpdateAsync(0, int.MaxValue);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FlowControlError);
    }

    [Fact]
    public async Task WINDOW_UPDATE_ConnectionWindowExactly2Pow31Minus1_Accepted()
    {
        await using var peer = await StartAsync();

        await peer.SendWindowUpdateAsync(0, (uint)(int.MaxValue - (64 * 1024)));

        await peer.ExpectNothingMoreAsync();
        Assert.Equal(int.MaxValue, peer.Connection.FlowControl.ConnectionWindow);
    }

    [Fact]
    public async Task WINDOW_UPDATE_ZeroOnConnection_ProtocolError()
    {
        await using var peer = await StartAsync();

        await peer.SendWindowUpdateAsync(0, 0);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Fact]
    public async Task WINDOW_UPDATE_ReservedBitSet_Ignored()
    {
        await using var peer = await StartAsync();

        await peer.SendWindowUpdateAsync(0, 0x8000_0000u | 1000);

        await peer.ExpectNothingMoreAsync();
        Assert.Equal((64 * 1024) + 1000, peer.Connection.FlowControl.ConnectionWindow);
    }

    [Fact]
    public async Task WINDOW_UPDATE_StreamWindowAbove2Pow31_StreamResetWithFlowControlError()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var stream = await peer.Streams!.AcceptAsync();

        // The stream window starts at the peer's 64 KiB default.
        await peer.SendWindowUpdateAsync(1, int.MaxValue);

        await peer.ExpectResetAsync(1, TunnelErrorCode.FlowControlError);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => stream.Input.ReadAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.FlowControlError, ex.ErrorCode);
        Assert.False(ex.ResetByPeer);
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task WINDOW_UPDATE_ZeroOnStream_StreamResetWithProtocolError()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        await peer.Streams!.AcceptAsync();

        await peer.SendWindowUpdateAsync(1, 0);

        await peer.ExpectResetAsync(1, TunnelErrorCode.ProtocolError);
        await peer.ExpectNothingMoreAsync();
    }

    [Fact]
    public async Task DATA_BeyondStreamReceiveWindow_FlowControlError()
    {
        await using var peer = await StartAsync(limits => limits.InitialStreamWindowSize = 16 * 1024);
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        await peer.Streams!.AcceptAsync();

        await peer.SendDataAsync(1, 16 * 1024);
        await peer.ExpectNothingMoreAsync();
        await peer.SendDataAsync(1, 1);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FlowControlError, lastStreamId: 1);
    }

    [Fact]
    public async Task DATA_BeyondConnectionReceiveWindow_FlowControlError()
    {
        await using var peer = await StartAsync(limits =>
        {
            limits.ConnectionWindowSize = 64 * 1024;
            limits.InitialStreamWindowSize = 1024 * 1024;
        });
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        await peer.SendHeadersAsync(3, TunnelStreamTestExtensions.RequestHead());

        // Neither stream's window is near its end; together they exceed the connection's.
        await peer.SendDataAsync(1, 32 * 1024);
        await peer.SendDataAsync(3, 32 * 1024);
        await peer.ExpectNothingMoreAsync();
        await peer.SendDataAsync(1, 1);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.FlowControlError, lastStreamId: 3);
    }

    [Fact]
    public async Task DATA_BeforeResponseHeaders_StreamResetWithProtocolError()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead(), endStream: true));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);

        await peer.SendDataAsync(2, 10);

        await peer.ExpectResetAsync(2, TunnelErrorCode.ProtocolError);
        await Assert.ThrowsAsync<TunnelStreamException>(() => stream.ReadHeadersAsync().AsTask().DefaultTimeout());
        Assert.False(peer.Connection.IsClosing);
    }

    [Fact]
    public async Task DATA_AfterEndStream_StreamResetWithStreamClosed()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var stream = await peer.Streams!.AcceptAsync();
        await peer.SendDataAsync(1, 5, endStream: true);
        await peer.ExpectNothingMoreAsync();

        await peer.SendDataAsync(1, 5);

        await peer.ExpectResetAsync(1, TunnelErrorCode.StreamClosed);
        Assert.True(stream.Aborted.IsCancellationRequested);
    }

    [Fact]
    public async Task HEADERS_SecondWithoutEndStream_StreamResetWithProtocolError()
    {
        await using var peer = await StartAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        await peer.Streams!.AcceptAsync();

        // A second HEADERS is trailers, and trailers must end the stream.
        await peer.SendHeadersAsync(1, HeaderBlocks.HeaderBlockTestData.Trailers(), endStream: false);

        await peer.ExpectResetAsync(1, TunnelErrorCode.ProtocolError);
    }

    [Fact]
    public async Task ProtocolError_OnOneConnection_OtherConnectionCarriesOn()
    {
        await using var broken = await StartAsync();
        await using var healthy = await StartAsync();
        await healthy.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var stream = await healthy.Streams!.AcceptAsync();

        await broken.SendAsync(TestFrames.CreateRaw(0, 0x2, 0, 1));

        await broken.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
        await healthy.ExpectNothingMoreAsync();
        Assert.False(healthy.Connection.IsClosing);
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.ResponseHead(), endStream: true));
        await healthy.ExpectAsync(FrameType.Headers, withFlags: FrameFlags.EndStream, withStreamId: 1);
    }

    [Fact]
    public async Task ProtocolError_OpenStreams_FailWithConnectionLost()
    {
        await using var peer = await StartAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);
        var headTask = stream.ReadHeadersAsync().AsTask();

        await peer.SendWindowUpdateAsync(0, 0);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => headTask.DefaultTimeout());
        Assert.Equal(TunnelErrorCode.ConnectionLost, ex.ErrorCode);
        Assert.Equal(TunnelErrorCode.ProtocolError, Assert.IsType<TunnelConnectionException>(ex.InnerException).ErrorCode);
        Assert.Equal(0, peer.Connection.ActiveStreamCount);
    }

    private async Task<RawTunnelPeer> StartAsync(Action<TunnelLimits>? configure = null, TunnelRole role = TunnelRole.Server)
    {
        var peer = RawTunnelPeer.Start(_output, role, configure);
        await peer.HandshakeAsync();
        return peer;
    }
}
