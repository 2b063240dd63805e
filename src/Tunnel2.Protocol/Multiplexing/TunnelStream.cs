using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Tasks.Sources;
using Tunnel2.Protocol.FlowControl;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>
/// One exchange on an uplink: a head each way (HEADERS), then DATA each way, each side ending with END_STREAM, or
/// either side ending both directions with RESET. Kestrel's Http2Stream plays the same part.
/// </summary>
/// <remarks>
/// One producer writes a stream at a time and one consumer reads it, as Kestrel's request and response bodies;
/// the connection's read loop is the only other party, and it never waits on either.
/// </remarks>
public sealed class TunnelStream : IValueTaskSource<int>, IValueTaskSource<ReceivedHeaderBlock>
{
    internal static readonly PipeOptions InputPipeOptions = new(
        pool: MemoryPool<byte>.Shared,
        readerScheduler: PipeScheduler.ThreadPool,
        writerScheduler: PipeScheduler.Inline,
        // Flow control bounds what can arrive, so the read loop's writes must never wait (pause threshold 0).
        pauseWriterThreshold: 0,
        resumeWriterThreshold: 0,
        minimumSegmentSize: 4096,
        useSynchronizationContext: false);

    private readonly TunnelConnection _connection;
    private readonly Lock _lock = new();
    // Rented from the connection and given back once both its ends are complete (both flags below, under _lock):
    // a request costs no Pipe, no segment stack and no reader/writer objects once the uplink is warm.
    private readonly Pipe _inputPipe;
    private bool _inputWriterCompleting;
    private bool _inputWriterCompleted;
    private bool _inputReaderCompleted;
    private readonly StreamInput _input;
    private int _windowUpdateThreshold;
    private int _windowSize;
    private long _lastWindowUpdateTimestamp;

    // Receive side, guarded by _lock.
    private int _receiveWindow;
    private int _unacknowledgedConsumed;
    private long _unconsumedBytes;
    private bool _inputAbandoned;
    private bool _headReceived;
    private ReceivedHeaderBlock _pendingHead;
    private ReceivedHeaderBlock _trailers;
    private bool _headWaiting;
    private CancellationTokenRegistration _headCancellation;
    private ManualResetValueTaskSourceCore<ReceivedHeaderBlock> _headSource;

    // State, guarded by _lock.
    private bool _headersSent;
    private bool _localEnded;

    // Set once this side's last frame (END_STREAM) is in the writer's queue, or the stream was aborted: only then may
    // the stream leave the connection's table. Leaving earlier lets a draining connection complete its writer first,
    // and the END_STREAM that was about to be queued would never be sent.
    private bool _localEndQueued;
    private bool _remoteEnded;
    private bool _removed;
    private Exception? _abortReason;
    private CancellationTokenSource? _abortedSource;
    private Action<object?>? _abortCallback;
    private object? _abortCallbackState;

    // Send credit, guarded by the connection's OutputFlowControl lock.
    private ManualResetValueTaskSourceCore<int> _creditSource;
    private CancellationTokenRegistration _creditCancellation;

    internal TunnelStream(TunnelConnection connection, int streamId, bool isLocal, int sendWindow, int receiveWindow)
    {
        _connection = connection;
        StreamId = streamId;
        IsLocal = isLocal;
        SendWindow = sendWindow;
        _receiveWindow = receiveWindow;
        _windowSize = receiveWindow;
        _windowUpdateThreshold = Math.Max(1, receiveWindow / FlowControlConstants.WindowUpdateDivisor);
        _inputPipe = connection.RentInputPipe();
        _input = new StreamInput(this, _inputPipe.Reader);
        _headSource.RunContinuationsAsynchronously = true;
        _creditSource.RunContinuationsAsynchronously = true;
    }

    /// <summary>
    /// The stream's id. For a stream this side opened it can change once, before its first HEADERS leaves, when a
    /// stream opened later was sent first (ids must reach the peer in increasing order, docs/protocol.md §5.1).
    /// </summary>
    public int StreamId { get; internal set; }

    /// <summary>True when this endpoint opened the stream.</summary>
    public bool IsLocal { get; }

