using Microsoft.Extensions.Options;

namespace Tunnel2.Client.Forwarding;

/// <summary>
/// Picks the backend for a request target: the longest configured path prefix that matches on a segment boundary,
/// else the default backend. The target is appended to the backend's base path unchanged.
/// </summary>
internal sealed class BackendRoutes
{
    private readonly (string Prefix, string Base)[] _routes;
    private readonly string _defaultBase;

    public BackendRoutes(IOptions<TunnelClientOptions> options)
    {
        var o = options.Value;
        _defaultBase = o.Backend.TrimEnd('/');
        _routes = o.Routes
            .Select(r => (Prefix: r.Key.TrimEnd('/'), Base: r.Value.TrimEnd('/')))
            .OrderByDescending(r => r.Prefix.Length)
            .ToArray();
    }

    /// <summary>The absolute URL to send <paramref name="target"/> (path and query, starting with '/') to.</summary>
    public string Resolve(string target)
    {
        foreach (var (prefix, backendBase) in _routes)
        {
            if (target.StartsWith(prefix, StringComparison.Ordinal)
                && (target.Length == prefix.Length || target[prefix.Length] is '/' or '?'))
            {
                return backendBase + target;
            }
        }

        return _defaultBase + target;
    }
}
