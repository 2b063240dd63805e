using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;

namespace Tunnel2.Server.Uplink;

/// <summary>
/// The transport the HTTP parser reads while a connection has not authenticated as an uplink: every buffer and every
/// AdvanceTo goes through <see cref="UplinkPreAuthBudget"/>. Once the connection turns out not to be an uplink, or
/// authenticates, it only forwards, with nothing on top but a field check (no allocation, no copy).
/// </summary>
internal sealed class PreAuthPipeReader : PipeReader, IDuplexPipe
{
    private readonly IDuplexPipe _transport;
    private readonly PipeReader _inner;
    private readonly PreAuthConnection _connection;
    private UplinkPreAuthBudget _budget;
    private ReadOnlySequence<byte> _buffer;
    private volatile bool _passThrough;

    public PreAuthPipeReader(IDuplexPipe transport, PreAuthConnection connection, UplinkPreAuthBudget budget)
    {
        _transport = transport;
        _inner = transport.Input;
        _connection = connection;
        _budget = budget;
    }

    public PipeReader Input => this;

    public PipeWriter Output => _transport.Output;

    /// <summary>Bytes counted against the budget on this transport.</summary>
    public long ChargedBytes => _budget.ChargedBytes;

    /// <summary>From now on only forward: the connection authenticated, or another layer reads its plaintext.</summary>
    public void StopInspecting() => _passThrough = true;

    /// <summary>Wakes a pending read so that it sees the connection closed.</summary>
    public void Wake() => _inner.CancelPendingRead();

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        => _passThrough ? _inner.ReadAsync(cancellationToken) : ReadInspectedAsync(cancellationToken);

    public override bool TryRead(out ReadResult result)
    {
        if (_passThrough)
        {
            return _inner.TryRead(out result);
        }

        ThrowIfClosed();
        if (!_inner.TryRead(out result))
        {
            return false;
        }

        Inspect(result);
        return true;
    }

    public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        if (!_passThrough)
        {
            var verdict = _budget.Advance(_buffer.GetOffset(consumed), _buffer.GetOffset(examined));
            _buffer = default;
            OnVerdict(verdict);
        }

        _inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => _inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);

    protected override ValueTask<ReadResult> ReadAtLeastAsyncCore(int minimumSize, CancellationToken cancellationToken)
        => _passThrough ? _inner.ReadAtLeastAsync(minimumSize, cancellationToken) : base.ReadAtLeastAsyncCore(minimumSize, cancellationToken);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ReadResult> ReadInspectedAsync(CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        ReadResult result;
        try
        {
            result = await _inner.ReadAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not ConnectionAbortedException && _connection.IsClosed)
        {
            throw _connection.CreateClosedException(ex);
        }

        if (_connection.IsClosed)
        {
            _inner.AdvanceTo(result.Buffer.Start);
            throw _connection.CreateClosedException(null);
        }

        Inspect(result);
        return result;
    }

    private void Inspect(in ReadResult result)
    {
        if (_passThrough)
        {
            return;
        }

        var buffer = result.Buffer;
        if (!buffer.IsEmpty)
        {
            _connection.OnFirstByte();
        }

        _buffer = buffer;
        var verdict = _budget.Inspect(buffer);
        OnVerdict(verdict);
        if (verdict == PreAuthVerdict.OverBudget && _connection.IsClosed)
        {
            // Refused before the parser has the head: give the buffer back untouched and fail the read.
            _buffer = default;
            _inner.AdvanceTo(buffer.Start);
            throw _connection.CreateClosedException(null);
        }
    }

    private void OnVerdict(PreAuthVerdict verdict)
    {
        switch (verdict)
        {
            case PreAuthVerdict.NotUplink:
                _passThrough = true;
                break;
            case PreAuthVerdict.OverBudget:
                _connection.Close(PreAuthCloseReason.Bytes, _budget.ChargedBytes);
                break;
            default:
                _connection.OnUplinkCandidate();
                break;
        }
    }

    private void ThrowIfClosed()
    {
        if (_connection.IsClosed)
        {
            throw _connection.CreateClosedException(null);
        }
    }
}
