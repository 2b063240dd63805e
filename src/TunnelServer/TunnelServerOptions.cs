using Tunnel2.Protocol;

namespace Tunnel2.Server;

/// <summary>Settings of the TunnelServer, bound from the <c>Tunnel</c> configuration section.</summary>
public sealed class TunnelServerOptions
{
    public const string SectionName = "Tunnel";

    /// <summary>Uplink credentials. Each token is stored only as its SHA-256 hash (docs/adr/0003-uplink-authentication.md).</summary>
    public List<TunnelTokenOptions> Tokens { get; } = [];

    /// <summary>Path of the uplink endpoint that TunnelClients dial.</summary>
    public string UplinkPath { get; set; } = "/tunnel/connect";

    /// <summary>
    /// How long the ProxyEntry waits for the response head after the request head left. Longer than the client's
    /// own backend timeout (100 s, as HttpClient and YARP's ActivityTimeout), so a slow backend is reported by the
    /// client as 504 with its reason and this is only the backstop for a silent client.
    /// </summary>
    public TimeSpan ResponseHeadersTimeout { get; set; } = TimeSpan.FromSeconds(110);

    /// <summary>
    /// How long a request for a session with no usable uplink waits for one before the 503 (reliability.md B9): a
    /// client reconnecting after a network blip or a restart loses no requests that arrive meanwhile.
    /// </summary>
    public TimeSpan UplinkWaitTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a new uplink may take to send SETTINGS after the upgrade.</summary>
    public TimeSpan UplinkHandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a session whose uplinks are all gone stays known (503) before it is forgotten (404).</summary>
    public TimeSpan SessionRetention { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a forgotten session id stays reserved for its owner, so nobody else can take it (reliability.md B3).</summary>
    public TimeSpan TombstoneRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Seconds announced in Retry-After with 503.</summary>
    public int RetryAfterSeconds { get; set; } = 2;

    /// <summary>Largest public request body, in bytes; null for no limit (the default: bodies are streamed, never buffered).</summary>
    public long? MaxRequestBodySize { get; set; }

    /// <summary>Base of the public URL reported to clients, e.g. https://tunnel.example.com; derived from the uplink request when empty.</summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>Uplink protocol limits (docs/protocol.md §7).</summary>
    public TunnelLimits Limits { get; set; } = new();

    /// <summary>Raw TCP tunnels (docs/architecture.md, TCP services).</summary>
    public TunnelTcpOptions Tcp { get; set; } = new();

    /// <summary>Per-session and per-address request rates; beyond them the entry answers 429 with Retry-After.</summary>
    public TunnelRateLimitOptions RateLimit { get; set; } = new();
}

/// <summary>
/// Token-bucket limits at the public entry (reliability.md B10, D24, E7). A session's own limit keeps one busy
/// session from starving the others; the per-address limit on unknown-session answers slows id enumeration.
/// </summary>
public sealed class TunnelRateLimitOptions
{
    /// <summary>Requests per second one session may receive, refilled continuously; 0 disables the limit (default).</summary>
    public int SessionRequestsPerSecond { get; set; }

    /// <summary>Requests a session may receive at once above its rate; defaults to one second's worth.</summary>
    public int SessionBurst { get; set; }

    /// <summary>
    /// 404 answers (unknown or malformed session ids) one client address may get per minute before it gets 429.
    /// 600 by default: far above a user mistyping a URL, far below a scan.
    /// </summary>
    public int NotFoundPerMinutePerAddress { get; set; } = 600;
}

/// <summary>One uplink credential.</summary>
public sealed class TunnelTokenOptions
{
    /// <summary>A name for logs and ownership records; not secret.</summary>
    public string Name { get; set; } = string.Empty;

    /// <summary>Lower-case hex SHA-256 of the token's UTF-8 bytes.</summary>
    public string Sha256 { get; set; } = string.Empty;

    /// <summary>Fixed session ids this token may claim (GUID format). Other sessions get a random id.</summary>
    public List<string> Sessions { get; } = [];
}

/// <summary>
/// Public TCP ports for the raw TCP services clients declare. Off by default; each service of a session keeps its port
/// for as long as the session is known, across client reconnects.
/// </summary>
public sealed class TunnelTcpOptions
{
    /// <summary>Turns TCP tunnels on.</summary>
    public bool Enabled { get; set; }

    /// <summary>Address the service ports listen on (0.0.0.0 for a public server).</summary>
    public string BindAddress { get; set; } = "127.0.0.1";

    /// <summary>First port of the range services are given; 0 lets the system assign a free port, reported to the client.</summary>
    public int PortRangeStart { get; set; }

    /// <summary>Last port of the range, inclusive.</summary>
    public int PortRangeEnd { get; set; }

    /// <summary>Services one session may declare.</summary>
    public int MaxServicesPerSession { get; set; } = 16;

    /// <summary>Connections one service port carries at once; more are closed at accept.</summary>
    public int MaxConnectionsPerService { get; set; } = 1000;

    /// <summary>How long a TCP connection may carry no bytes either way before both ends are closed.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);
}
