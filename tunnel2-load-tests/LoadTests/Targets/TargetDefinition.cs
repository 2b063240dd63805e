namespace Tunnel2.LoadTests.Targets;

/// <summary>Which backend answers.</summary>
internal enum BackendKind
{
    /// <summary>tunnel2-load-tests/TestBackend, the zero-allocation baseline (<c>/loadtest/*</c>).</summary>
    TestBackend,

    /// <summary>httpbin under gunicorn, the realistic backend.</summary>
    Httpbin,
}

/// <summary>How the request reaches the backend.</summary>
internal enum PathKind
{
    /// <summary>Straight to the backend's port.</summary>
    Direct,

    /// <summary>Through TunnelServer's ProxyEntry, the uplink and TunnelClient.</summary>
    Tunnel,
}

/// <summary>One of the four targets measured side by side.</summary>
/// <param name="Name">Stable name used in profiles, thresholds and reports, e.g. <c>backend-tunnel</c>.</param>
/// <param name="BaseUri">Prefix that request paths are appended to; for the tunnel it ends with <c>/session/&lt;id&gt;</c>.</param>
internal sealed record TargetDefinition(string Name, BackendKind Backend, PathKind Path, Uri BaseUri)
{
    /// <summary>The backend's name in profiles and threshold tags: <c>testbackend</c> or <c>httpbin</c>.</summary>
    public string BackendName => Backend == BackendKind.TestBackend ? "testbackend" : "httpbin";

    /// <summary>The path kind's name in threshold tags: <c>direct</c> or <c>tunnel</c>.</summary>
    public string PathName => Path == PathKind.Direct ? "direct" : "tunnel";

    /// <summary>The absolute URL of a backend path (<c>/loadtest/get</c>) on this target.</summary>
    public Uri Resolve(string path) => new(BaseUri.AbsoluteUri.TrimEnd('/') + "/" + path.TrimStart('/'));
}

/// <summary>Where the processes listen.</summary>
internal sealed record TargetEndpoints(Uri DirectBackend, Uri Tunnel, string Session, Uri Httpbin)
{
    public const string DefaultSession = "22222222-2222-2222-2222-222222222222";

    public static readonly TargetEndpoints Default = new(
        new Uri("http://127.0.0.1:12007"), new Uri("http://127.0.0.1:12000"), DefaultSession, new Uri("http://127.0.0.1:12005"));
}

/// <summary>The four targets and the <c>--targets</c> selector.</summary>
internal static class TargetCatalog
{
    public const string BackendDirect = "backend-direct";
    public const string BackendTunnel = "backend-tunnel";
    public const string HttpbinDirect = "httpbin-direct";
    public const string HttpbinTunnel = "httpbin-tunnel";

    /// <summary>All four, in the order they run inside each stage (direct before tunnel, so a pair is adjacent in time).</summary>
    public static IReadOnlyList<TargetDefinition> All(TargetEndpoints endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var tunnelBase = new Uri(endpoints.Tunnel.AbsoluteUri.TrimEnd('/') + "/session/" + endpoints.Session);
        return
        [
            new(BackendDirect, BackendKind.TestBackend, PathKind.Direct, endpoints.DirectBackend),
            new(BackendTunnel, BackendKind.TestBackend, PathKind.Tunnel, tunnelBase),
            new(HttpbinDirect, BackendKind.Httpbin, PathKind.Direct, endpoints.Httpbin),
            new(HttpbinTunnel, BackendKind.Httpbin, PathKind.Tunnel, tunnelBase),
        ];
    }

    /// <summary>
    /// Targets matching any selector: a target name, or a group (<c>all</c>, <c>direct</c>, <c>tunnel</c>,
    /// <c>testbackend</c>/<c>backend</c>, <c>httpbin</c>). Selectors may be comma separated. Order stays canonical.
    /// </summary>
    public static IReadOnlyList<TargetDefinition> Select(IReadOnlyList<TargetDefinition> all, IEnumerable<string> selectors)
    {
        ArgumentNullException.ThrowIfNull(all);
        var tokens = selectors
            .SelectMany(selector => selector.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(token => token.ToLowerInvariant())
            .ToList();
        if (tokens.Count == 0)
        {
            tokens.Add("all");
        }

        foreach (var token in tokens)
        {
            if (!all.Any(target => Matches(target, token)))
            {
                throw new ArgumentException(
                    $"Unknown target '{token}'. Use a name ({string.Join(", ", all.Select(target => target.Name))}) or all, direct, tunnel, testbackend, httpbin.");
            }
        }

        return all.Where(target => tokens.Any(token => Matches(target, token))).ToList();
    }

    private static bool Matches(TargetDefinition target, string token) => token switch
    {
        "all" => true,
        "direct" or "tunnel" => target.PathName == token,
        "testbackend" or "backend" => target.Backend == BackendKind.TestBackend,
        "httpbin" => target.Backend == BackendKind.Httpbin,
        _ => target.Name == token,
    };
}
