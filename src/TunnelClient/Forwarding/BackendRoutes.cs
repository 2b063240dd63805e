using System.Text;
using Microsoft.Extensions.Options;

namespace Tunnel2.Client.Forwarding;

/// <summary>
/// Picks the backend for a request target: the longest configured path prefix that matches on a segment boundary,
/// else the default backend. The target is appended to the backend's base path unchanged.
/// </summary>
internal sealed class BackendRoutes
{
    private readonly (string Prefix, BackendRoute Route)[] _routes;
    private readonly (byte[] Prefix, BackendRoute Route)[] _byteRoutes;
    private readonly BackendRoute _default;

    public BackendRoutes(IOptions<TunnelClientOptions> options)
    {
        var o = options.Value;
        var all = new List<BackendRoute>();
        _default = new BackendRoute(o.Backend.TrimEnd('/'), index: 0);
        all.Add(_default);
        _routes = o.Routes
            .Select(r => (Prefix: r.Key.TrimEnd('/'), Base: r.Value.TrimEnd('/')))
            .OrderByDescending(r => r.Prefix.Length)
            .Select(r =>
            {
                var route = new BackendRoute(r.Base, all.Count);
                all.Add(route);
                return (r.Prefix, route);
            })
            .ToArray();
        _byteRoutes = _routes.Select(r => (Encoding.Latin1.GetBytes(r.Prefix), r.Route)).ToArray();
        All = [.. all];
    }

    /// <summary>Every backend, the default first; <see cref="BackendRoute.Index"/> is the position here.</summary>
    public IReadOnlyList<BackendRoute> All { get; }

    /// <summary>The absolute URL to send <paramref name="target"/> (path and query, starting with '/') to.</summary>
    public string Resolve(string target)
    {
        foreach (var (prefix, route) in _routes)
        {
            if (target.StartsWith(prefix, StringComparison.Ordinal)
                && (target.Length == prefix.Length || target[prefix.Length] is '/' or '?'))
            {
                return route.BaseUrl + target;
            }
        }

        return _default.BaseUrl + target;
    }

    /// <summary>The backend for <paramref name="target"/> given as bytes, with the rule of <see cref="Resolve"/>; allocates nothing.</summary>
    public BackendRoute Match(ReadOnlySpan<byte> target)
    {
        foreach (var (prefix, route) in _byteRoutes)
        {
            if (target.StartsWith(prefix) && (target.Length == prefix.Length || target[prefix.Length] is (byte)'/' or (byte)'?'))
            {
                return route;
            }
        }

        return _default;
    }
}

/// <summary>One configured backend, with what the built-in HTTP/1.1 hop needs precomputed as bytes.</summary>
internal sealed class BackendRoute
{
    public BackendRoute(string baseUrl, int index)
    {
        BaseUrl = baseUrl;
        Index = index;
        var uri = new Uri(baseUrl + "/", UriKind.Absolute);
        IsPlainHttp = uri.Scheme == Uri.UriSchemeHttp;
        Authority = uri.GetLeftPart(UriPartial.Authority);
        Host = uri.IdnHost;
        Port = uri.Port;

        // The base path exactly as configured (no canonicalization), as the HttpClient path sends it.
        var afterScheme = baseUrl.IndexOf("://", StringComparison.Ordinal) + 3;
        var pathStart = baseUrl.IndexOf('/', afterScheme);
        BasePath = pathStart < 0 ? [] : Encoding.Latin1.GetBytes(baseUrl[pathStart..]);

        // As HttpClient writes it: the host (IPv6 in brackets), and the port unless it is the scheme's default.
        var host = uri.HostNameType == UriHostNameType.IPv6 && !Host.StartsWith('[') ? $"[{Host}]" : Host;
        HostHeader = uri.IsDefaultPort ? host : $"{host}:{Port}";
        HostLine = Encoding.Latin1.GetBytes($"Host: {HostHeader}\r\n");
    }

    /// <summary>The configured URL without a trailing '/'.</summary>
    public string BaseUrl { get; }

    /// <summary>Position in <see cref="BackendRoutes.All"/>.</summary>
    public int Index { get; }

    /// <summary>True for http:// backends: the built-in HTTP/1.1 hop may serve them.</summary>
    public bool IsPlainHttp { get; }

    /// <summary>Scheme, host and port, for logs (as <c>Uri.GetLeftPart(UriPartial.Authority)</c>).</summary>
    public string Authority { get; }

    /// <summary>The host to connect to (IDN-encoded, IPv6 without brackets).</summary>
    public string Host { get; }

    public int Port { get; }

    /// <summary>The Host field value the backend gets.</summary>
    public string HostHeader { get; }

    /// <summary>The base path put before every target (empty, or starting with '/').</summary>
    public byte[] BasePath { get; }

    /// <summary><c>Host: authority CRLF</c>.</summary>
    public byte[] HostLine { get; }
}
