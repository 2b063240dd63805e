using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Tunnel2.Protocol.Framing;

/// <summary>
/// The single writer of one uplink (Kestrel's Http2FrameWriter since dotnet/aspnetcore#40925): every producer queues
/// frames, one loop writes them into the output pipe and flushes only when the queue is empty, so frames that become
/// ready together leave in one send.
/// </summary>
/// <remarks>
/// The queue has no count limit; what bounds it is the protocol (docs/adr/0002-writer-queue-bound.md): DATA needs
/// flow-control credit before it is queued, each stream queues at most one HEADERS and one RESET, and control frames
/// are capped by <see cref="TunnelLimits.MaxQueuedControlFrames"/>. A count-bounded queue would let the read loop wait
/// on its own writer, and two peers doing that to each other deadlock.
/// </remarks>
internal sealed class FrameWriter
{
    /// <summary>Flush mid-batch once this much is buffered, so a long burst starts moving before the queue drains.</summary>
    private const int FlushThreshold = 64 * 1024;

    private readonly PipeWriter _output;
    private readonly Channel<OutboundFrame> _queue;
    private readonly int _maxQueuedControlFrames;
    private int _queuedControlFrames;
    private long _bytesWritten;
    private long _framesWritten;
    private long _flushes;

    public FrameWriter(PipeWriter output, int maxQueuedControlFrames)
    {
        _output = output;
        _maxQueuedControlFrames = maxQueuedControlFrames;
        _queue = Channel.CreateUnbounded<OutboundFrame>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
    }

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public long FramesWritten => Interlocked.Read(ref _framesWritten);

    public long Flushes => Interlocked.Read(ref _flushes);

    /// <summary>Queues a stream frame. False when the writer has completed; the caller still owns the buffer then.</summary>
    public bool TryEnqueue(in OutboundFrame frame) => _queue.Writer.TryWrite(frame);

    /// <summary>Queues a control frame unless too many are already waiting.</summary>
    /// <returns>False when the writer has completed or the control-frame budget is spent (the peer is flooding).</returns>
    public bool TryEnqueueControl(in OutboundFrame frame, out bool overBudget)
    {
        if (Interlocked.Increment(ref _queuedControlFrames) > _maxQueuedControlFrames)
        {
            Interlocked.Decrement(ref _queuedControlFrames);
            overBudget = true;
            return false;
        }

        overBudget = false;
        if (!_queue.Writer.TryWrite(frame))
        {
            Interlocked.Decrement(ref _queuedControlFrames);
            return false;
        }

        return true;
    }

    /// <summary>No more frames will be accepted; the loop writes what is queued, flushes and ends.</summary>
    public void Complete() => _queue.Writer.TryComplete();

    /// <summary>Writes the SETTINGS frame and the connection window increment straight into the pipe, before the loop starts.</summary>
    public void WritePreface(TunnelSettings settings, int connectionWindowIncrement)
    {
        var span = _output.GetSpan(FrameHeader.Size + SettingsFrame.PayloadSize);
        FrameHeader.Write(span, SettingsFrame.PayloadSize, FrameType.Settings, FrameFlags.None, 0);
        SettingsFrame.WritePayload(span.Slice(FrameHeader.Size), settings);
        _output.Advance(FrameHeader.Size + SettingsFrame.PayloadSize);
        if (connectionWindowIncrement > 0)
        {
            WriteFixed(OutboundFrame.WindowUpdate(0, connectionWindowIncrement));
        }
    }

