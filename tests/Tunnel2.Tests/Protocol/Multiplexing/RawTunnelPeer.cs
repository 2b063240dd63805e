using System.Buffers;
using System.IO.Pipelines;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// One real <see cref="TunnelConnection"/> against a hand-written peer that speaks bytes (Kestrel's Http2TestBase):
/// the test sends exactly the frames it wants, valid or not, and asserts exactly the frames that come back.
/// </summary>
internal sealed class RawTunnelPeer : IAsyncDisposable
{
    /// <summary>No back-pressure toward the connection: the test's writes never wait on the read loop.</summary>
    private static readonly PipeOptions s_unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    private ulong _nextPing = 0xFE00_0000_0000_0000;

    private RawTunnelPeer(TunnelConnection connection, TunnelLimits limits, DuplexPipePair pipes, TestStreamHandler? streams)
    {
        Connection = connection;
        Limits = limits;
        Input = pipes.Application.Input;
        Output = pipes.Application.Output;
        Streams = streams;
        RunTask = connection.RunAsync();
    }

    public TunnelConnection Connection { get; }

    public TunnelLimits Limits { get; }

    /// <summary>Completes when <see cref="TunnelConnection.RunAsync"/> returns.</summary>
    public Task RunTask { get; }

    /// <summary>The streams the connection accepted from this peer; null when the connection accepts none.</summary>
    public TestStreamHandler? Streams { get; }

    /// <summary>What the connection wrote.</summary>
    public PipeReader Input { get; }

    /// <summary>What the connection will read.</summary>
    public PipeWriter Output { get; }

    /// <summary>
    /// Starts a connection. The peer has the other role: a Server connection talks to a raw client.
    /// <paramref name="transport"/> may put something between the connection and the in-memory pipes (a stream adapter).
    /// </summary>
    public static RawTunnelPeer Start(
        ITestOutputHelper output,
        TunnelRole role = TunnelRole.Server,
        Action<TunnelLimits>? configure = null,
        bool acceptStreams = true,
        TimeProvider? timeProvider = null,
        PipeOptions? connectionOutputOptions = null,
        Func<IDuplexPipe, IDuplexPipe>? transport = null)
    {
        var limits = new TunnelLimits();
        configure?.Invoke(limits);
        var pipes = DuplexPipe.CreateConnectionPair(s_unbounded, connectionOutputOptions ?? new PipeOptions(useSynchronizationContext: false));
        var streams = acceptStreams ? new TestStreamHandler() : null;
        var connection = new TunnelConnection(transport?.Invoke(pipes.Transport) ?? pipes.Transport, new TunnelConnectionOptions
        {
            Role = role,
            Limits = limits,
            StreamHandler = streams,
            Logger = new XunitLogger(output, role.ToString()),
            TimeProvider = timeProvider ?? TimeProvider.System,
            Name = "test",
        });
        return new RawTunnelPeer(connection, limits, pipes, streams);
    }

    /// <summary>
    /// Reads the connection's preface (SETTINGS, and WINDOW_UPDATE on stream 0 when the connection window is above
    /// 64 KiB), sends this peer's SETTINGS, and waits for the ACK and <see cref="TunnelConnection.Ready"/>.
    /// </summary>
    public async Task HandshakeAsync(params (SettingsParameter Id, uint Value)[] settings)
    {
        var preface = await ExpectAsync(FrameType.Settings, withLength: SettingsFrame.PayloadSize, withFlags: FrameFlags.None, withStreamId: 0);
        Assert.Equal(Limits.ToSettings(), SettingsFrame.ReadPayload(new(preface.Payload)));
        if (Limits.ConnectionWindowSize > 64 * 1024)
        {
            var update = await ExpectAsync(FrameType.WindowUpdate, withLength: 4, withStreamId: 0);
            Assert.Equal(Limits.ConnectionWindowSize - (64 * 1024), update.WindowIncrement);
        }

        await SendSettingsAsync(settings);
        await ExpectAsync(FrameType.Settings, withLength: 0, withFlags: FrameFlags.Ack, withStreamId: 0);
        await Connection.Ready.DefaultTimeout();
    }

    public Task SendAsync(byte[] bytes)
    {
        Output.Write(bytes);
        return Output.FlushAsync().DefaultTimeout();
    }

    public Task SendFrameAsync(FrameType type, FrameFlags flags, int streamId, byte[]? payload = null)
        => SendAsync(TestFrames.Create(type, flags, streamId, payload ?? []));

    public Task SendSettingsAsync(params (SettingsParameter Id, uint Value)[] settings)
        => SendFrameAsync(FrameType.Settings, FrameFlags.None, 0, TestFrames.SettingsPayload(settings));

    public Task SendHeadersAsync(int streamId, byte[] block, bool endStream = false)
        => SendFrameAsync(FrameType.Headers, endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, block);

    public Task SendDataAsync(int streamId, int length, bool endStream = false)
        => SendFrameAsync(FrameType.Data, endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, TestFrames.Pattern(length));

    public Task SendDataAsync(int streamId, byte[] data, bool endStream = false)
        => SendFrameAsync(FrameType.Data, endStream ? FrameFlags.EndStream : FrameFlags.None, streamId, data);

    public Task SendResetAsync(int streamId, TunnelErrorCode code)
        => SendFrameAsync(FrameType.Reset, FrameFlags.None, streamId, TestFrames.UInt32((uint)code));

