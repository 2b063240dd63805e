using System.Buffers;
using System.IO.Pipelines;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// A transport stream over in-memory pipes that behaves as the stream SocketsHttpHandler hands out for an upgraded
/// HTTP/1.1 connection (the TunnelClient's uplink): cancelling a pending read closes the connection on the spot, so
/// the peer sees the end of the stream and every later write fails. The test can hold writes, to keep frames in the
/// connection's queue the way an unscheduled writer loop does.
/// </summary>
internal sealed class CancelClosesTransportStream(IDuplexPipe pipes) : Stream
{
    private readonly Lock _lock = new();
    private TaskCompletionSource _readBlocked = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _writeGate;
    private int _closed;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <summary>True once a cancelled read (or disposal) closed the connection.</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Completes while a read waits for bytes from the peer (the next one, after a read has returned).</summary>
    public Task ReadBlocked
    {
        get
        {
            lock (_lock)
            {
                return _readBlocked.Task;
            }
        }
    }

    /// <summary>Writes wait from now on until <see cref="ReleaseWrites"/>.</summary>
    public void HoldWrites()
    {
        lock (_lock)
        {
            _writeGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    public void ReleaseWrites()
    {
        TaskCompletionSource? gate;
        lock (_lock)
        {
            gate = _writeGate;
            _writeGate = null;
        }

        gate?.TrySetResult();
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (IsClosed)
        {
            throw new ObjectDisposedException(nameof(CancelClosesTransportStream));
        }

        var input = pipes.Input;
        if (!input.TryRead(out var result))
        {
            // As HttpConnection.RegisterCancellation: a cancelled read disposes the connection.
            using var registration = cancellationToken.UnsafeRegister(static state => ((CancelClosesTransportStream)state!).CloseConnection(), this);
            lock (_lock)
            {
                _readBlocked.TrySetResult();
            }

            result = await input.ReadAsync(CancellationToken.None);
            lock (_lock)
            {
                _readBlocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            if (cancellationToken.IsCancellationRequested || IsClosed)
            {
                input.AdvanceTo(result.Buffer.Start);
                throw new OperationCanceledException(cancellationToken);
            }
        }

        var length = (int)Math.Min(buffer.Length, result.Buffer.Length);
        result.Buffer.Slice(0, length).CopyTo(buffer.Span);
        input.AdvanceTo(result.Buffer.GetPosition(length));
        return length;
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Task? gate;
        lock (_lock)
        {
            gate = _writeGate?.Task;
        }

        if (gate is not null)
        {
            await gate;
        }

        if (IsClosed)
        {
            throw new IOException("The connection was closed.");
        }

        await pipes.Output.WriteAsync(buffer, cancellationToken);
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        CloseConnection();
        base.Dispose(disposing);
    }

    private void CloseConnection()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        // The peer sees the end of the stream; a read waiting here returns.
        pipes.Output.Complete();
        pipes.Input.CancelPendingRead();
    }
}
