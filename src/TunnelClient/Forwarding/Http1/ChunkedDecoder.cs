using System.Buffers;

namespace Tunnel2.Client.Forwarding.Http1;

internal enum ChunkedStatus
{
    /// <summary>Everything given was consumed; the body goes on.</summary>
    NeedMore,

    /// <summary>The last chunk and the trailer section are complete; bytes after them were not consumed.</summary>
    Done,

    /// <summary>The framing is malformed (<see cref="ChunkedDecoder.Error"/>).</summary>
    Invalid,
}

/// <summary>
/// Decodes the chunked transfer coding (RFC 9112 §7.1) in place, byte-resumable: input may be split anywhere, even
/// into single bytes, and the chunk data is moved to the front of the buffer given, so a read buffer becomes a DATA
/// buffer without a copy. Strict the way Kestrel's request parser is:
/// <code>
///   chunked-body = *chunk last-chunk trailer-section CRLF
///   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
///   chunk-size   = 1*HEXDIG                      at most 63 bits
///   chunk-ext    = *( BWS ";" ... )              HTAB, SP, VCHAR, obs-text only; bounded length
/// </code>
/// A bare LF or CR anywhere in the framing, a missing CRLF after the data, a non-hex size and an overflowing size are
/// rejected (CVE-2025-55315 is the bare-LF-in-an-extension case). The trailer section is collected whole, for
/// <see cref="Http1HeadParser.ForTrailers"/>.
/// </summary>
internal struct ChunkedDecoder
{
    /// <summary>Longest chunk-size line accepted (size, extensions, CRLF).</summary>
    public const int MaxChunkLineLength = 4096;

    private State _state;
    private long _chunkRemaining;
    private int _lineLength;
    private byte[]? _trailers;
    private int _trailersLength;
    private int _trailerLineStart;

    private enum State : byte
    {
        SizeStart,
        Size,
        SizeWhitespace,
        Extension,
        SizeLf,
        Data,
        DataCr,
        DataLf,
        Trailers,
        Done,
    }

    public string? Error { get; private set; }

    /// <summary>The trailer section (field lines and the final CRLF), once <see cref="ChunkedStatus.Done"/>; empty without trailers.</summary>
    public readonly ReadOnlySpan<byte> Trailers => _trailers is null ? default : _trailers.AsSpan(0, _trailersLength);

    /// <summary>The trailer section, writable (the field parser replaces bare CRs in place).</summary>
    public readonly Span<byte> TrailerSpan => _trailers is null ? default : _trailers.AsSpan(0, _trailersLength);

    /// <summary>True when the trailer section has at least one field.</summary>
    public readonly bool HasTrailers => _trailersLength > 2;

