using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

public class TunnelConnectionHandshakeTests
{
    private readonly ITestOutputHelper _output;

    public TunnelConnectionHandshakeTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task RunAsync_Starts_SendsSettingsThenConnectionWindowUpdate()
    {
        await using var peer = RawTunnelPeer.Start(_output, configure: limits =>
        {
            limits.MaxConcurrentStreams = 33;
            limits.InitialStreamWindowSize = 100_000;
            limits.MaxFrameSize = 20_000;
            limits.MaxHeaderListSize = 5_000;
            limits.ConnectionWindowSize = 1_000_000;
        });

        var settings = await peer.ExpectAsync(FrameType.Settings, withLength: SettingsFrame.PayloadSize, withFlags: FrameFlags.None, withStreamId: 0);
        var update = await peer.ExpectAsync(FrameType.WindowUpdate, withLength: 4, withFlags: FrameFlags.None, withStreamId: 0);

        Assert.Equal(new TunnelSettings(33, 100_000, 20_000, 5_000), SettingsFrame.ReadPayload(new(settings.Payload)));
        Assert.Equal(1_000_000 - (64 * 1024), update.WindowIncrement);
    }

    [Fact]
    public async Task RunAsync_MinimumConnectionWindow_SendsNoWindowUpdate()
    {
        await using var peer = RawTunnelPeer.Start(_output, configure: limits => limits.ConnectionWindowSize = 64 * 1024);

        await peer.ExpectAsync(FrameType.Settings, withFlags: FrameFlags.None);
        await peer.SendSettingsAsync();

        // The next frame is the ACK: no WINDOW_UPDATE with a zero increment came first.
        await peer.ExpectAsync(FrameType.Settings, withFlags: FrameFlags.Ack);
    }

    [Fact]
    public async Task SETTINGS_FromPeer_AcknowledgedAndReadyCompletes()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.ExpectAsync(FrameType.Settings);
        await peer.ExpectAsync(FrameType.WindowUpdate);

        // Without the peer's SETTINGS the connection cannot be ready, nor open streams.
        Assert.False(peer.Connection.Ready.IsCompleted);
        Assert.False(peer.Connection.TryOpenStream(out _));

        await peer.SendSettingsAsync((SettingsParameter.MaxConcurrentStreams, 7), (SettingsParameter.InitialWindowSize, 70_000), (SettingsParameter.MaxFrameSize, 40_000), (SettingsParameter.MaxHeaderListSize, 9_000));

