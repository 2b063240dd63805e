using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Text;
using Microsoft.Extensions.Logging;
using Tunnel2.Protocol.FlowControl;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Internal;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>
/// One uplink: a byte stream carrying many <see cref="TunnelStream"/>s. One read loop parses and dispatches frames
/// and never waits on a stream's consumer; one <see cref="FrameWriter"/> loop writes everything; a heartbeat loop
/// sends PINGs when the line is quiet and declares the peer dead when it stays silent. Symmetric: the server and the
/// client both run this class (docs/protocol.md §5).
/// </summary>
public sealed class TunnelConnection : IAsyncDisposable
{
    private const int MaxStreamId = int.MaxValue;

    /// <summary>How long a closing connection lets its writer send what is queued before it stops reading anyway.</summary>
    private static readonly TimeSpan s_writerDrainTimeout = TimeSpan.FromSeconds(2);

    private readonly IDuplexPipe _transport;
    private readonly TunnelConnectionOptions _options;
    private readonly TunnelLimits _limits;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<int, TunnelStream> _streams = new();
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _peerGoingAway = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _closing = new();
    private readonly Lock _stateLock = new();
    private readonly Stack<Pipe> _inputPipes = new();
    private readonly Lock _inputPipesLock = new();
    private readonly int _connectionWindowUpdateThreshold;

    // Guarded by _stateLock.
    private int _nextLocalStreamId;
    private int _lastLocalStreamIdSent;
    private int _localStreamCount;
    private int _peerStreamCount;
    private bool _localGoingAway;
    private bool _peerIsGoingAway;
    private TunnelErrorCode? _peerGoAwayCode;
    private bool _isClosed;
    private bool _goAwaySent;
    private Exception? _closeReason;
    private TunnelErrorCode _closeErrorCode;

    // Read loop only.
    private int _lastPeerStreamId;
    private bool _peerSettingsReceived;

    private TunnelSettings _peerSettings = TunnelSettings.ProtocolDefaults;
    private int _connectionReceiveWindow;
    private int _connectionUnacknowledged;
    private long _lastReceivedTimestamp;
    /// <summary>How long the smallest RTT sample stands before a newer sample replaces it even when larger.</summary>
    internal static readonly TimeSpan MinRoundTripLifetime = TimeSpan.FromSeconds(10);

    private long _pingSentTimestamp;
    private long _roundTripTicks = -1;
    private long _minRoundTripTicks = long.MaxValue;
    private long _minRoundTripTimestamp;
    private long _lastRttProbeTimestamp;
    private long _bytesReceived;
    private long _dataBytesSent;
    private long _streamsOpened;
    private int _started;
    private Task? _writerTask;
    private Task? _stopReading;

    public TunnelConnection(IDuplexPipe transport, TunnelConnectionOptions options)
    {
        _transport = transport;
        _options = options;
        _limits = options.Limits;
        _logger = options.Logger;
        _time = options.TimeProvider;
        _nextLocalStreamId = options.Role == TunnelRole.Server ? 2 : 1;
        _connectionReceiveWindow = _limits.ConnectionWindowSize;
        _connectionWindowUpdateThreshold = Math.Max(1, _limits.ConnectionWindowSize / FlowControlConstants.WindowUpdateDivisor);
        Writer = new FrameWriter(transport.Output, _limits.MaxQueuedControlFrames);
        FlowControl = new OutputFlowControl(FlowControlConstants.InitialConnectionWindowSize);
        _lastReceivedTimestamp = _time.GetTimestamp();
    }

    public TunnelRole Role => _options.Role;

    public string Name => _options.Name;

    /// <summary>Completes when the peer's SETTINGS have arrived and streams may be opened; faults if the connection closes first.</summary>
    public Task Ready => _ready.Task;

    /// <summary>Completes when the connection has closed, for whatever reason.</summary>
    public Task Closed => _closed.Task;