    public Task SendWindowUpdateAsync(int streamId, uint increment)
        => SendFrameAsync(FrameType.WindowUpdate, FrameFlags.None, streamId, TestFrames.UInt32(increment));

    public Task SendPingAsync(ulong opaque, bool ack = false)
        => SendFrameAsync(FrameType.Ping, ack ? FrameFlags.Ack : FrameFlags.None, 0, TestFrames.UInt64(opaque));

    public Task SendGoAwayAsync(int lastStreamId, TunnelErrorCode code, string debug = "")
        => SendFrameAsync(FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload((uint)lastStreamId, code, System.Text.Encoding.UTF8.GetBytes(debug)));

    public async Task<TestFrame> ReceiveFrameAsync()
    {
        while (true)
        {
            var result = await Input.ReadAsync().DefaultTimeout();
            var buffer = result.Buffer;
            if (FrameReader.TryReadFrame(ref buffer, FrameHeader.MaxLengthFieldValue, out var header, out var payload))
            {
                var frame = new TestFrame(header, payload.ToArray());
                Input.AdvanceTo(buffer.Start);
                return frame;
            }

            Input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                Assert.Fail($"The connection closed its transport while a frame was expected ({buffer.Length} bytes of a partial frame).");
            }
        }
    }

    /// <summary>The next frame must match every given property.</summary>
    public async Task<TestFrame> ExpectAsync(FrameType type, int? withLength = null, FrameFlags? withFlags = null, int? withStreamId = null)
    {
        var frame = await ReceiveFrameAsync();
        Assert.True(frame.Type == type, $"Expected {type}, got {frame}.");
        if (withLength is { } length)
        {
            Assert.Equal(length, frame.Header.PayloadLength);
        }

        if (withFlags is { } flags)
        {
            Assert.Equal(flags, frame.Header.Flags);
        }

        if (withStreamId is { } streamId)
        {
            Assert.Equal(streamId, frame.StreamId);
        }

        return frame;
    }

    public async Task<TestFrame> ExpectGoAwayAsync(TunnelErrorCode code, int? lastStreamId = null)
    {
        var frame = await ExpectAsync(FrameType.GoAway, withStreamId: 0);
        Assert.Equal(code, frame.ErrorCode);
        if (lastStreamId is { } last)
        {
            Assert.Equal(last, frame.LastStreamId);
        }

        return frame;
    }

    public async Task ExpectResetAsync(int streamId, TunnelErrorCode code)
    {
        var frame = await ExpectAsync(FrameType.Reset, withLength: 4, withStreamId: streamId);
        Assert.Equal(code, frame.ErrorCode);
    }

    /// <summary>The connection must have closed its transport with no further frame.</summary>
    public async Task ExpectTransportClosedAsync()
    {
        var result = await Input.ReadAsync().DefaultTimeout();
        var buffer = result.Buffer;
        var extra = FrameReader.TryReadFrame(ref buffer, FrameHeader.MaxLengthFieldValue, out var header, out _) ? header.ToString() : null;
        Input.AdvanceTo(result.Buffer.End);
        Assert.True(extra is null, $"Expected the transport to close, got {extra}.");
        Assert.True(result.IsCompleted, "Expected the transport to close.");
        Assert.True(result.Buffer.IsEmpty, "The transport closed in the middle of a frame.");
    }

    /// <summary>A protocol error: GOAWAY with <paramref name="code"/>, then the transport closes and the connection ends.</summary>
    public async Task ExpectConnectionErrorAsync(TunnelErrorCode code, int? lastStreamId = null)
    {
        await ExpectGoAwayAsync(code, lastStreamId);
        await ExpectTransportClosedAsync();
        await RunTask.DefaultTimeout();
        await Connection.Closed.DefaultTimeout();
        Assert.Equal(code, Connection.CloseErrorCode);
        Assert.Equal(code, Assert.IsType<TunnelConnectionException>(Connection.CloseReason).ErrorCode);
    }

    /// <summary>
    /// Sends a PING and returns every frame the connection wrote before its ACK. The read loop handles frames in order
    /// and queues its reactions before reading on, so whatever the earlier frames (or anything the test did before
    /// this call) made the connection queue comes out first: an empty list proves "nothing was sent" without waiting.
    /// </summary>
    public async Task<List<TestFrame>> PingFenceAsync()
    {
        var opaque = ++_nextPing;
        await SendPingAsync(opaque);
        var frames = new List<TestFrame>();
        while (true)
        {
            var frame = await ReceiveFrameAsync();
            if (frame.Type == FrameType.Ping && frame.Header.HasFlag(FrameFlags.Ack) && frame.PingOpaque == opaque)
            {
                return frames;
            }

            frames.Add(frame);
        }
    }

    public async Task ExpectNothingMoreAsync()
    {
        var frames = await PingFenceAsync();
        Assert.True(frames.Count == 0, $"Unexpected frames: {string.Join(", ", frames)}");
    }

    public async ValueTask DisposeAsync()
    {
        // Let the connection's writer finish even if the test stopped reading, then shut everything down.
        await Input.CompleteAsync();
        await Output.CompleteAsync();
        await Connection.DisposeAsync().AsTask().DefaultTimeout();
        await RunTask.DefaultTimeout();
    }
}
