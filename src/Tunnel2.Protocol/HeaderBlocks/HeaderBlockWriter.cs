using System.Buffers.Binary;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>Outcome of adding one field to a header block.</summary>
public enum HeaderFieldResult
{
    Written,

    /// <summary>The name is not a token or the value has CR, LF, NUL, another control character or a char above U+00FF; the field was skipped.</summary>
    Invalid,

    /// <summary>The buffer is full; the block is unusable.</summary>
    Overflow,
}

/// <summary>
/// Encodes a header block into a caller-provided buffer without allocating (docs/protocol.md §4).
/// <code>
/// +---------------+
/// |   Kind (8)    |   0x1 request, 0x2 response, 0x3 trailers
/// +---------------+---------------------------------------------+
/// | request:  Method (8) [0: VarInt length + method bytes]      |
/// |           VarInt length + target bytes (path and query)     |
/// | response: Status (16)                                       |
/// +-------------------------------------------------------------+
/// | field*:   NameRef (8) [0: VarInt length + name bytes]       |
/// |           VarInt length + value bytes                       |
/// +-------------------------------------------------------------+
/// </code>
/// Names and values are byte strings: each char U+0000–U+00FF is one byte (ISO-8859-1), which is how HTTP/1.1
/// carries them, so a field passes through the tunnel byte for byte.
/// </summary>
public ref struct HeaderBlockWriter
{
    /// <summary>
    /// A buffer size that holds almost every head. Encoders try it first and retry at the peer's frame limit only on
    /// overflow: under concurrency the pool's 64 KiB bucket runs dry and each miss allocates 64 KiB, while small
    /// buckets keep up (measured: 27 KB allocated per proxied request before, docs/performance.md).
    /// </summary>
    public const int TypicalBlockSize = 4096;

    private readonly Span<byte> _buffer;
    private int _length;
    private bool _overflow;

    public HeaderBlockWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _length = 0;
        _overflow = false;
    }

    public readonly int Length => _length;

    public readonly bool Overflowed => _overflow;

    public readonly ReadOnlySpan<byte> WrittenSpan => _buffer.Slice(0, _length);

    public void WriteRequestHead(string method, scoped ReadOnlySpan<char> target)
    {
        if (!HeaderValidation.IsLatin1(target) || !HeaderValidation.IsToken(method))
        {
            // Not representable as HTTP/1.1 bytes; Kestrel never produces this, and the block is refused as unusable.
            _overflow = true;
            return;
        }

        if (!TryReserve(2, out var head))
        {
            return;
        }

        head[0] = (byte)HeaderBlockKind.Request;
        var code = StaticTable.FindMethod(method);
        head[1] = (byte)code;
        if (code == 0)
        {
            WriteString(method);
        }

        WriteString(target);
    }

    public void WriteResponseHead(int statusCode)
    {
        if (TryReserve(3, out var head))
        {
            head[0] = (byte)HeaderBlockKind.Response;
            BinaryPrimitives.WriteUInt16BigEndian(head.Slice(1), (ushort)statusCode);
        }
    }

    public void WriteTrailersHead()
    {
        if (TryReserve(1, out var head))
        {
            head[0] = (byte)HeaderBlockKind.Trailers;
        }
    }

    /// <summary>Adds one field. Invalid fields are skipped rather than forwarded (reliability.md A12, D15).</summary>
    public HeaderFieldResult WriteField(string name, scoped ReadOnlySpan<char> value)
    {
        if (!HeaderValidation.IsValidValue(value))
        {
            return HeaderFieldResult.Invalid;
        }

        var index = StaticTable.FindName(name);
        if (index == 0 && !HeaderValidation.IsToken(name))
        {
            return HeaderFieldResult.Invalid;
        }

        var start = _length;
        if (TryBeginField(index))
        {
            if (index == 0)
            {
                WriteString(name);
            }

            WriteString(value);
        }

        return EndField(start);
    }

    /// <summary>
    /// Adds one field given as bytes (ISO-8859-1, as parsed from HTTP/1.1), with the same rules as
    /// <see cref="WriteField(string, ReadOnlySpan{char})"/>. Allocates nothing.
    /// </summary>
    public HeaderFieldResult WriteField(scoped ReadOnlySpan<byte> name, scoped ReadOnlySpan<byte> value)
    {
        if (!HeaderValidation.IsValidValue(value))
        {
            return HeaderFieldResult.Invalid;
        }

        var index = StaticTable.FindName(name);
        if (index == 0 && !HeaderValidation.IsToken(name))
        {
            return HeaderFieldResult.Invalid;
        }

        var start = _length;
        if (TryBeginField(index))
        {
            if (index == 0)
            {
                WriteBytes(name);
            }

            WriteBytes(value);
        }

        return EndField(start);
    }

    /// <summary>Writes a field's name byte: its static-table index, or 0 for a literal name that follows.</summary>
    private bool TryBeginField(int index)
    {
        if (!TryReserve(1, out var nameRef))
        {
            return false;
        }

        nameRef[0] = (byte)index;
        return true;
    }

    /// <summary>Takes back a field that did not fit whole, so the block stays valid.</summary>
    private HeaderFieldResult EndField(int start)
    {
        if (_overflow)
        {
            _length = start;
            return HeaderFieldResult.Overflow;
        }

        return HeaderFieldResult.Written;
    }

    private void WriteBytes(scoped ReadOnlySpan<byte> value)
    {
        if (_overflow)
        {
            return;
        }

        var free = _buffer.Slice(_length);
        if (!VarInt.TryWrite(free, value.Length, out var prefix) || free.Length - prefix < value.Length)
        {
            _overflow = true;
            return;
        }

        value.CopyTo(free.Slice(prefix));
        _length += prefix + value.Length;
    }

    private void WriteString(scoped ReadOnlySpan<char> value)
    {
        if (_overflow)
        {
            return;
        }

        var free = _buffer.Slice(_length);
        if (!VarInt.TryWrite(free, value.Length, out var prefix) || free.Length - prefix < value.Length)
        {
            _overflow = true;
            return;
        }

        // Every char has been checked to be at most U+00FF, so narrowing is exact. Ascii.FromUtf16 is vectorised
        // and allocation-free (Encoding.Latin1.GetBytes allocates per call); the loop handles obs-text.
        var destination = free.Slice(prefix, value.Length);
        if (System.Text.Ascii.FromUtf16(value, destination, out _) != System.Buffers.OperationStatus.Done)
        {
            for (var i = 0; i < value.Length; i++)
            {
                destination[i] = (byte)value[i];
            }
        }

        _length += prefix + value.Length;
    }

    private bool TryReserve(int count, out Span<byte> span)
    {
        if (_overflow || _buffer.Length - _length < count)
        {
            _overflow = true;
            span = default;
            return false;
        }

        span = _buffer.Slice(_length, count);
        _length += count;
        return true;
    }
}
