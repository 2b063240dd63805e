using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Benchmarks.HeaderBlocks;

/// <summary>
/// The typical heads the codec benchmarks use: a browser-style GET with a ~100-character target and the fields the
/// ProxyEntry forwards (hop-by-hop fields and Host removed, X-Forwarded-* added), and a typical JSON API response.
/// </summary>
public static class SampleHeads
{
    public const string RequestMethod = "GET";

    /// <summary>100 characters: a REST path with a percent-encoded query, as a browser or curl sends it.</summary>
    public const string RequestTarget = "/api/v2/projects/7f3c9a2e/builds/search?branch=feature%2Fpipelines&status=succeeded&page=3&limit=100";

    /// <summary>What RequestHeadEncoder writes for a Chrome navigation through the tunnel: 11 fields, one with a name outside the static table.</summary>
    public static readonly (string Name, string Value)[] RequestFields =
    [
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
        ("Cache-Control", "no-cache"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        ("X-Client-Version", "4.2.1"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "tunnel.example.com"),
        ("X-Forwarded-Prefix", "/session/22222222-2222-2222-2222-222222222222"),
    ];

    public const int ResponseStatus = 200;

    /// <summary>A JSON API response from Kestrel: 7 fields, all in the static table.</summary>
    public static readonly (string Name, string Value)[] ResponseFields =
    [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Content-Length", "1234"),
        ("Date", "Tue, 15 Jul 2025 10:00:00 GMT"),
        ("Server", "Kestrel"),
        ("Cache-Control", "no-store"),
        ("ETag", "\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
        ("Vary", "Accept-Encoding"),
    ];

    /// <summary>Encodes the request head; returns the block's length, or throws if it did not fit.</summary>
    public static int EncodeRequest(Span<byte> buffer)
    {
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteRequestHead(RequestMethod, RequestTarget);
        foreach (var (name, value) in RequestFields)
        {
            writer.WriteField(name, value);
        }

        return writer.Overflowed ? throw new InvalidOperationException("The request head did not fit.") : writer.Length;
    }

    /// <summary>Encodes the response head; returns the block's length, or throws if it did not fit.</summary>
    public static int EncodeResponse(Span<byte> buffer)
    {
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(ResponseStatus);
        foreach (var (name, value) in ResponseFields)
        {
            writer.WriteField(name, value);
        }

        return writer.Overflowed ? throw new InvalidOperationException("The response head did not fit.") : writer.Length;
    }

    /// <summary>The default <see cref="TunnelLimits.MaxHeaderListSize"/>.</summary>
    public static int MaxHeaderListSize { get; } = new TunnelLimits().MaxHeaderListSize;
}

/// <summary>Consumes a decoded block without allocating: counts fields and bytes, as a handler that only inspects spans would.</summary>
public struct CountingHandler : IHeaderBlockHandler
{
    public int Fields { get; private set; }

    public int Bytes { get; private set; }

    public int Status { get; private set; }

    public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target) => Bytes += method.Length + target.Length + methodCode;

    public void OnResponseHead(int statusCode) => Status = statusCode;

    public void OnTrailersHead()
    {
    }

    public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Fields++;
        Bytes += name.Length + value.Length + staticIndex;
    }
}
