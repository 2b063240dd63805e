using System.Buffers.Text;
using System.Text;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Client.Forwarding;

/// <summary>Turns a request head from the uplink into an <see cref="HttpRequestMessage"/> for the backend.</summary>
internal struct RequestHeadDecoder : IHeaderBlockHandler
{
    private static readonly HttpMethod[] s_methods = BuildMethods();

    private readonly HttpRequestMessage _request;
    private readonly bool _hasBody;

    public RequestHeadDecoder(HttpRequestMessage request, bool hasBody)
    {
        _request = request;
        _hasBody = hasBody;
        Target = null;
        Error = null;
        ContentLength = null;
        Upgrade = null;
    }

    /// <summary>The protocol the public client asked to upgrade to (WebSocket…), when the entry forwarded one.</summary>
    public string? Upgrade { get; private set; }

    /// <summary>Path and query for the backend, exactly as the public client sent them after the session prefix.</summary>
    public string? Target { get; private set; }

    public long? ContentLength { get; private set; }

    public string? Error { get; private set; }

    public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
    {
        _request.Method = methodCode != 0 ? s_methods[methodCode] : new HttpMethod(Encoding.Latin1.GetString(method));
        Target = Encoding.Latin1.GetString(target);
        if (Target[0] != '/')
        {
            Error = "The request target must start with '/'.";
        }
    }

    public void OnResponseHead(int statusCode) => Error = "A response head arrived where a request head was expected.";

    public void OnTrailersHead() => Error = "Trailers arrived where a request head was expected.";

    public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        var nameString = staticIndex != 0 ? StaticTable.GetName(staticIndex)! : Encoding.Latin1.GetString(name);

        // Defence in depth: the server already removed these, and the backend gets its own Host.
        if (HopByHopHeaders.IsHopByHop(nameString) || string.Equals(nameString, "Host", StringComparison.OrdinalIgnoreCase))
        {
            if (string.Equals(nameString, "Upgrade", StringComparison.OrdinalIgnoreCase))
            {
                var upgrade = Encoding.Latin1.GetString(value);
                Upgrade = HopByHopHeaders.IsForwardableUpgrade(upgrade) ? upgrade : null;
            }

            return;
        }

        if (string.Equals(nameString, "Content-Length", StringComparison.OrdinalIgnoreCase))
        {
            if (!Utf8Parser.TryParse(value, out long length, out var consumed) || consumed != value.Length || length < 0)
            {
                Error = "The request Content-Length is not a number.";
                return;
            }

            ContentLength = length;
            if (!_hasBody)
            {
                _request.Content ??= new ByteArrayContent([]);
            }

            return;
        }

        var valueString = HeaderValueCache.GetString(staticIndex, value);
        if (!_request.Headers.TryAddWithoutValidation(nameString, valueString))
        {
            // A content header (Content-Type, Content-Encoding, ...): it belongs to the body.
            _request.Content ??= new ByteArrayContent([]);
            _request.Content.Headers.TryAddWithoutValidation(nameString, valueString);
        }
    }

    private static HttpMethod[] BuildMethods()
    {
        var methods = new HttpMethod[StaticTable.MethodCount];
        for (var code = 1; code < methods.Length; code++)
        {
            var name = StaticTable.GetMethod(code)!;
            methods[code] = name switch
            {
                "GET" => HttpMethod.Get,
                "HEAD" => HttpMethod.Head,
                "POST" => HttpMethod.Post,
                "PUT" => HttpMethod.Put,
                "DELETE" => HttpMethod.Delete,
                "PATCH" => HttpMethod.Patch,
                "OPTIONS" => HttpMethod.Options,
                "TRACE" => HttpMethod.Trace,
                "CONNECT" => HttpMethod.Connect,
                _ => new HttpMethod(name),
            };
        }

        return methods;
    }
}