    public TunnelConnection Connection => _connection;

    /// <summary>The peer's DATA. Completes at the peer's END_STREAM; throws <see cref="TunnelStreamException"/> after a RESET.</summary>
    public PipeReader Input => _input;

    /// <summary>Largest HEADERS payload the peer accepts.</summary>
    public int MaxHeaderBlockSize => _connection.PeerSettings.MaxFrameSize;

    /// <summary>Cancelled when the stream is reset by either side or its connection ends.</summary>
    public CancellationToken Aborted
    {
        get
        {
            lock (_lock)
            {
                if (_abortedSource is null)
                {
                    _abortedSource = new CancellationTokenSource();
                    if (_abortReason is not null)
                    {
                        _abortedSource.Cancel();
                    }
                }

                return _abortedSource.Token;
            }
        }
    }

    /// <summary>
    /// Sets the one callback run when the stream is aborted (reset by either side, or its connection ended), or clears
    /// it with null. Cheaper than registering on <see cref="Aborted"/>, which takes a token source per stream: a
    /// forwarder that already has a cancellation source of its own (one per backend connection) needs only this. The
    /// callback runs on the aborting thread, outside the stream's lock; it may still run once just after being cleared.
    /// </summary>
    /// <returns>False when the stream has already been aborted: nothing is set and nothing will run.</returns>
    public bool TrySetAbortCallback(Action<object?>? callback, object? state)
    {
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                return callback is null;
            }