    /// <summary>
    /// Completes when the peer sends GOAWAY or the connection closes: from then on no new streams, so an owner that
    /// wants capacity opens a replacement now, while this connection drains.
    /// </summary>
    public Task PeerGoingAway => _peerGoingAway.Task;

    /// <summary>The code of the peer's GOAWAY, or null if it sent none.</summary>
    public TunnelErrorCode? PeerGoAwayCode
    {
        get
        {
            lock (_stateLock)
            {
                return _peerGoAwayCode;
            }
        }
    }

    /// <summary>The limits the peer announced.</summary>
    public TunnelSettings PeerSettings => Volatile.Read(ref _peerSettings);

    /// <summary>Streams open on this connection, opened by either side.</summary>
    public int ActiveStreamCount => _streams.Count;

    /// <summary>Streams this side opened that have not finished.</summary>
    public int LocalStreamCount
    {
        get
        {
            lock (_stateLock)
            {
                return _localStreamCount;
            }
        }
    }

    /// <summary>True once either side has started to drain or the connection has closed: no new streams.</summary>
    public bool IsClosing
    {
        get
        {
            lock (_stateLock)
            {
                return _isClosed || _localGoingAway || _peerIsGoingAway;
            }
        }
    }

    public bool IsClosed
    {
        get
        {
            lock (_stateLock)
            {
                return _isClosed;
            }
        }
    }

    /// <summary>Why the connection closed, once it has.</summary>
    public Exception? CloseReason
    {
        get
        {
            lock (_stateLock)
            {
                return _closeReason;
            }
        }
    }

    public TunnelErrorCode CloseErrorCode
    {
        get
        {
            lock (_stateLock)
            {
                return _closeErrorCode;
            }
        }
    }

