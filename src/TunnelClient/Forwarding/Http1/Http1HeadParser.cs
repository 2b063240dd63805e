using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>Where one field line of a parsed head lies in its buffer: name and value (without OWS) as offsets.</summary>
internal readonly record struct FieldRange(int NameStart, int NameLength, int ValueStart, int ValueLength)
{
    public ReadOnlySpan<byte> Name(ReadOnlySpan<byte> buffer) => buffer.Slice(NameStart, NameLength);

    public ReadOnlySpan<byte> Value(ReadOnlySpan<byte> buffer) => buffer.Slice(ValueStart, ValueLength);
}

internal enum HeadParseStatus
{
    /// <summary>No complete head yet: read more and call again with the same buffer, grown.</summary>
    NeedMore,

    /// <summary>The head is complete: <see cref="Http1HeadParser.HeadLength"/> bytes.</summary>
    Done,

    /// <summary>The head is malformed (<see cref="Http1HeadParser.Error"/>); the connection is unusable.</summary>
    Invalid,
}

/// <summary>
/// A strict HTTP/1.x response head parser (RFC 9112 §4, §5.1) over a buffer that grows as reads arrive: each call
/// resumes at the first line it has not finished, so a head split anywhere parses the same as a head read at once.
/// Fields are recorded as offsets into the buffer; nothing is allocated but a bigger field array for an unusually
/// long head. Also parses a chunked body's trailer section (<see cref="ForTrailers"/>).
/// <code>
///   status-line = HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF     HTTP/1.0 or HTTP/1.1, 100-999
///   field-line  = field-name ":" OWS field-value OWS CRLF
///   head        = status-line *( field-line ) CRLF
/// </code>
/// Rejected, as Kestrel rejects them in requests: a bare LF, obs-fold (a line starting with SP or HTAB), a field name
/// that is not a token (whitespace before the colon included), NUL in a value, a head over the size limit. A bare CR
/// inside a value is replaced with SP (RFC 9112 §2.2 allows either), as HttpClient does.
/// </summary>
internal struct Http1HeadParser
{
    private int _position;
    private bool _statusLineDone;

    /// <summary>The status code, once the status line has been parsed.</summary>
    public int StatusCode { get; private set; }

    /// <summary>True for an HTTP/1.0 response.</summary>
    public bool IsHttp10 { get; private set; }

    public int FieldCount { get; private set; }

    /// <summary>Length of the complete head, empty line included (after <see cref="HeadParseStatus.Done"/>).</summary>
    public int HeadLength { get; private set; }

    public string? Error { get; private set; }

    /// <summary>A parser for a trailer section: field lines and the empty line, no status line.</summary>
    public static Http1HeadParser ForTrailers() => new() { _statusLineDone = true };

    /// <param name="buffer">Every byte received for this head so far, from its first byte; never shrinks between calls.</param>
    /// <param name="maxHeadSize">The largest head accepted, in bytes.</param>
    /// <param name="fields">Receives the fields; replaced by a larger array when full.</param>
    public HeadParseStatus Parse(Span<byte> buffer, int maxHeadSize, ref FieldRange[] fields)
    {
        while (true)
        {
            var lf = buffer.Slice(_position).IndexOf((byte)'\n');
            if (lf < 0)
            {
                return buffer.Length >= maxHeadSize ? Fail("The backend's response head is larger than the tunnel's limit.") : HeadParseStatus.NeedMore;
            }

            var lineStart = _position;
            var lineEnd = lineStart + lf;
            if (lineEnd + 1 > maxHeadSize)
            {
                return Fail("The backend's response head is larger than the tunnel's limit.");
            }

            if (lf == 0 || buffer[lineEnd - 1] != (byte)'\r')
            {
                return Fail("The backend's response head has a bare LF.");
            }

            var line = buffer.Slice(lineStart, lf - 1);
            _position = lineEnd + 1;
            if (!_statusLineDone)
            {
                if (!TryParseStatusLine(line))
                {
                    return Fail("The backend's status line is invalid.");
                }

                _statusLineDone = true;
                continue;
            }

            if (line.IsEmpty)
            {
                HeadLength = _position;
                return HeadParseStatus.Done;
            }

            if (!TryParseField(line, lineStart, ref fields))
            {
                return HeadParseStatus.Invalid;
            }
        }
    }

    private bool TryParseStatusLine(ReadOnlySpan<byte> line)
    {
        // "HTTP/1.x NNN" is 12 bytes; the reason phrase is optional, and so is the space before an empty one.
        if (line.Length < 12 || !line.StartsWith("HTTP/1."u8) || line[8] != (byte)' ')
        {
            return false;
        }

        switch (line[7])
        {
            case (byte)'0':
                IsHttp10 = true;
                break;
            case (byte)'1':
                IsHttp10 = false;
                break;
            default:
                return false;
        }

        var d0 = line[9] - '0';
        var d1 = line[10] - '0';
        var d2 = line[11] - '0';
        if (d0 is < 1 or > 9 || d1 is < 0 or > 9 || d2 is < 0 or > 9)
        {
            return false;
        }

        StatusCode = (d0 * 100) + (d1 * 10) + d2;
        if (line.Length == 12)
        {
            return true;
        }

        // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), after one SP.
        return line[12] == (byte)' ' && HeaderValidation.IsValidValue(line.Slice(13));
    }

    private bool TryParseField(Span<byte> line, int lineStart, ref FieldRange[] fields)
    {
        if (line[0] is (byte)' ' or (byte)'\t')
        {
            Fail("The backend's response head has an obs-fold line.");
            return false;
        }

        var colon = line.IndexOf((byte)':');
        if (colon <= 0 || !HeaderValidation.IsToken(line.Slice(0, colon)))
        {
            Fail("The backend's response head has an invalid field name.");
            return false;
        }

        var valueStart = colon + 1;
        var valueEnd = line.Length;
        while (valueStart < valueEnd && line[valueStart] is (byte)' ' or (byte)'\t')
        {
            valueStart++;
        }

        while (valueEnd > valueStart && line[valueEnd - 1] is (byte)' ' or (byte)'\t')
        {
            valueEnd--;
        }

        var value = line.Slice(valueStart, valueEnd - valueStart);
        if (value.Contains((byte)0))
        {
            Fail("The backend's response head has NUL in a field value.");
            return false;
        }

        if (value.Contains((byte)'\r'))
        {
            value.Replace((byte)'\r', (byte)' ');
        }

        if (FieldCount == fields.Length)
        {
            Array.Resize(ref fields, fields.Length * 2);
        }

        fields[FieldCount++] = new FieldRange(lineStart, colon, lineStart + valueStart, value.Length);
        return true;
    }

    private HeadParseStatus Fail(string error)
    {
        Error = error;
        return HeadParseStatus.Invalid;
    }
}
