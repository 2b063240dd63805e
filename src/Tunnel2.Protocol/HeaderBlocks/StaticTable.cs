using System.Collections.Frozen;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>
/// Header names and methods that travel as one byte (docs/protocol.md §4.3). The table is part of the wire format:
/// entries are only ever appended, never reordered or removed.
/// </summary>
public static class StaticTable
{
    /// <summary>Index 0 means "literal name follows"; indexes 1..127 are table entries.</summary>
    public const int MaxIndex = 127;

    private static readonly string[] s_names =
    [
        string.Empty, // 0: literal
        "Accept",
        "Accept-Charset",
        "Accept-Encoding",
        "Accept-Language",
        "Accept-Ranges",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Headers",
        "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin",
        "Access-Control-Expose-Headers", // 10
        "Access-Control-Max-Age",
        "Access-Control-Request-Headers",
        "Access-Control-Request-Method",
        "Age",
        "Allow",
        "Authorization",
        "Cache-Control",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language", // 20
        "Content-Length",
        "Content-Location",
        "Content-Range",
        "Content-Security-Policy",
        "Content-Type",
        "Cookie",
        "Date",
        "ETag",
        "Expect",
        "Expires", // 30
        "From",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "If-Range",
        "If-Unmodified-Since",
        "Last-Modified",
        "Link",
        "Location", // 40
        "Max-Forwards",
        "Origin",
        "Pragma",
        "Range",
        "Referer",
        "Referrer-Policy",
        "Refresh",
        "Retry-After",
        "Sec-Fetch-Dest",
        "Sec-Fetch-Mode", // 50
        "Sec-Fetch-Site",
        "Sec-Fetch-User",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Version",
        "Server",
        "Set-Cookie",
        "Strict-Transport-Security", // 60
        "Upgrade",
        "User-Agent",
        "Vary",
        "Via",
        "WWW-Authenticate",
        "X-Content-Type-Options",
        "X-Forwarded-For",
        "X-Forwarded-Host",
        "X-Forwarded-Prefix",
        "X-Forwarded-Proto", // 70
        "X-Frame-Options",
        "X-Request-Id",
        "X-Requested-With",
        "traceparent",
        "tracestate",
        "baggage",
        "Sec-CH-UA",
        "Sec-CH-UA-Mobile",
        "Sec-CH-UA-Platform",
        "Upgrade-Insecure-Requests", // 80
        "DNT",
        "Priority",
        "X-Powered-By",
        "Connection",
        "Grpc-Status",
        "Grpc-Message",
        "Grpc-Encoding",
        "Grpc-Accept-Encoding",
        "Grpc-Timeout",
        "TE", // 90
    ];

    private static readonly string[] s_methods =
    [
        string.Empty, // 0: literal
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "TRACE",
        "CONNECT",
    ];

    private static readonly FrozenDictionary<string, byte> s_nameIndex = BuildIndex(s_names, StringComparer.OrdinalIgnoreCase);
    private static readonly FrozenDictionary<string, byte>.AlternateLookup<ReadOnlySpan<char>> s_nameSpanIndex = s_nameIndex.GetAlternateLookup<ReadOnlySpan<char>>();
    private static readonly FrozenDictionary<string, byte> s_methodIndex = BuildIndex(s_methods, StringComparer.Ordinal);

    /// <summary>No table name is longer; a longer name is a literal without a lookup.</summary>
    private const int MaxNameLength = 64;

    /// <summary>Number of name entries, index 0 included.</summary>
    public static int NameCount => s_names.Length;

    /// <summary>Number of method entries, index 0 included.</summary>
    public static int MethodCount => s_methods.Length;

    /// <summary>The canonical spelling of a table name, or null for an unassigned index.</summary>
    public static string? GetName(int index) => (uint)(index - 1) < (uint)(s_names.Length - 1) ? s_names[index] : null;

    /// <summary>The method of a table code, or null for an unassigned code.</summary>
    public static string? GetMethod(int code) => (uint)(code - 1) < (uint)(s_methods.Length - 1) ? s_methods[code] : null;

    /// <summary>The index of <paramref name="name"/> (case-insensitive), or 0.</summary>
    public static int FindName(string name) => s_nameIndex.TryGetValue(name, out var index) ? index : 0;

    /// <summary>The index of a name given as bytes (as parsed from HTTP/1.1, case-insensitive), or 0. Allocates nothing.</summary>
    public static int FindName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Length > MaxNameLength)
        {
            return 0;
        }

        Span<char> chars = stackalloc char[MaxNameLength];
        if (System.Text.Ascii.ToUtf16(name, chars, out var written) != System.Buffers.OperationStatus.Done)
        {
            return 0;
        }

        return s_nameSpanIndex.TryGetValue(chars.Slice(0, written), out var index) ? index : 0;
    }

    /// <summary>The code of <paramref name="method"/> (case-sensitive, as methods are), or 0.</summary>
    public static int FindMethod(string method) => s_methodIndex.TryGetValue(method, out var code) ? code : 0;

    private static FrozenDictionary<string, byte> BuildIndex(string[] entries, StringComparer comparer)
    {
        var map = new Dictionary<string, byte>(comparer);
        for (var i = 1; i < entries.Length; i++)
        {
            map.Add(entries[i], (byte)i);
        }

        return map.ToFrozenDictionary(comparer);
    }
}