    /// <param name="buffer">Received bytes; on return the chunk data among them is at the front.</param>
    /// <param name="maxTrailerSize">The largest trailer section accepted.</param>
    /// <param name="consumed">Bytes of <paramref name="buffer"/> decoded (all of them unless the body ended).</param>
    /// <param name="written">Chunk data bytes now at the front of <paramref name="buffer"/>.</param>
    public ChunkedStatus Decode(Span<byte> buffer, int maxTrailerSize, out int consumed, out int written)
    {
        written = 0;
        var i = 0;
        while (i < buffer.Length)
        {
            if (_state == State.Data)
            {
                var take = (int)Math.Min(_chunkRemaining, buffer.Length - i);
                if (written != i)
                {
                    buffer.Slice(i, take).CopyTo(buffer.Slice(written));
                }

                written += take;
                i += take;
                _chunkRemaining -= take;
                if (_chunkRemaining == 0)
                {
                    _state = State.DataCr;
                }

                continue;
            }

            if (_state == State.Done)
            {
                break;
            }

            var b = buffer[i++];
            if (_state == State.Trailers)
            {
                if (!AppendTrailer(b, maxTrailerSize))
                {
                    consumed = i;
                    return ChunkedStatus.Invalid;
                }

                continue;
            }

            if (_state is State.SizeStart or State.Size or State.SizeWhitespace or State.Extension or State.SizeLf
                && ++_lineLength > MaxChunkLineLength)
            {
                return Fail("The backend's chunk-size line is too long.", i, out consumed);
            }

            switch (_state)
            {
                case State.SizeStart:
                    if (HexValue(b) is var first and >= 0)
                    {
                        _chunkRemaining = first;
                        _state = State.Size;
                        break;
                    }

                    return Fail("The backend's chunk size is not hexadecimal.", i, out consumed);
                case State.Size:
                    if (HexValue(b) is var digit and >= 0)
                    {
                        if (_chunkRemaining > (long.MaxValue >> 4))
                        {
                            return Fail("The backend's chunk size overflows.", i, out consumed);
                        }

                        _chunkRemaining = (_chunkRemaining << 4) | (long)digit;
                    }
                    else if (b == (byte)'\r')
                    {
                        _state = State.SizeLf;
                    }
                    else if (b == (byte)';')
                    {
                        _state = State.Extension;
                    }
                    else if (b is (byte)' ' or (byte)'\t')
                    {
                        _state = State.SizeWhitespace;
                    }
                    else
                    {
                        return Fail("The backend's chunk size is not hexadecimal.", i, out consumed);
                    }

                    break;
                case State.SizeWhitespace:
                    // BWS may only come before an extension's ';'.
                    if (b == (byte)';')
                    {
                        _state = State.Extension;
                    }
                    else if (b is not ((byte)' ' or (byte)'\t'))
                    {
                        return Fail("The backend's chunk size is followed by whitespace.", i, out consumed);
                    }

                    break;
                case State.Extension:
                    if (b == (byte)'\r')
                    {
                        _state = State.SizeLf;
                    }
                    else if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
                    {
                        return Fail("The backend's chunk extension has a control character or a bare LF.", i, out consumed);
                    }

                    break;
                case State.SizeLf:
                    if (b != (byte)'\n')
                    {
                        return Fail("The backend's chunk-size line has a bare CR.", i, out consumed);
                    }

                    _lineLength = 0;
                    if (_chunkRemaining == 0)
                    {
                        _state = State.Trailers;
                        _trailersLength = 0;
                        _trailerLineStart = 0;
                    }
                    else
                    {
                        _state = State.Data;
                    }

                    break;
                case State.DataCr:
                    if (b != (byte)'\r')
                    {
                        return Fail("The backend's chunk data is longer than its size.", i, out consumed);
                    }

                    _state = State.DataLf;
                    break;
                case State.DataLf:
                    if (b != (byte)'\n')
                    {
                        return Fail("The backend's chunk data is not followed by CRLF.", i, out consumed);
                    }

                    _state = State.SizeStart;
                    break;
            }
        }

        consumed = i;
        return _state == State.Done ? ChunkedStatus.Done : ChunkedStatus.NeedMore;
    }

    /// <summary>Gives back the trailer buffer, if one was rented.</summary>
    public void Release()
    {
        if (_trailers is not null)
        {
            ArrayPool<byte>.Shared.Return(_trailers);
            _trailers = null;
        }
    }

    private bool AppendTrailer(byte b, int maxTrailerSize)
    {
        if (_trailersLength >= maxTrailerSize)
        {
            Error = "The backend's trailers are larger than the tunnel's limit.";
            return false;
        }

        if (_trailers is null || _trailersLength == _trailers.Length)
        {
            var grown = ArrayPool<byte>.Shared.Rent(_trailers is null ? 256 : _trailers.Length * 2);
            Trailers.CopyTo(grown);
            Release();
            _trailers = grown;
        }

        _trailers[_trailersLength++] = b;
        if (b != (byte)'\n')
        {
            return true;
        }

        if (_trailersLength - _trailerLineStart < 2 || _trailers[_trailersLength - 2] != (byte)'\r')
        {
            Error = "The backend's trailer section has a bare LF.";
            return false;
        }

        if (_trailersLength - _trailerLineStart == 2)
        {
            // The empty line: the body is complete.
            _state = State.Done;
        }

        _trailerLineStart = _trailersLength;
        return true;
    }

    private ChunkedStatus Fail(string error, int position, out int consumed)
    {
        Error = error;
        consumed = position;
        return ChunkedStatus.Invalid;
    }

    private static int HexValue(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