        await peer.ExpectAsync(FrameType.Settings, withLength: 0, withFlags: FrameFlags.Ack, withStreamId: 0);
        await peer.Connection.Ready.DefaultTimeout();
        Assert.Equal(new TunnelSettings(7, 70_000, 40_000, 9_000), peer.Connection.PeerSettings);
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.Equal(2, stream.StreamId);
    }

    [Fact]
    public async Task SETTINGS_EmptyFromPeer_ProtocolDefaultsApply()
    {
        await using var peer = RawTunnelPeer.Start(_output);

        await peer.HandshakeAsync();

        Assert.Equal(TunnelSettings.ProtocolDefaults, peer.Connection.PeerSettings);
    }

    [Fact]
    public async Task SETTINGS_AckFromPeer_Ignored()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.SendFrameAsync(FrameType.Settings, FrameFlags.Ack, 0);

        await peer.ExpectNothingMoreAsync();
        Assert.False(peer.Connection.IsClosing);
    }

    public static TheoryData<string, byte[]> NonSettingsFirstFrames => new()
    {
        { "PING", TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(1)) },
        { "WINDOW_UPDATE", TestFrames.Create(FrameType.WindowUpdate, FrameFlags.None, 0, TestFrames.UInt32(1000)) },
        { "HEADERS", TestFrames.Create(FrameType.Headers, FrameFlags.None, 1, TunnelStreamTestExtensions.RequestHead()) },
        { "GOAWAY", TestFrames.Create(FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload(0, TunnelErrorCode.NoError)) },
        { "SETTINGS ACK", TestFrames.Create(FrameType.Settings, FrameFlags.Ack, 0, []) },
    };

    [Theory]
    [MemberData(nameof(NonSettingsFirstFrames))]
    public async Task FirstFrame_NotSettings_ProtocolError(string name, byte[] frame)
    {
        _ = name;
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.ExpectAsync(FrameType.Settings);
        await peer.ExpectAsync(FrameType.WindowUpdate);

        await peer.SendAsync(frame);

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError, lastStreamId: 0);
        Assert.Equal(0, peer.Streams!.OpenedCount);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => peer.Connection.Ready.DefaultTimeout());
        Assert.Equal(TunnelErrorCode.ConnectionLost, ex.ErrorCode);
    }

    [Fact]
    public async Task SETTINGS_Second_ProtocolError()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.SendSettingsAsync((SettingsParameter.MaxConcurrentStreams, 1));

        await peer.ExpectConnectionErrorAsync(TunnelErrorCode.ProtocolError);
    }

    [Theory]
    [InlineData(SettingsParameter.InitialWindowSize, 100u, TunnelErrorCode.FlowControlError)]
    [InlineData(SettingsParameter.InitialWindowSize, 0x8000_0000u, TunnelErrorCode.FlowControlError)]
    [InlineData(SettingsParameter.MaxFrameSize, 1000u, TunnelErrorCode.ProtocolError)]
    [InlineData(SettingsParameter.MaxFrameSize, (1024 * 1024) + 1u, TunnelErrorCode.ProtocolError)]
    public async Task SETTINGS_ValueOutOfRange_ConnectionErrorWithCode(SettingsParameter id, uint value, TunnelErrorCode expected)
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.ExpectAsync(FrameType.Settings);
        await peer.ExpectAsync(FrameType.WindowUpdate);

        await peer.SendSettingsAsync((id, value));

        await peer.ExpectConnectionErrorAsync(expected);
    }

    [Fact]
    public async Task PING_FromPeer_AnsweredWithAckCarryingTheSameData()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.SendPingAsync(0x0123_4567_89AB_CDEF);

        var ack = await peer.ExpectAsync(FrameType.Ping, withLength: 8, withFlags: FrameFlags.Ack, withStreamId: 0);
        Assert.Equal(0x0123_4567_89AB_CDEFul, ack.PingOpaque);
    }

    [Fact]
    public async Task PING_UnsolicitedAck_IgnoredAndNotAnswered()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.SendPingAsync(99, ack: true);

        await peer.ExpectNothingMoreAsync();
        Assert.Null(peer.Connection.RoundTripTime);
    }

    [Fact]
    public async Task Transport_PeerCloses_ConnectionClosesWithConnectionLostAndFailsStreams()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        Assert.True(peer.Connection.TryOpenStream(out var stream));
        Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        await peer.ExpectAsync(FrameType.Headers, withStreamId: 2);

        await peer.Output.CompleteAsync();

        await peer.RunTask.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.ConnectionLost, peer.Connection.CloseErrorCode);
        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => stream.Input.ReadAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.ConnectionLost, ex.ErrorCode);
        Assert.False(ex.ResetByPeer);
        Assert.True(stream.Aborted.IsCancellationRequested);
        Assert.Equal(0, peer.Connection.ActiveStreamCount);
    }

    [Fact]
    public async Task Transport_PeerClosesMidFrame_ConnectionLost()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        await peer.SendAsync(TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(1)).AsSpan(0, 12).ToArray());
        await peer.Output.CompleteAsync();

        await peer.RunTask.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.ConnectionLost, peer.Connection.CloseErrorCode);
        Assert.Contains("middle of a frame", peer.Connection.CloseReason!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_Cancelled_SendsGoAwayNoErrorAndCloses()
    {
        using var cts = new CancellationTokenSource();
        var pipes = DuplexPipe.CreateConnectionPair();
        await using var connection = new TunnelConnection(pipes.Transport, new TunnelConnectionOptions { Role = TunnelRole.Client, Logger = new XunitLogger(_output, "client") });
        var run = connection.RunAsync(cts.Token);

        await cts.CancelAsync();
        await run.DefaultTimeout();

        var written = await pipes.Application.Input.ReadAsync().DefaultTimeout();
        var buffer = written.Buffer;
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var settings, out _));
        Assert.Equal(FrameType.Settings, settings.Type);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var update, out _));
        Assert.Equal(FrameType.WindowUpdate, update.Type);
        Assert.True(FrameReader.TryReadFrame(ref buffer, 1 << 20, out var goAway, out var payload));
        Assert.Equal(FrameType.GoAway, goAway.Type);
        Assert.Equal(TunnelErrorCode.NoError, new TestFrame(goAway, System.Buffers.BuffersExtensions.ToArray(payload)).ErrorCode);
        Assert.True(buffer.IsEmpty);
        Assert.True(written.IsCompleted);

        Assert.True(connection.IsClosed);
        Assert.Equal(TunnelErrorCode.NoError, connection.CloseErrorCode);
        await connection.Closed.DefaultTimeout();
        await Assert.ThrowsAsync<InvalidOperationException>(() => connection.RunAsync());
    }

    [Fact]
    public async Task Abort_SendsGoAwayWithCodeAndCloses()
    {
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();

        peer.Connection.Abort(TunnelErrorCode.InternalError, "shutting down");

        var goAway = await peer.ExpectGoAwayAsync(TunnelErrorCode.InternalError, lastStreamId: 0);
        Assert.Equal("shutting down", System.Text.Encoding.UTF8.GetString(goAway.Payload.AsSpan(8)));
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
        Assert.False(peer.Connection.TryOpenStream(out _));
    }
}
