using System.Buffers;
using System.Buffers.Text;
using System.Collections.Frozen;
using System.Text;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>How the request body is delimited towards the backend.</summary>
internal enum RequestBodyFraming
{
    /// <summary>No body (END_STREAM came with the head).</summary>
    None,

    /// <summary>Content-Length: the public request's length.</summary>
    ContentLength,

    /// <summary>Transfer-Encoding: chunked, for a body of unknown length.</summary>
    Chunked,
}

/// <summary>
/// Writes the backend's HTTP/1.1 request head straight from the tunnel's request header block into a pooled buffer:
/// <code>
///   METHOD SP base-path target SP "HTTP/1.1" CRLF
///   "Host: " backend-authority CRLF
///   *( field-line CRLF )                 as forwarded, Cookie fields joined with "; "
///   [ "Content-Length: " n CRLF | "Transfer-Encoding: chunked" CRLF ]
///   CRLF
/// </code>
/// The field rules are <see cref="RequestHeadDecoder"/>'s (what the HttpClient path sends): hop-by-hop fields and
/// Host are dropped, Content-Length is re-framed, an empty body with content fields, a length or a method that
/// expects content gets <c>Content-Length: 0</c>. Requests this hop does not serve (CONNECT, https:// backends,
/// forwardable upgrades, gRPC) set <see cref="NeedsHttpClient"/> and are left to the HttpClient path.
/// </summary>
internal struct Http1RequestWriter : IHeaderBlockHandler
{
    // Declared first, the tables below are built from it. HttpClient's HttpContentHeaders: with the HttpClient path these make the request carry (empty) content.
    private static readonly FrozenSet<string> s_contentFields = FrozenSet.Create(
        StringComparer.OrdinalIgnoreCase,
        "Allow", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Location", "Content-MD5", "Content-Range", "Expires", "Last-Modified");

    private static readonly FieldKind[] s_staticKinds = BuildStaticKinds();
    private static readonly byte[][] s_staticNames = BuildStaticNames();
    private static readonly FrozenDictionary<string, FieldKind>.AlternateLookup<ReadOnlySpan<char>> s_literalKinds = BuildLiteralKinds();
    private static readonly SearchValues<byte> s_escapedTargetBytes = SearchValues.Create(BuildEscapedTargetBytes());

    private readonly BackendRoutes _routes;
    private readonly bool _hasBody;
    private readonly byte[] _buffer;
    private int _length;

    public Http1RequestWriter(BackendRoutes routes, bool hasBody, byte[] buffer)
    {
        _routes = routes;
        _hasBody = hasBody;
        _buffer = buffer;
        _length = 0;
        Error = null;
        Route = null;
        ContentLength = null;
    }

    private enum FieldKind : byte
    {
        Forward,
        Drop,
        Upgrade,
        ContentLength,
        ContentType,

        /// <summary>A field HttpClient files under the content (Content-*, Allow, Expires, Last-Modified).</summary>
        Content,
        Cookie,
    }

    /// <summary>The first decoding problem, as <see cref="RequestHeadDecoder"/> reports it.</summary>
    public string? Error { get; private set; }

    /// <summary>True once a request head was seen.</summary>
    public bool HasTarget { get; private set; }

    /// <summary>True when this request must go through the HttpClient path instead.</summary>
    public bool NeedsHttpClient { get; private set; }

    /// <summary>True when the buffer was too small; write again into a larger one.</summary>
    public bool Overflowed { get; private set; }

    public BackendRoute? Route { get; private set; }

    public long? ContentLength { get; private set; }

    public bool IsHead { get; private set; }

    /// <summary>Bytes written so far.</summary>
    public readonly int Length => _length;

    public int CookieCount { get; private set; }

    public bool HasContentField { get; private set; }

    /// <summary>The method code from the static table, or 0 for a literal method.</summary>
    public int MethodCode { get; private set; }

    /// <summary>The body framing <see cref="Finish"/> chose.</summary>
    public RequestBodyFraming Framing { get; private set; }

    /// <summary>A buffer size that holds the head written from <paramref name="blockLength"/> bytes of header block, whatever they hold.</summary>
    public static int WorstCaseSize(int blockLength, BackendRoute route)
        // A field can grow from 2 bytes (table index, empty value) to its spelled-out name plus ": " and CRLF; the
        // target may triple when escaped.
        => (blockLength * 20) + route.BasePath.Length + route.HostLine.Length + 128;

    public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
    {
        HasTarget = true;
        if (target[0] != (byte)'/')
        {
            Error = "The request target must start with '/'.";
            return;
        }

        MethodCode = methodCode;
        var methodName = methodCode != 0 ? StaticTable.GetMethod(methodCode)! : null;
        if (methodName == "CONNECT")
        {
            NeedsHttpClient = true;
            return;
        }

        IsHead = methodName == "HEAD";
        Route = _routes.Match(target);
        if (!Route.IsPlainHttp)
        {
            NeedsHttpClient = true;
            return;
        }

        if (methodName is not null)
        {
            AppendAscii(methodName);
        }
        else
        {
            Append(method);
        }

        Append(" "u8);
        Append(Route.BasePath);
        AppendTarget(target);
        Append(" HTTP/1.1\r\n"u8);
        Append(Route.HostLine);
    }

    public void OnResponseHead(int statusCode) => Error = "A response head arrived where a request head was expected.";

    public void OnTrailersHead() => Error = "Trailers arrived where a request head was expected.";

    public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var kind = staticIndex != 0 ? s_staticKinds[staticIndex] : LiteralKind(name);
        switch (kind)
        {
            case FieldKind.Drop:
                return;
            case FieldKind.Upgrade:
                NeedsHttpClient |= HopByHopHeaders.IsForwardableUpgrade(value);
                return;
            case FieldKind.ContentLength:
                if (!Utf8Parser.TryParse(value, out long length, out var consumed) || consumed != value.Length || length < 0)
                {
                    Error = "The request Content-Length is not a number.";
                    return;
                }

                ContentLength = length;
                return;
            case FieldKind.Cookie:
                CookieCount++;
                return;
            case FieldKind.ContentType:
                HasContentField = true;
                NeedsHttpClient |= IsGrpc(value);
                break;
            case FieldKind.Content:
                HasContentField = true;
                break;
        }

        if (NeedsHttpClient || Error is not null)
        {
            return;
        }

        Append(staticIndex != 0 ? s_staticNames[staticIndex] : name);
        Append(": "u8);
        Append(value);
        Append("\r\n"u8);
    }

