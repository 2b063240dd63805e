using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>
/// The reading end of a stream's DATA. It counts what the consumer consumes in <see cref="AdvanceTo(SequencePosition, SequencePosition)"/>
/// and hands it back to the sender as window credit, so credit follows consumption, not arrival
/// (reliability.md §0 item 3; Kestrel's Http2MessageBody does the same).
/// </summary>
internal sealed class StreamInput : PipeReader
{
    private readonly TunnelStream _stream;
    private readonly PipeReader _inner;
    private ReadOnlySequence<byte> _lastBuffer;
    private bool _completed;

    public StreamInput(TunnelStream stream, PipeReader inner)
    {
        _stream = stream;
        _inner = inner;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfCompleted();

        // Most reads find data already there (the read loop wrote it) or wait once; neither may allocate a state machine.
        var pending = _inner.ReadAsync(cancellationToken);
        if (pending.IsCompletedSuccessfully)
        {
            var result = pending.Result;
            _lastBuffer = result.Buffer;
            return new ValueTask<ReadResult>(result);
        }

        return ReadAsyncAwaited(pending);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadAsyncAwaited(ValueTask<ReadResult> pending)
    {
        var result = await pending;
        _lastBuffer = result.Buffer;
        return result;
    }

    public override bool TryRead(out ReadResult result)
    {
        ThrowIfCompleted();
        if (_inner.TryRead(out result))
        {
            _lastBuffer = result.Buffer;
            return true;
        }

        return false;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        ThrowIfCompleted();
        var consumedBytes = _lastBuffer.Slice(_lastBuffer.Start, consumed).Length;
        _lastBuffer = default;
        _inner.AdvanceTo(consumed, examined);
        if (consumedBytes > 0)
        {
            _stream.OnInputConsumed(consumedBytes);
        }
    }

    public override void CancelPendingRead()
    {
        if (!_completed)
        {
            _inner.CancelPendingRead();
        }
    }

    public override void Complete(Exception? exception = null)
    {
        // The pipe goes back to the connection's pool once both ends are complete: from here on this reader must never
        // touch it again, whatever its consumer does.
        if (_completed)
        {
            return;
        }

        _completed = true;
        _lastBuffer = default;
        _inner.Complete(exception);
        _stream.OnInputCompleted();
    }

    private void ThrowIfCompleted()
    {
        if (_completed)
        {
            throw new InvalidOperationException("Reading is not allowed after the stream's input was completed.");
        }
    }
}
