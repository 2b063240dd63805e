using System.Buffers.Text;
using System.Text;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>How a response body is delimited (RFC 9112 §6.3).</summary>
internal enum ResponseBodyKind
{
    /// <summary>No body: HEAD, 204, 304, or Content-Length: 0.</summary>
    None,

    /// <summary>Exactly <see cref="ResponseFraming.Length"/> bytes.</summary>
    ContentLength,

    /// <summary>Chunked transfer coding, with optional trailers.</summary>
    Chunked,

    /// <summary>Everything until the backend closes the connection.</summary>
    UntilClose,
}

internal enum ContentLengthState
{
    Absent,
    Valid,

    /// <summary>Not a non-negative decimal number.</summary>
    Invalid,

    /// <summary>Several values that differ (RFC 9110 §8.6).</summary>
    Conflicting,
}

internal enum TransferCodingState
{
    Absent,

    /// <summary>chunked is the final coding.</summary>
    Chunked,

    /// <summary>Transfer-Encoding without chunked last: the body runs until close (RFC 9112 §6.3 rule 4, responses).</summary>
    Other,
}

/// <summary>The framing fields of a response head, summarised.</summary>
internal record struct FramingFields(
    ContentLengthState ContentLength,
    long Length,
    TransferCodingState TransferCoding,
    bool ConnectionClose,
    bool ConnectionKeepAlive);

/// <summary>The outcome of <see cref="Http1ResponseFraming.Decide"/>.</summary>
/// <param name="ForwardedLength">The Content-Length to put in the tunnel's response head, or -1 for none.</param>
/// <param name="KeepAlive">True when the connection may serve another request after this response.</param>
internal readonly record struct ResponseFraming(ResponseBodyKind Kind, long Length, long ForwardedLength, bool KeepAlive, string? Error);

/// <summary>The response body framing and connection reuse rules of RFC 9112 §6.3 and §9.3.</summary>
internal static class Http1ResponseFraming
{
    /// <summary>Reads Content-Length, Transfer-Encoding and Connection from the parsed fields of <paramref name="head"/>.</summary>
    public static FramingFields Scan(ReadOnlySpan<byte> head, ReadOnlySpan<FieldRange> fields)
    {
        var result = default(FramingFields);
        foreach (var field in fields)
        {
            var name = field.Name(head);
            var value = field.Value(head);
            if (Ascii.EqualsIgnoreCase(name, "Content-Length"u8))
            {
                ScanContentLength(value, ref result);
            }
            else if (Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8))
            {
                // The final coding decides; a later field continues the list (RFC 9110 §5.3).
                var last = LastElement(value);
                if (!last.IsEmpty || result.TransferCoding == TransferCodingState.Absent)
                {
                    result.TransferCoding = Ascii.EqualsIgnoreCase(last, "chunked"u8) ? TransferCodingState.Chunked : TransferCodingState.Other;
                }
            }
            else if (Ascii.EqualsIgnoreCase(name, "Connection"u8))
            {
                ScanConnection(value, ref result);
            }
        }

        return result;
    }

    /// <summary>The framing of a final (non-1xx) response.</summary>
    /// <param name="requestWasHead">True when the request was HEAD: the response has no body whatever it says.</param>
    public static ResponseFraming Decide(int status, bool isHttp10, bool requestWasHead, in FramingFields fields)
    {
        switch (fields.ContentLength)
        {
            case ContentLengthState.Invalid:
                return Fail("The backend sent a Content-Length that is not a number.");
            case ContentLengthState.Conflicting:
                return Fail("The backend sent conflicting Content-Length values.");
        }

        // HTTP/1.1 persists unless told to close; HTTP/1.0 only with keep-alive (RFC 9112 §9.3).
        var keepAlive = !fields.ConnectionClose && (!isHttp10 || fields.ConnectionKeepAlive);
        var hasLength = fields.ContentLength == ContentLengthState.Valid;
        if (requestWasHead || status is 204 or 304)
        {
            var forwarded = hasLength && fields.TransferCoding == TransferCodingState.Absent ? fields.Length : -1;
            return new ResponseFraming(ResponseBodyKind.None, 0, forwarded, keepAlive, null);
        }

        switch (fields.TransferCoding)
        {
            case TransferCodingState.Chunked:
                // Transfer-Encoding overrides Content-Length, and such a message must not leave the connection open
                // (RFC 9112 §6.1, §6.3); HTTP/1.0 has no chunked coding of its own.
                return new ResponseFraming(ResponseBodyKind.Chunked, 0, -1, keepAlive && !hasLength && !isHttp10, null);
            case TransferCodingState.Other:
                return new ResponseFraming(ResponseBodyKind.UntilClose, 0, -1, false, null);
        }

        if (hasLength)
        {
            return fields.Length == 0
                ? new ResponseFraming(ResponseBodyKind.None, 0, 0, keepAlive, null)
                : new ResponseFraming(ResponseBodyKind.ContentLength, fields.Length, fields.Length, keepAlive, null);
        }

        return new ResponseFraming(ResponseBodyKind.UntilClose, 0, -1, false, null);
    }

    private static ResponseFraming Fail(string error) => new(ResponseBodyKind.None, 0, -1, false, error);

    private static void ScanContentLength(ReadOnlySpan<byte> value, ref FramingFields result)
    {
        if (result.ContentLength is ContentLengthState.Invalid or ContentLengthState.Conflicting)
        {
            return;
        }

        // A list of identical values is one value (RFC 9110 §8.6); anything else is unrecoverable.
        while (true)
        {
            var comma = value.IndexOf((byte)',');
            var element = (comma < 0 ? value : value.Slice(0, comma)).Trim(" \t"u8);
            if (element.IsEmpty || element[0] is < (byte)'0' or > (byte)'9'
                || !Utf8Parser.TryParse(element, out long length, out var consumed) || consumed != element.Length)
            {
                result.ContentLength = ContentLengthState.Invalid;
                return;
            }

            if (result.ContentLength == ContentLengthState.Valid && result.Length != length)
            {
                result.ContentLength = ContentLengthState.Conflicting;
                return;
            }

            result.ContentLength = ContentLengthState.Valid;
            result.Length = length;
            if (comma < 0)
            {
                return;
            }

            value = value.Slice(comma + 1);
        }
    }

    private static void ScanConnection(ReadOnlySpan<byte> value, ref FramingFields result)
    {
        while (!value.IsEmpty)
        {
            var comma = value.IndexOf((byte)',');
            var token = (comma < 0 ? value : value.Slice(0, comma)).Trim(" \t"u8);
            if (Ascii.EqualsIgnoreCase(token, "close"u8))
            {
                result.ConnectionClose = true;
            }
            else if (Ascii.EqualsIgnoreCase(token, "keep-alive"u8))
            {
                result.ConnectionKeepAlive = true;
            }

            value = comma < 0 ? default : value.Slice(comma + 1);
        }
    }

    private static ReadOnlySpan<byte> LastElement(ReadOnlySpan<byte> list)
    {
        var trimmed = list.TrimEnd(" \t,"u8);
        var comma = trimmed.LastIndexOf((byte)',');
        return (comma < 0 ? trimmed : trimmed.Slice(comma + 1)).Trim(" \t"u8);
    }
}