    /// <summary>Adds the Cookie field (from a second pass over <paramref name="block"/>), the framing and the empty line.</summary>
    public void Finish(ReadOnlySpan<byte> block, int maxHeaderListSize)
    {
        if (CookieCount > 0)
        {
            Append("Cookie: "u8);
            var cookies = new CookieJoiner(this);
            HeaderBlockReader.Read(block, ref cookies, maxHeaderListSize);
            this = cookies.Writer;
            Append("\r\n"u8);
        }

        if (_hasBody)
        {
            if (ContentLength is { } length)
            {
                Framing = RequestBodyFraming.ContentLength;
                Append("Content-Length: "u8);
                AppendNumber(length);
                Append("\r\n"u8);
            }
            else
            {
                Framing = RequestBodyFraming.Chunked;
                Append("Transfer-Encoding: chunked\r\n"u8);
            }
        }
        else if (ContentLength is not null || HasContentField || MustHaveContent(MethodCode))
        {
            // HttpClient's rule: a request with content (here empty) or a method that expects some says so.
            Append("Content-Length: 0\r\n"u8);
        }

        Append("\r\n"u8);
    }

    /// <summary>True for the methods HttpClient sends <c>Content-Length: 0</c> for when they have no content.</summary>
    private static bool MustHaveContent(int methodCode)
        => StaticTable.GetMethod(methodCode) is not ("GET" or "HEAD" or "CONNECT" or "OPTIONS" or "DELETE" or "TRACE");

    private static bool IsGrpc(ReadOnlySpan<byte> contentType)
    {
        var mediaType = contentType.TrimStart(" \t"u8);
        return mediaType.Length >= 16 && Ascii.EqualsIgnoreCase(mediaType.Slice(0, 16), "application/grpc"u8);
    }

    private static FieldKind LiteralKind(ReadOnlySpan<byte> name)
    {
        if (HopByHopHeaders.IsHopByHop(name))
        {
            return Ascii.EqualsIgnoreCase(name, "Upgrade"u8) ? FieldKind.Upgrade : FieldKind.Drop;
        }

        const int MaxLength = 32;
        if (name.Length > MaxLength)
        {
            return FieldKind.Forward;
        }

        Span<char> chars = stackalloc char[MaxLength];
        return Ascii.ToUtf16(name, chars, out var written) == OperationStatus.Done && s_literalKinds.TryGetValue(chars.Slice(0, written), out var kind)
            ? kind
            : FieldKind.Forward;
    }