            _abortCallback = callback;
            _abortCallbackState = callback is null ? null : state;
            return true;
        }
    }

    /// <summary>Why the stream ended abnormally, or null.</summary>
    public Exception? AbortReason
    {
        get
        {
            lock (_lock)
            {
                return _abortReason;
            }
        }
    }

    internal long SendWindow { get; set; }

    internal int DesiredCredit { get; private set; }

    internal bool IsWaitingForCredit { get; private set; }

    /// <summary>Sends the head (or trailers). Takes ownership of <paramref name="block"/>, a pooled array.</summary>
    /// <returns>False when the stream or connection has ended; the block is returned to the pool.</returns>
    public bool TrySendHeaders(byte[] block, int length, bool endStream)
    {
        if (length > MaxHeaderBlockSize)
        {
            ArrayPool<byte>.Shared.Return(block);
            throw new InvalidOperationException($"A header block of {length} bytes exceeds the peer's limit of {MaxHeaderBlockSize}.");
        }

        bool opening;
        lock (_lock)
        {
            if (_localEnded)
            {
                ArrayPool<byte>.Shared.Return(block);
                return false;
            }

            opening = IsLocal && !_headersSent;
            _headersSent = true;
            _localEnded = endStream;
        }

        var flags = endStream ? FrameFlags.EndStream : FrameFlags.None;
        var queued = opening
            ? _connection.TryEnqueueOpeningHeaders(this, block, length, flags)
            : _connection.Writer.TryEnqueue(OutboundFrame.Payload(FrameType.Headers, flags, StreamId, block, 0, length, returnBuffer: true));
        if (!queued)
        {
            ArrayPool<byte>.Shared.Return(block);
            if (opening)
            {
                // The peer never heard of this stream: end it here so it does not hold a concurrency slot.
                Abort(new TunnelStreamException(TunnelErrorCode.RefusedStream, "The stream could not be opened: the uplink is closing or out of stream ids."));
            }

            return false;
        }

        if (endStream)
        {
            MarkLocalEndQueued();
            TryRemove();
        }

        return true;
    }

    /// <summary>
    /// Sends <paramref name="length"/> bytes of <paramref name="buffer"/> as DATA, split by credit and by the peer's
    /// frame size. Takes ownership of <paramref name="buffer"/> (an <see cref="ArrayPool{T}.Shared"/> array) in every case.
    /// Completes when the frames are queued, which needs credit; it does not wait for the bytes to be written.
    /// </summary>
    public async ValueTask SendDataAsync(byte[] buffer, int length, bool endStream, CancellationToken cancellationToken)
    {
        var offset = 0;
        var sharedWithWriter = false;
        var owned = true;
        try
        {
            if (length == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                owned = false;
                if (endStream)
                {
                    Complete();
                }

                return;
            }

            EnsureCanSend();
            var maxFrame = _connection.PeerSettings.MaxFrameSize;
            while (offset < length)
            {
                var granted = await _connection.FlowControl.AcquireAsync(this, Math.Min(length - offset, maxFrame), cancellationToken);
                var last = offset + granted == length;
                var flags = last && endStream ? FrameFlags.EndStream : FrameFlags.None;
                if (last && endStream)
                {
                    lock (_lock)
                    {
                        if (_localEnded)
                        {
                            // A RESET that raced the last frame is the stream's end, not a caller error.
                            throw _abortReason ?? StreamEnded();
                        }

                        _localEnded = true;
                    }
                }

                if (!_connection.Writer.TryEnqueue(OutboundFrame.Payload(FrameType.Data, flags, StreamId, buffer, offset, granted, returnBuffer: last)))
                {
                    // The writer is gone and may still hold earlier slices: let the GC have the array.
                    owned = false;
                    throw _connection.CreateClosedException();
                }

                _connection.CountDataSent(granted);
                sharedWithWriter = true;
                owned = !last;
                offset += granted;
            }

            if (endStream)
            {
                MarkLocalEndQueued();
                TryRemove();
            }
        }
        finally
        {
            if (owned)
            {
                if (!sharedWithWriter)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                else if (!_connection.Writer.TryEnqueue(OutboundFrame.Release(buffer)))
                {
                    // Writer gone: the array is dropped for the GC rather than returned while a slice may be in use.
                }
            }
        }
    }

    /// <summary>Copies <paramref name="data"/> into pooled frames and sends it as DATA.</summary>
    public ValueTask WriteAsync(ReadOnlySequence<byte> data, bool endStream, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            if (endStream)
            {
                Complete();
            }

            return ValueTask.CompletedTask;
        }

        if (data.Length > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(data), "A single write is limited to 2 GiB.");
        }

        var length = (int)data.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(length);
        data.CopyTo(buffer);
        return SendDataAsync(buffer, length, endStream, cancellationToken);
    }

    /// <summary>Copies <paramref name="data"/> into pooled frames and sends it as DATA.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, bool endStream, CancellationToken cancellationToken)
        => WriteAsync(new ReadOnlySequence<byte>(data), endStream, cancellationToken);

    /// <summary>Ends this side of the stream (END_STREAM on an empty DATA frame) unless it has already ended.</summary>
    public void Complete()
    {
        lock (_lock)
        {
            if (_localEnded)
            {
                return;
            }

            _localEnded = true;
        }

        _connection.Writer.TryEnqueue(OutboundFrame.EmptyData(StreamId, FrameFlags.EndStream));
        MarkLocalEndQueued();
        TryRemove();
    }

    /// <summary>Ends both directions at once with RESET. Does nothing if the stream has already ended.</summary>
    public void Reset(TunnelErrorCode errorCode, string? reason = null)
    {
        bool peerKnowsStream;
        lock (_lock)
        {
            if (_removed || _abortReason is not null)
            {
                return;
            }

            peerKnowsStream = !IsLocal || _headersSent;
        }

        if (peerKnowsStream)
        {
            _connection.EnqueueControl(OutboundFrame.Reset(StreamId, errorCode));
        }

        Abort(new TunnelStreamException(errorCode, reason ?? $"The stream was reset locally ({errorCode})."));
    }

    /// <summary>Waits for the peer's head: the request on a peer-opened stream, the response on a local one.</summary>
    public ValueTask<ReceivedHeaderBlock> ReadHeadersAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (!_pendingHead.IsEmpty)
            {
                var head = _pendingHead;
                _pendingHead = default;
                return new ValueTask<ReceivedHeaderBlock>(head);
            }

            if (_abortReason is not null)
            {
                return ValueTask.FromException<ReceivedHeaderBlock>(_abortReason);
            }

            if (_headWaiting || _headReceived)
            {
                return ValueTask.FromException<ReceivedHeaderBlock>(new InvalidOperationException("The head has already been read."));
            }

            _headSource.Reset();
            _headWaiting = true;
        }

        if (cancellationToken.CanBeCanceled)
        {
            _headCancellation = cancellationToken.UnsafeRegister(
                static (state, token) => ((TunnelStream)state!).FailHeadWait(new OperationCanceledException(token)),
                this);
        }

        return new ValueTask<ReceivedHeaderBlock>(this, _headSource.Version);
    }

    /// <summary>Takes the trailers the peer sent with END_STREAM, if any. Call after <see cref="Input"/> completed.</summary>
    public bool TryTakeTrailers(out ReceivedHeaderBlock trailers)
    {
        lock (_lock)
        {
            trailers = _trailers;
            _trailers = default;
            return !trailers.IsEmpty;
        }
    }

    internal void OnHeaders(in ReadOnlySequence<byte> payload, bool endStream)
    {
        ReceivedHeaderBlock block = default;
        var completeWait = false;
        string? resetReason = null;
        var resetCode = TunnelErrorCode.NoError;
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                // Benign race (reliability.md A6): a frame for a stream this side already reset.
                return;
            }

            if (_remoteEnded)
            {
                (resetCode, resetReason) = (TunnelErrorCode.StreamClosed, "HEADERS after the peer ended the stream.");
            }
            else if (!_headReceived)
            {
                block = ReceivedHeaderBlock.CopyFrom(payload, endStream);
                _headReceived = true;
                completeWait = _headWaiting;
                _headWaiting = false;
                if (!completeWait)
                {
                    _pendingHead = block;
                }
            }
            else if (!endStream)
            {
                (resetCode, resetReason) = (TunnelErrorCode.ProtocolError, "Trailers must end the stream.");
            }
            else
            {
                _trailers = ReceivedHeaderBlock.CopyFrom(payload, endStream);
            }
        }

        if (resetReason is not null)
        {
            Reset(resetCode, resetReason);
            return;
        }

        if (completeWait)
        {
            _headCancellation.Dispose();
            _headSource.SetResult(block);
        }

        if (endStream)
        {
            OnRemoteEnd();
        }
    }

    internal void OnData(in ReadOnlySequence<byte> payload, bool endStream)
    {
        var length = (int)payload.Length;
        var creditBack = 0;
        string? resetReason = null;
        var resetCode = TunnelErrorCode.NoError;
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                creditBack = length;
                endStream = false;
            }
            else if (!_headReceived)
            {
                creditBack = length;
                (resetCode, resetReason) = (TunnelErrorCode.ProtocolError, "DATA before HEADERS.");
            }
            else if (_remoteEnded)
            {
                creditBack = length;
                (resetCode, resetReason) = (TunnelErrorCode.StreamClosed, "DATA after the peer ended the stream.");
            }
            else
            {
                if (length > _receiveWindow)
                {
                    throw new TunnelConnectionException(
                        TunnelErrorCode.FlowControlError,
                        $"Stream {StreamId} received {length} bytes of DATA with {_receiveWindow} bytes of window left.");
                }

                _receiveWindow -= length;
                if (_inputAbandoned)
                {
                    creditBack = length;
                }
                else if (length > 0)
                {
                    // One buffer sized to the frame rather than the pipe's 4 KiB default: a 64 KiB frame then reaches
                    // the consumer as one segment instead of sixteen.
                    var destination = _inputPipe.Writer.GetSpan(length);
                    payload.CopyTo(destination);
                    _inputPipe.Writer.Advance(length);

                    _unconsumedBytes += length;
                    var flush = _inputPipe.Writer.FlushAsync();
                    Debug.Assert(flush.IsCompleted, "The input pipe never applies back pressure.");
                    flush.GetAwaiter().GetResult();
                }
            }
        }

        if (creditBack > 0)
        {
            _connection.OnConnectionDataConsumed(creditBack);
        }

        if (resetReason is not null)
        {
            Reset(resetCode, resetReason);
        }
        else if (endStream)
        {
            OnRemoteEnd();
        }
    }

    internal void OnReset(TunnelErrorCode errorCode)
    {
        Abort(new TunnelStreamException(errorCode, $"The peer reset the stream ({errorCode}).") { ResetByPeer = true });
    }

    internal void OnWindowUpdate(int increment)
    {
        if (AbortReason is not null)
        {
            return;
        }

        if (!_connection.FlowControl.OnStreamWindowUpdate(this, increment))
        {
            Reset(TunnelErrorCode.FlowControlError, "A WINDOW_UPDATE took the stream window above 2^31-1.");
        }
    }

    /// <summary>Ends the stream because the connection ended or the stream was reset.</summary>
    internal void Abort(Exception reason)
    {
        ReceivedHeaderBlock pendingHead;
        ReceivedHeaderBlock trailers;
        bool failHeadWait;
        long creditBack;
        CancellationTokenSource? abortedSource;
        Action<object?>? abortCallback;
        object? abortCallbackState;
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                return;
            }

            _abortReason = reason;
            _localEnded = true;
            _localEndQueued = true;
            _remoteEnded = true;
            failHeadWait = _headWaiting;
            _headWaiting = false;
            pendingHead = _pendingHead;
            _pendingHead = default;
            trailers = _trailers;
            _trailers = default;
            creditBack = _unconsumedBytes;
            _unconsumedBytes = 0;
            _inputAbandoned = true;
            abortedSource = _abortedSource;
            abortCallback = _abortCallback;
            abortCallbackState = _abortCallbackState;
            _abortCallback = null;
            _abortCallbackState = null;
        }

        pendingHead.Dispose();
        trailers.Dispose();
        CompleteInputWriter(reason);
        _connection.FlowControl.CancelWait(this, reason);
        if (failHeadWait)
        {
            _headCancellation.Dispose();
            _headSource.SetException(reason);
        }

        if (creditBack > 0)
        {
            _connection.OnConnectionDataConsumed((int)creditBack);
        }

        TryRemove();
        abortedSource?.Cancel();
        abortCallback?.Invoke(abortCallbackState);
    }

    internal void OnInputConsumed(long count)
    {
        var streamIncrement = 0;
        lock (_lock)
        {
            if (_inputAbandoned)
            {
                return;
            }

            _unconsumedBytes -= count;
            if (!_remoteEnded)
            {
                _unacknowledgedConsumed += (int)count;
                if (_unacknowledgedConsumed >= _windowUpdateThreshold)
                {
                    streamIncrement = _unacknowledgedConsumed + GrowWindow(_unacknowledgedConsumed);
                    _unacknowledgedConsumed = 0;
                    _receiveWindow += streamIncrement;
                }
            }
        }

        if (streamIncrement > 0)
        {
            _connection.EnqueueControl(OutboundFrame.WindowUpdate(StreamId, streamIncrement));
        }

        _connection.OnConnectionDataConsumed((int)count);
    }

    /// <summary>
    /// Doubles the window when the consumer drained more than a window per round trip since the last update
    /// (delivered / elapsed &gt; window / RTT: the window, not the consumer, limits the stream), up to
    /// <see cref="TunnelLimits.MaxStreamWindowSize"/>. Called under the lock.
    /// </summary>
    /// <returns>The extra credit to grant.</returns>
    private int GrowWindow(int delivered)
    {
        var time = _connection.TimeProvider;
        var now = time.GetTimestamp();
        var last = _lastWindowUpdateTimestamp;
        _lastWindowUpdateTimestamp = now;
        var max = _connection.Limits.MaxStreamWindowSize;
        if (_windowSize >= max || last == 0)
        {
            return 0;
        }

        _connection.RequestRttSample();
        if (_connection.MinRoundTripTime is not { } rtt)
        {
            return 0;
        }

        var elapsed = time.GetElapsedTime(last, now);
        if ((double)delivered * rtt.Ticks <= (double)_windowSize * elapsed.Ticks)
        {
            return 0;
        }

        var grown = (int)Math.Min(max, (long)_windowSize * 2);
        var extra = grown - _windowSize;
        _windowSize = grown;
        _windowUpdateThreshold = Math.Max(1, grown / FlowControlConstants.WindowUpdateDivisor);
        return extra;
    }

    /// <summary>Called once, after the consumer completed <see cref="Input"/>'s pipe reader.</summary>
    internal void OnInputCompleted()
    {
        long creditBack = 0;
        bool recycle;
        lock (_lock)
        {
            _inputReaderCompleted = true;
            recycle = _inputWriterCompleted;
            if (!_inputAbandoned)
            {
                _inputAbandoned = true;
                creditBack = _unconsumedBytes;
                _unconsumedBytes = 0;
            }
        }

        if (creditBack > 0)
        {
            _connection.OnConnectionDataConsumed((int)creditBack);
        }

        if (recycle)
        {
            _connection.ReturnInputPipe(_inputPipe);
        }
    }

    /// <summary>
    /// Completes the input pipe's writer exactly once (the peer's END_STREAM, or an abort), then gives the pipe back if
    /// the reader is complete too. Exactly one of this and <see cref="OnInputCompleted"/> sees both flags set.
    /// </summary>
    private void CompleteInputWriter(Exception? reason)
    {
        lock (_lock)
        {
            if (_inputWriterCompleting)
            {
                return;
            }

            _inputWriterCompleting = true;
        }

        _inputPipe.Writer.Complete(reason);
        bool recycle;
        lock (_lock)
        {
            _inputWriterCompleted = true;
            recycle = _inputReaderCompleted;
        }

        if (recycle)
        {
            _connection.ReturnInputPipe(_inputPipe);
        }
    }

    internal void BeginCreditWait(int desired)
    {
        _creditSource.Reset();
        DesiredCredit = desired;
        IsWaitingForCredit = true;
    }

    internal ValueTask<int> AwaitCredit(CancellationToken cancellationToken)
    {
        var version = _creditSource.Version;
        if (cancellationToken.CanBeCanceled)
        {
            _creditCancellation = cancellationToken.UnsafeRegister(
                static (state, token) =>
                {
                    var stream = (TunnelStream)state!;
                    stream._connection.FlowControl.CancelWait(stream, new OperationCanceledException(token));
                },
                this);
        }

        return new ValueTask<int>(this, version);
    }

    internal void CompleteCreditWait(int granted)
    {
        IsWaitingForCredit = false;
        _creditSource.SetResult(granted);
    }

    internal void FailCreditWait(Exception reason)
    {
        IsWaitingForCredit = false;
        _creditSource.SetException(reason);
    }

    private void FailHeadWait(Exception reason)
    {
        lock (_lock)
        {
            if (!_headWaiting)
            {
                return;
            }

            _headWaiting = false;
        }

        _headSource.SetException(reason);
    }

    private void OnRemoteEnd()
    {
        lock (_lock)
        {
            if (_remoteEnded)
            {
                return;
            }

            _remoteEnded = true;
        }

        CompleteInputWriter(reason: null);
        TryRemove();
    }

    private void EnsureCanSend()
    {
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                throw _abortReason;
            }

            if (_localEnded)
            {
                throw StreamEnded();
            }
        }
    }

    private InvalidOperationException StreamEnded() => new($"Stream {StreamId} has already ended its side.");

    private void MarkLocalEndQueued()
    {
        lock (_lock)
        {
            _localEndQueued = true;
        }
    }

    private void TryRemove()
    {
        lock (_lock)
        {
            if (_removed || !_localEndQueued || !_remoteEnded)
            {
                return;
            }

            _removed = true;
        }

        _connection.RemoveStream(this);
    }

    int IValueTaskSource<int>.GetResult(short token)
    {
        _creditCancellation.Dispose();
        _creditCancellation = default;
        return _creditSource.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource<int>.GetStatus(short token) => _creditSource.GetStatus(token);

    void IValueTaskSource<int>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _creditSource.OnCompleted(continuation, state, token, flags);

    ReceivedHeaderBlock IValueTaskSource<ReceivedHeaderBlock>.GetResult(short token)
    {
        _headCancellation.Dispose();
        _headCancellation = default;
        return _headSource.GetResult(token);
    }

    ValueTaskSourceStatus IValueTaskSource<ReceivedHeaderBlock>.GetStatus(short token) => _headSource.GetStatus(token);

    void IValueTaskSource<ReceivedHeaderBlock>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _headSource.OnCompleted(continuation, state, token, flags);
}
