using System.Buffers;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>
/// A header block received on a stream, in a pooled buffer. Decode it with
/// <see cref="HeaderBlocks.HeaderBlockReader"/>, then <see cref="Dispose"/> it exactly once.
/// </summary>
public readonly struct ReceivedHeaderBlock : IDisposable
{
    private readonly byte[]? _buffer;
    private readonly int _length;

    internal ReceivedHeaderBlock(byte[] buffer, int length, bool endStream)
    {
        _buffer = buffer;
        _length = length;
        EndStream = endStream;
    }

    public ReadOnlySpan<byte> Span => _buffer.AsSpan(0, _length);

    /// <summary>The peer ended its side of the stream with this block: no body follows.</summary>
    public bool EndStream { get; }

    public bool IsEmpty => _buffer is null;

    internal static ReceivedHeaderBlock CopyFrom(ReadOnlySequence<byte> payload, bool endStream)
    {
        var length = (int)payload.Length;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        payload.CopyTo(buffer);
        return new ReceivedHeaderBlock(buffer, length, endStream);
    }

    public void Dispose()
    {
        if (_buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
        }
    }
}