    /// <summary>The last PING round trip, or null before the first PING was answered.</summary>
    public TimeSpan? RoundTripTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _roundTripTicks);
            return ticks < 0 ? null : TimeSpan.FromTicks(ticks);
        }
    }

    /// <summary>The smallest PING round trip seen: the path's latency without queueing, for window sizing.</summary>
    internal TimeSpan? MinRoundTripTime
    {
        get
        {
            var ticks = Interlocked.Read(ref _minRoundTripTicks);
            return ticks == long.MaxValue ? null : TimeSpan.FromTicks(ticks);
        }
    }

    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public long BytesSent => Writer.BytesWritten;

    public long StreamsOpened => Interlocked.Read(ref _streamsOpened);

    /// <summary>Frames written and flushes made: their ratio is how well writes coalesce.</summary>
    public long FramesSent => Writer.FramesWritten;

    public long Flushes => Writer.Flushes;

    /// <summary>How often a DATA producer had to wait for the peer's credit.</summary>
    public long FlowControlStalls => FlowControl.Stalls;

    internal FrameWriter Writer { get; }

    internal TimeProvider TimeProvider => _time;

    internal TunnelLimits Limits => _limits;

    internal OutputFlowControl FlowControl { get; }

    /// <summary>
    /// Sends SETTINGS and runs the read, write and heartbeat loops until the connection closes. Never throws for
    /// connection failures: they end up in <see cref="CloseReason"/>.
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The connection is already running.");
        }

        Writer.WritePreface(_limits.ToSettings(), _limits.ConnectionWindowSize - FlowControlConstants.InitialConnectionWindowSize);
        var writerTask = RunWriterAsync();
        Volatile.Write(ref _writerTask, writerTask);
        var heartbeatTask = RunHeartbeatAsync();
        using var registration = cancellationToken.UnsafeRegister(
            static state => ((TunnelConnection)state!).Abort(TunnelErrorCode.NoError, "The connection was shut down."),
            this);
        try
        {
            await ReadLoopAsync();
        }
        finally
        {
            Close(TunnelErrorCode.ConnectionLost, "The transport closed.", exception: null, sendGoAway: false);

            // Let the writer send what is queued (GOAWAY above all), but never wait long on a peer that stopped reading.
            try
            {
                await writerTask.WaitAsync(s_writerDrainTimeout, _time, CancellationToken.None);
            }
            catch (TimeoutException)
            {
                _transport.Output.CancelPendingFlush();
                await writerTask;
            }

            await heartbeatTask;
            await (Volatile.Read(ref _stopReading) ?? Task.CompletedTask);
            try
            {
                // Output first: it may still flush; both ends then release the transport (closing a stream twice is harmless).
                await _transport.Output.CompleteAsync();
                await _transport.Input.CompleteAsync();
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // The transport is already gone; nothing is left to release.
            }
            finally
            {
                _closed.TrySetResult();
            }
        }
    }

    /// <summary>Opens a stream to the peer, or returns false when the connection is not ready, closing, or at the peer's stream limit.</summary>
    public bool TryOpenStream([NotNullWhen(true)] out TunnelStream? stream)
    {
        var drain = false;
        lock (_stateLock)
        {
            if (_isClosed || _localGoingAway || _peerIsGoingAway || !_ready.Task.IsCompletedSuccessfully
                || _localStreamCount >= _peerSettings.MaxConcurrentStreams)
            {
                stream = null;
                return false;
            }

            if (_nextLocalStreamId > MaxStreamId - 2)
            {
                drain = true;
                stream = null;
            }
            else
            {
                var id = _nextLocalStreamId;
                _nextLocalStreamId += 2;
                _localStreamCount++;
                stream = new TunnelStream(this, id, isLocal: true, sendWindow: _peerSettings.InitialWindowSize, receiveWindow: _limits.InitialStreamWindowSize);
                _streams[id] = stream;
            }
        }

        if (drain)
        {
            // Stream ids are spent: drain this connection so its owner opens a fresh one (RFC 9113 §5.1.1 does the same).
            GoAway("Stream identifiers exhausted.");
            return false;
        }

        Interlocked.Increment(ref _streamsOpened);
        return stream is not null;
    }

    /// <summary>
    /// Starts a graceful drain: GOAWAY(NO_ERROR) to the peer, no new streams either way, and the connection closes
    /// once the streams in flight have finished.
    /// </summary>
    public void GoAway(string message) => GoAway(TunnelErrorCode.NoError, message);

    /// <summary>
    /// Starts a graceful drain with <paramref name="errorCode"/> NO_ERROR or SUPERSEDED (docs/protocol.md §5.4): no new
    /// streams either way, and the connection closes once the streams in flight have finished.
    /// </summary>
    public void GoAway(TunnelErrorCode errorCode, string message)
    {
        if (!IsGracefulGoAway(errorCode))
        {
            throw new ArgumentOutOfRangeException(nameof(errorCode), errorCode, "A draining GOAWAY carries NO_ERROR or SUPERSEDED; use Abort for errors.");
        }

        lock (_stateLock)
        {
            if (_isClosed || _localGoingAway)
            {
                return;
            }

            _localGoingAway = true;
            _goAwaySent = true;
        }

        Log.Draining(_logger, Name, message);
        Writer.TryEnqueueControl(OutboundFrame.GoAway(Volatile.Read(ref _lastPeerStreamId), errorCode, Encoding.UTF8.GetBytes(message)), out _);
        CloseIfDrained();
    }

    /// <summary>Closes the connection now: GOAWAY with <paramref name="errorCode"/>, every open stream fails.</summary>
    public void Abort(TunnelErrorCode errorCode, string message)
        => Close(errorCode, message, exception: null, sendGoAway: true);

    public async ValueTask DisposeAsync()
    {
        Abort(TunnelErrorCode.NoError, "The connection was disposed.");
        if (Volatile.Read(ref _started) != 0)
        {
            await _closed.Task;
        }

        _closing.Dispose();
    }

    internal void EnqueueControl(in OutboundFrame frame)
    {
        if (!Writer.TryEnqueueControl(frame, out var overBudget) && overBudget)
        {
            Close(TunnelErrorCode.EnhanceYourCalm, "The peer made this side queue too many control frames.", exception: null, sendGoAway: true);
        }
    }

    /// <summary>
    /// Sends a PING to sample the round trip while data flows (at most once a second, one outstanding), so window
    /// growth has a current RTT even when the keep-alive never fires on a busy uplink.
    /// </summary>
    internal void RequestRttSample()
    {
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastRttProbeTimestamp);
        if ((last != 0 && _time.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1))
            || Interlocked.CompareExchange(ref _pingSentTimestamp, now, 0) != 0)
        {
            return;
        }

        Interlocked.Exchange(ref _lastRttProbeTimestamp, now);
        EnqueueControl(OutboundFrame.Ping((ulong)now, ack: false));
    }

    internal void CountDataSent(int count) => Interlocked.Add(ref _dataBytesSent, count);

    internal Exception CreateClosedException()
        => new TunnelStreamException(TunnelErrorCode.ConnectionLost, "The uplink has closed.", CloseReason);

    internal void OnConnectionDataConsumed(int count)
    {
        var pending = Interlocked.Add(ref _connectionUnacknowledged, count);
        if (pending < _connectionWindowUpdateThreshold)
        {
            return;
        }

        var increment = Interlocked.Exchange(ref _connectionUnacknowledged, 0);
        if (increment > 0)
        {
            Interlocked.Add(ref _connectionReceiveWindow, increment);
            EnqueueControl(OutboundFrame.WindowUpdate(0, increment));
        }
    }

    /// <summary>
    /// Queues the first HEADERS of a stream this side opened. Ids must reach the peer in increasing order
    /// (docs/protocol.md §5.1): the peer takes a lower id than one it has already seen for a closed stream and drops
    /// the frame, which would leave the stream waiting forever. <see cref="TryOpenStream"/> hands out ids before the
    /// caller has built its head, so when a stream opened later has already sent its HEADERS, this one moves to a
    /// fresh id (the peer has never seen the old one). Choosing the id and queueing happen under one lock, as
    /// HttpClient's Http2Connection does.
    /// </summary>
    /// <returns>False when the connection is closing or out of ids; the caller still owns <paramref name="block"/>.</returns>
    internal bool TryEnqueueOpeningHeaders(TunnelStream stream, byte[] block, int length, FrameFlags flags)
    {
        lock (_stateLock)
        {
            if (_isClosed)
            {
                return false;
            }

            if (stream.StreamId < _lastLocalStreamIdSent)
            {
                if (_nextLocalStreamId > MaxStreamId - 2
                    || !_streams.TryRemove(new KeyValuePair<int, TunnelStream>(stream.StreamId, stream)))
                {
                    return false;
                }

                stream.StreamId = _nextLocalStreamId;
                _nextLocalStreamId += 2;
                _streams[stream.StreamId] = stream;
            }

            _lastLocalStreamIdSent = stream.StreamId;
            return Writer.TryEnqueue(OutboundFrame.Payload(FrameType.Headers, flags, stream.StreamId, block, 0, length, returnBuffer: true));
        }
    }

    // Enough for the streams a busy uplink runs at once. A pooled pipe keeps the segment objects of the most it ever
    // buffered (up to 256), so a large pool filled slowly over a long-lived uplink: with 128 the soak's live heap grew
    // 8 -> 13.6 MiB in 14 minutes, with 16 it stayed at 9-10 MiB (docs/reliability.md, Soak).
    private const int MaxPooledInputPipes = 16;

    /// <summary>Reset input pipes waiting for a stream (for tests).</summary>
    internal int PooledInputPipeCount
    {
        get
        {
            lock (_inputPipesLock)
            {
                return _inputPipes.Count;
            }
        }
    }

    /// <summary>A stream's input pipe: a reset one from earlier streams when there is one (Kestrel's HTTP/2 streams reuse theirs too).</summary>
    internal Pipe RentInputPipe()
    {
        lock (_inputPipesLock)
        {
            if (_inputPipes.TryPop(out var pipe))
            {
                return pipe;
            }
        }

        return new Pipe(TunnelStream.InputPipeOptions);
    }

    /// <summary>Takes back a pipe whose reader and writer are both complete; beyond the cap it is left to the GC.</summary>
    internal void ReturnInputPipe(Pipe pipe)
    {
        pipe.Reset();
        lock (_inputPipesLock)
        {
            if (_inputPipes.Count < MaxPooledInputPipes)
            {
                _inputPipes.Push(pipe);
            }
        }
    }

    internal void RemoveStream(TunnelStream stream)
    {
        lock (_stateLock)
        {
            // Under the lock, because TryEnqueueOpeningHeaders may move a stream to another id.
            if (!_streams.TryRemove(new KeyValuePair<int, TunnelStream>(stream.StreamId, stream)))
            {
                return;
            }

            if (stream.IsLocal)
            {
                _localStreamCount--;
            }
            else
            {
                _peerStreamCount--;
            }
        }

        CloseIfDrained();
    }

    private void CloseIfDrained()
    {
        bool drained;
        lock (_stateLock)
        {
            drained = (_localGoingAway || _peerIsGoingAway) && !_isClosed && _streams.IsEmpty;
        }

        if (drained)
        {
            Close(TunnelErrorCode.NoError, "Drained.", exception: null, sendGoAway: false);
        }
    }

    private void Close(TunnelErrorCode errorCode, string message, Exception? exception, bool sendGoAway)
    {
        lock (_stateLock)
        {
            if (_isClosed)
            {
                return;
            }

            _isClosed = true;
            _closeErrorCode = errorCode;
            _closeReason = exception ?? new TunnelConnectionException(errorCode, message);
            sendGoAway &= !_goAwaySent || errorCode != TunnelErrorCode.NoError;
            _goAwaySent |= sendGoAway;
        }

        Log.UplinkClosed(_logger, Name, errorCode, message);
        if (sendGoAway)
        {
            // Bypasses the control budget: this is the last frame, and it must not trigger another close.
            Writer.TryEnqueue(OutboundFrame.GoAway(Volatile.Read(ref _lastPeerStreamId), errorCode, Encoding.UTF8.GetBytes(message)));
        }

        Writer.Complete();
        var streamError = new TunnelStreamException(TunnelErrorCode.ConnectionLost, $"The uplink closed: {message}", _closeReason);
        foreach (var pair in _streams)
        {
            pair.Value.Abort(streamError);
        }

        FlowControl.Abort(streamError);
        _ready.TrySetException(streamError);
        _peerGoingAway.TrySetResult();
        Volatile.Write(ref _stopReading, StopReadingAsync());
        _closing.Cancel();
    }

    /// <summary>
    /// Ends the read loop once the writer has sent what was queued before the close (the last stream's frames, GOAWAY).
    /// Not at once: cancelling a pending read may tear the transport down on the spot (SocketsHttpHandler disposes an
    /// upgraded connection whose read is cancelled, which is the TunnelClient's uplink), and frames still queued would
    /// then never leave: the peer would see the transport close with a stream unanswered.
    /// </summary>
    private async Task StopReadingAsync()
    {
        var writer = Volatile.Read(ref _writerTask);
        if (writer is not null && !writer.IsCompleted)
        {
            try
            {
                await writer.WaitAsync(s_writerDrainTimeout, _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The peer stopped reading: give up on what is queued.
                _transport.Output.CancelPendingFlush();
            }
        }

        _transport.Input.CancelPendingRead();
    }

    private async Task RunWriterAsync()
    {
        try
        {
            await Writer.RunAsync();
            Close(TunnelErrorCode.ConnectionLost, "The transport stopped accepting writes.", exception: null, sendGoAway: false);
        }
        catch (Exception ex)
        {
            Close(TunnelErrorCode.ConnectionLost, "Writing to the transport failed.", ex, sendGoAway: false);
        }
    }

    private async Task ReadLoopAsync()
    {
        var input = _transport.Input;
        // Bytes of a partial frame left in the pipe by the previous read: the next read returns them again.
        long carried = 0;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                var buffer = result.Buffer;
                Interlocked.Add(ref _bytesReceived, buffer.Length - carried);
                Volatile.Write(ref _lastReceivedTimestamp, _time.GetTimestamp());
                try
                {
                    while (FrameReader.TryReadFrame(ref buffer, _limits.MaxFrameSize, out var header, out var payload))
                    {
                        ProcessFrame(header, payload);
                    }

                    if (result.IsCanceled || IsClosed)
                    {
                        return;
                    }

                    if (result.IsCompleted)
                    {
                        var message = buffer.IsEmpty ? "The peer closed the transport." : "The peer closed the transport in the middle of a frame.";
                        Close(TunnelErrorCode.ConnectionLost, message, exception: null, sendGoAway: false);
                        return;
                    }
                }
                finally
                {
                    carried = buffer.Length;
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }
        }
        catch (TunnelConnectionException ex)
        {
            Log.ProtocolError(_logger, Name, ex.ErrorCode, ex.Message);
            Close(ex.ErrorCode, ex.Message, ex, sendGoAway: true);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException
            || ex.GetType().Name == "ConnectionResetException" || ex.GetType().Name == "ConnectionAbortedException")
        {
            Close(TunnelErrorCode.ConnectionLost, ex.Message, ex, sendGoAway: false);
        }
        catch (Exception ex)
        {
            Log.UnexpectedError(_logger, Name, ex);
            Close(TunnelErrorCode.InternalError, "Internal error.", ex, sendGoAway: true);
        }
    }

    private void ProcessFrame(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        // An ACK cannot come first either: the peer sends its own SETTINGS before anything else.
        if (!_peerSettingsReceived && (header.Type != FrameType.Settings || header.HasFlag(FrameFlags.Ack)))
        {
            throw new TunnelConnectionException(TunnelErrorCode.ProtocolError, $"The first frame must be SETTINGS; got {header.Type} with flags 0x{(byte)header.Flags:X2}.");
        }

        switch (header.Type)
        {
            case FrameType.Data:
                ProcessData(header, payload);
                break;
            case FrameType.Headers:
                ProcessHeaders(header, payload);
                break;
            case FrameType.Reset:
                ProcessReset(header, payload);
                break;
            case FrameType.Settings:
                ProcessSettings(header, payload);
                break;
            case FrameType.Ping:
                ProcessPing(header, payload);
                break;
            case FrameType.GoAway:
                ProcessGoAway(payload);
                break;
            case FrameType.WindowUpdate:
                ProcessWindowUpdate(header, payload);
                break;
        }
    }

    private void ProcessData(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        var length = header.PayloadLength;
        if (length > Volatile.Read(ref _connectionReceiveWindow))
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.FlowControlError,
                $"Received {length} bytes of DATA with {_connectionReceiveWindow} bytes of connection window left.");
        }

        Interlocked.Add(ref _connectionReceiveWindow, -length);
        if (_streams.TryGetValue(header.StreamId, out var stream))
        {
            stream.OnData(payload, header.HasFlag(FrameFlags.EndStream));
            return;
        }

        EnsureNotIdle(header);

        // A stream this side already closed (reliability.md A6): drop the bytes but give the credit back.
        if (length > 0)
        {
            OnConnectionDataConsumed(length);
        }
    }

    private void ProcessHeaders(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        var streamId = header.StreamId;
        if (_streams.TryGetValue(streamId, out var existing))
        {
            existing.OnHeaders(payload, header.HasFlag(FrameFlags.EndStream));
            return;
        }

        if (!IsPeerStreamId(streamId) || streamId <= _lastPeerStreamId)
        {
            // A closed stream is fine (race with our RESET); a local id we never opened is not.
            EnsureNotIdle(header);
            return;
        }

        Volatile.Write(ref _lastPeerStreamId, streamId);
        string? refusal = null;
        TunnelStream? stream = null;
        lock (_stateLock)
        {
            if (_isClosed || _localGoingAway)
            {
                refusal = "the connection is draining";
            }
            else if (_peerStreamCount >= _limits.MaxConcurrentStreams)
            {
                refusal = "the peer exceeded MaxConcurrentStreams";
            }
            else if (_options.StreamHandler is null)
            {
                refusal = "this side accepts no streams";
            }
            else
            {
                _peerStreamCount++;
                stream = new TunnelStream(this, streamId, isLocal: false, sendWindow: _peerSettings.InitialWindowSize, receiveWindow: _limits.InitialStreamWindowSize);
                _streams[streamId] = stream;
            }
        }

        if (stream is null)
        {
            Log.StreamRefused(_logger, Name, streamId, refusal!);
            EnqueueControl(OutboundFrame.Reset(streamId, TunnelErrorCode.RefusedStream));
            return;
        }

        Interlocked.Increment(ref _streamsOpened);
        stream.OnHeaders(payload, header.HasFlag(FrameFlags.EndStream));
        _options.StreamHandler!.OnStreamOpened(stream);
    }

    private void ProcessReset(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        var errorCode = (TunnelErrorCode)ReadUInt32(payload);
        if (_streams.TryGetValue(header.StreamId, out var stream))
        {
            stream.OnReset(errorCode);
            return;
        }

        EnsureNotIdle(header);
    }

    private void ProcessSettings(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        if (header.HasFlag(FrameFlags.Ack))
        {
            return;
        }

        if (_peerSettingsReceived)
        {
            throw new TunnelConnectionException(TunnelErrorCode.ProtocolError, "SETTINGS may be sent only once, as the first frame.");
        }

        var settings = SettingsFrame.ReadPayload(payload);
        Volatile.Write(ref _peerSettings, settings);
        _peerSettingsReceived = true;
        EnqueueControl(OutboundFrame.SettingsAck());
        Log.UplinkEstablished(_logger, Name, settings.MaxConcurrentStreams, settings.InitialWindowSize, settings.MaxFrameSize);
        _ready.TrySetResult();
    }

    private void ProcessPing(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        Span<byte> opaque = stackalloc byte[8];
        payload.CopyTo(opaque);
        var value = BinaryPrimitives.ReadUInt64BigEndian(opaque);
        if (!header.HasFlag(FrameFlags.Ack))
        {
            EnqueueControl(OutboundFrame.Ping(value, ack: true));
            return;
        }

        var sent = Interlocked.Exchange(ref _pingSentTimestamp, 0);
        if (sent != 0 && (ulong)sent == value)
        {
            var now = _time.GetTimestamp();
            var ticks = Math.Max(1, _time.GetElapsedTime(sent, now).Ticks);
            Interlocked.Exchange(ref _roundTripTicks, ticks);

            // A windowed minimum, as BBR keeps its min RTT: a path can get slower for good (a re-route, a congested
            // link), and a minimum taken on a quiet fast path long ago would keep every window sized for that path.
            // Only the read loop writes these.
            if (ticks < Interlocked.Read(ref _minRoundTripTicks)
                || _time.GetElapsedTime(_minRoundTripTimestamp, now) >= MinRoundTripLifetime)
            {
                _minRoundTripTimestamp = now;
                Interlocked.Exchange(ref _minRoundTripTicks, ticks);
            }
        }
    }

    private void ProcessGoAway(in ReadOnlySequence<byte> payload)
    {
        Span<byte> fixedPart = stackalloc byte[8];
        payload.Slice(0, 8).CopyTo(fixedPart);
        var lastStreamId = (int)(BinaryPrimitives.ReadUInt32BigEndian(fixedPart) & 0x7FFF_FFFFu);
        var errorCode = (TunnelErrorCode)BinaryPrimitives.ReadUInt32BigEndian(fixedPart.Slice(4));
        var debugLength = (int)Math.Min(payload.Length - 8, 1024);
        var message = debugLength > 0 ? Encoding.UTF8.GetString(payload.Slice(8, debugLength)) : string.Empty;
        Log.GoAwayReceived(_logger, Name, errorCode, lastStreamId, message);

        lock (_stateLock)
        {
            _peerIsGoingAway = true;
            _peerGoAwayCode = errorCode;
        }

        _peerGoingAway.TrySetResult();

        if (!IsGracefulGoAway(errorCode))
        {
            Close(errorCode, $"The peer sent GOAWAY: {message}", exception: null, sendGoAway: false);
            return;
        }

        // Streams this side opened above the peer's last id were never processed: fail them as refused so the
        // caller can retry them elsewhere (docs/protocol.md §5.4).
        foreach (var pair in _streams)
        {
            if (pair.Value.IsLocal && pair.Key > lastStreamId)
            {
                pair.Value.Abort(new TunnelStreamException(TunnelErrorCode.RefusedStream, "The peer is draining and did not process this stream."));
            }
        }

        CloseIfDrained();
    }

    private void ProcessWindowUpdate(in FrameHeader header, in ReadOnlySequence<byte> payload)
    {
        var increment = (int)(ReadUInt32(payload) & 0x7FFF_FFFFu);
        if (header.StreamId == 0)
        {
            if (increment == 0)
            {
                throw new TunnelConnectionException(TunnelErrorCode.ProtocolError, "A connection WINDOW_UPDATE had an increment of 0.");
            }

            FlowControl.OnConnectionWindowUpdate(increment);
            return;
        }

        if (_streams.TryGetValue(header.StreamId, out var stream))
        {
            if (increment == 0)
            {
                stream.Reset(TunnelErrorCode.ProtocolError, "A stream WINDOW_UPDATE had an increment of 0.");
                return;
            }

            stream.OnWindowUpdate(increment);
            return;
        }

        EnsureNotIdle(header);
    }

    /// <summary>A frame for a stream not in the table is fine if the stream existed once; for one never opened it is a protocol error.</summary>
    private void EnsureNotIdle(in FrameHeader header)
    {
        var id = header.StreamId;
        bool everOpened;
        if (IsPeerStreamId(id))
        {
            everOpened = id <= _lastPeerStreamId;
        }
        else
        {
            lock (_stateLock)
            {
                everOpened = id < _nextLocalStreamId;
            }
        }

        if (!everOpened)
        {
            throw new TunnelConnectionException(
                TunnelErrorCode.ProtocolError,
                $"A {header.Type} frame named stream {id}, which was never opened.");
        }
    }

    private static bool IsGracefulGoAway(TunnelErrorCode code) => code is TunnelErrorCode.NoError or TunnelErrorCode.Superseded;

    private bool IsPeerStreamId(int streamId) => (streamId & 1) == (_options.Role == TunnelRole.Server ? 1 : 0);

    private async Task RunHeartbeatAsync()
    {
        var interval = _limits.KeepAliveInterval;
        var timeout = _limits.KeepAliveTimeout;
        var tick = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, Math.Min(interval.Ticks, timeout.Ticks) / 2));
        using var timer = new PeriodicTimer(tick, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(_closing.Token))
            {
                var idle = _time.GetElapsedTime(Volatile.Read(ref _lastReceivedTimestamp));
                if (idle >= timeout)
                {
                    Log.KeepAliveTimeout(_logger, Name, idle);
                    Close(TunnelErrorCode.ConnectionLost, $"No frame from the peer for {idle.TotalSeconds:0.#} s.", exception: null, sendGoAway: true);
                    return;
                }

                if (idle >= interval && Interlocked.Read(ref _pingSentTimestamp) == 0)
                {
                    var now = _time.GetTimestamp();
                    Interlocked.Exchange(ref _pingSentTimestamp, now);
                    EnqueueControl(OutboundFrame.Ping((ulong)now, ack: false));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static uint ReadUInt32(in ReadOnlySequence<byte> payload)
    {
        Span<byte> bytes = stackalloc byte[4];
        payload.Slice(0, 4).CopyTo(bytes);
        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }
}