    /// <summary>Runs until <see cref="Complete"/> is called and the queue is drained, or the transport fails.</summary>
    public async Task RunAsync()
    {
        var reader = _queue.Reader;
        try
        {
            // The preface is already buffered; send it before waiting for the first frame.
            if (!await FlushAsync())
            {
                return;
            }

            while (await reader.WaitToReadAsync())
            {
                var sinceFlush = 0L;
                while (reader.TryRead(out var frame))
                {
                    sinceFlush += Write(frame);
                    if (sinceFlush >= FlushThreshold)
                    {
                        sinceFlush = 0;
                        if (!await FlushAsync())
                        {
                            return;
                        }
                    }
                }

                if (!await FlushAsync())
                {
                    return;
                }
            }
        }
        finally
        {
            // Return the buffers of frames that will never be written.
            _queue.Writer.TryComplete();
            while (reader.TryRead(out var frame))
            {
                frame.ReleaseBuffer();
            }
        }
    }

    // Pooled: a flush that waits for the transport would otherwise allocate its state machine every time
    // (measured 30 B per 16 KiB frame, docs/benchmarks.md).
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FlushAsync()
    {
        Interlocked.Increment(ref _flushes);
        var result = await _output.FlushAsync();
        return !result.IsCompleted && !result.IsCanceled;
    }

    private long Write(in OutboundFrame frame)
    {
        if (frame.ReleaseOnly)
        {
            frame.ReleaseBuffer();
            return 0;
        }

        if (frame.IsControl)
        {
            Interlocked.Decrement(ref _queuedControlFrames);
        }

        long written;
        switch (frame.Type)
        {
            case FrameType.Data:
            case FrameType.Headers:
            case FrameType.Settings:
                written = WritePayloadFrame(frame);
                break;
            default:
                written = WriteFixed(frame);
                break;
        }

        Interlocked.Add(ref _bytesWritten, written);
        Interlocked.Increment(ref _framesWritten);
        return written;
    }

    private long WritePayloadFrame(in OutboundFrame frame)
    {
        var span = _output.GetSpan(FrameHeader.Size);
        FrameHeader.Write(span, frame.Length, frame.Type, frame.Flags, frame.StreamId);
        _output.Advance(FrameHeader.Size);
        if (frame.Length > 0)
        {
            _output.Write(frame.Buffer.AsSpan(frame.Offset, frame.Length));
        }

        frame.ReleaseBuffer();
        return FrameHeader.Size + frame.Length;
    }

    /// <summary>
    /// RESET and WINDOW_UPDATE carry 4 bytes, PING 8, GOAWAY 8 plus optional debug data:
    /// <code>
    /// RESET:          | Error Code (32) |
    /// WINDOW_UPDATE:  |R| Window Size Increment (31) |
    /// PING:           | Opaque Data (64) |
    /// GOAWAY:         |R| Last-Stream-ID (31) | Error Code (32) | Debug Data (*) |
    /// </code>
    /// </summary>
    private long WriteFixed(in OutboundFrame frame)
    {
        var payloadLength = frame.Type switch
        {
            FrameType.Ping => 8,
            FrameType.GoAway => 8 + frame.Length,
            _ => 4,
        };

        var span = _output.GetSpan(FrameHeader.Size + Math.Min(payloadLength, 8));
        FrameHeader.Write(span, payloadLength, frame.Type, frame.Flags, frame.StreamId);
        var payload = span.Slice(FrameHeader.Size);
        switch (frame.Type)
        {
            case FrameType.Ping:
                BinaryPrimitives.WriteUInt64BigEndian(payload, frame.Inline);
                _output.Advance(FrameHeader.Size + 8);
                break;
            case FrameType.GoAway:
                BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)(frame.Inline >> 32) & 0x7FFF_FFFFu);
                BinaryPrimitives.WriteUInt32BigEndian(payload.Slice(4), (uint)frame.Inline);
                _output.Advance(FrameHeader.Size + 8);
                if (frame.Length > 0)
                {
                    _output.Write(frame.Buffer.AsSpan(0, frame.Length));
                }

                break;
            default:
                BinaryPrimitives.WriteUInt32BigEndian(payload, (uint)frame.Inline);
                _output.Advance(FrameHeader.Size + 4);
                break;
        }

        return FrameHeader.Size + payloadLength;
    }
}
