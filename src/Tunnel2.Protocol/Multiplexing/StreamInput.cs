using System.Buffers;
using System.IO.Pipelines;

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

    public StreamInput(TunnelStream stream, PipeReader inner)
    {
        _stream = stream;
        _inner = inner;
    }

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var result = await _inner.ReadAsync(cancellationToken);
        _lastBuffer = result.Buffer;
        return result;
    }

    public override bool TryRead(out ReadResult result)
    {
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
        var consumedBytes = _lastBuffer.Slice(_lastBuffer.Start, consumed).Length;
        _lastBuffer = default;
        _inner.AdvanceTo(consumed, examined);
        if (consumedBytes > 0)
        {
            _stream.OnInputConsumed(consumedBytes);
        }
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null)
    {
        _inner.Complete(exception);
        _stream.OnInputCompleted();
    }
}