    private void AppendTarget(ReadOnlySpan<byte> target)
    {
        // The target goes byte for byte, but SP, HTAB and bytes above 0x7F cannot stand in a request line: they are
        // percent-encoded (Kestrel never hands these over; a header block from elsewhere might).
        while (true)
        {
            var escape = target.IndexOfAny(s_escapedTargetBytes);
            if (escape < 0)
            {
                Append(target);
                return;
            }

            Append(target.Slice(0, escape));
            Span<byte> encoded = [(byte)'%', (byte)"0123456789ABCDEF"[target[escape] >> 4], (byte)"0123456789ABCDEF"[target[escape] & 0xF]];
            Append(encoded);
            target = target.Slice(escape + 1);
        }
    }

    private void AppendNumber(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out var written);
        Append(digits.Slice(0, written));
    }

    private void AppendAscii(string text)
    {
        if (_buffer.Length - _length < text.Length)
        {
            Overflowed = true;
            return;
        }

        _length += Encoding.ASCII.GetBytes(text, _buffer.AsSpan(_length));
    }

    private void Append(scoped ReadOnlySpan<byte> bytes)
    {
        if (Overflowed || _buffer.Length - _length < bytes.Length)
        {
            Overflowed = true;
            return;
        }

        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    private static FieldKind[] BuildStaticKinds()
    {
        var kinds = new FieldKind[StaticTable.NameCount];
        for (var i = 1; i < kinds.Length; i++)
        {
            kinds[i] = KindOf(StaticTable.GetName(i)!);
        }

        return kinds;
    }

    private static FieldKind KindOf(string name) => name switch
    {
        _ when string.Equals(name, "Upgrade", StringComparison.OrdinalIgnoreCase) => FieldKind.Upgrade,
        _ when HopByHopHeaders.IsHopByHop(name) || string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase) => FieldKind.Drop,
        _ when string.Equals(name, "Content-Length", StringComparison.OrdinalIgnoreCase) => FieldKind.ContentLength,
        _ when string.Equals(name, "Content-Type", StringComparison.OrdinalIgnoreCase) => FieldKind.ContentType,
        _ when string.Equals(name, "Cookie", StringComparison.OrdinalIgnoreCase) => FieldKind.Cookie,
        _ when s_contentFields.Contains(name) => FieldKind.Content,
        _ => FieldKind.Forward,
    };

    private static byte[][] BuildStaticNames()
    {
        var names = new byte[StaticTable.NameCount][];
        names[0] = [];
        for (var i = 1; i < names.Length; i++)
        {
            names[i] = Encoding.ASCII.GetBytes(StaticTable.GetName(i)!);
        }

        return names;
    }

    private static FrozenDictionary<string, FieldKind>.AlternateLookup<ReadOnlySpan<char>> BuildLiteralKinds()
    {
        var kinds = new Dictionary<string, FieldKind>(StringComparer.OrdinalIgnoreCase)
        {
            ["Host"] = FieldKind.Drop,
            ["Content-Length"] = FieldKind.ContentLength,
            ["Content-Type"] = FieldKind.ContentType,
            ["Cookie"] = FieldKind.Cookie,
        };
        foreach (var name in s_contentFields)
        {
            kinds[name] = FieldKind.Content;
        }

        return kinds.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase).GetAlternateLookup<ReadOnlySpan<char>>();
    }

    private static byte[] BuildEscapedTargetBytes()
    {
        var bytes = new List<byte> { (byte)' ', (byte)'\t' };
        for (var b = 0x80; b <= 0xFF; b++)
        {
            bytes.Add((byte)b);
        }

        return [.. bytes];
    }

    /// <summary>Second pass: appends every Cookie value, joined with "; " (RFC 9113 §8.2.3, as HttpClient joins them).</summary>
    private struct CookieJoiner(Http1RequestWriter writer) : IHeaderBlockHandler
    {
        private bool _first = true;

        public Http1RequestWriter Writer = writer;

        public readonly void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        {
        }

        public readonly void OnResponseHead(int statusCode)
        {
        }

        public readonly void OnTrailersHead()
        {
        }

        public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            var kind = staticIndex != 0 ? s_staticKinds[staticIndex] : LiteralKind(name);
            if (kind != FieldKind.Cookie)
            {
                return;
            }

            if (!_first)
            {
                Writer.Append("; "u8);
            }

            _first = false;
            Writer.Append(value);
        }
    }
}
