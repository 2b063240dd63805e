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
    /// A listener of its own for the uplink, e.g. <c>http://0.0.0.0:12002</c>; empty (the default) serves the uplink on
    /// the public port. When set, that listener serves only <see cref="UplinkPath"/> (anything else is 404), the public
    /// listeners answer 404 on it, and the pre-authentication budget runs from the first moment of every connection on
    /// it (docs/adr/0008-uplink-pre-auth-budget.md). Read from configuration when the host is built, like
    /// <c>--urls</c>; <see cref="PublicBaseUrl"/> must then be set.
    /// </summary>
    public string? UplinkListenUrl { get; set; }

    /// <summary>What a connection that presents itself as an uplink may cost before its token is accepted.</summary>
    public TunnelUplinkPreAuthOptions UplinkPreAuth { get; set; } = new();

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

    /// <summary>
    /// Forward TRACE and TRACK to the backend. Off by default: the entry answers them 405, because a backend that
    /// echoes the request would hand cookies and credentials back to the caller (Cross-Site Tracing,
    /// docs/adr/0009-host-filtering-and-trace.md). Turn on only for a backend whose TRACE you need to debug.
    /// </summary>
    public bool AllowTrace { get; set; }

    /// <summary>
    /// Size of the buffers Kestrel's socket transport receives into and sends from, for the public entry and the
    /// uplinks alike; also the most one receive call takes. 16 KiB by default (Kestrel's own is 4 KiB): a quarter of the
    /// receive calls for uploads and uplink traffic. Larger blocks cost memory per slow connection: one that trickles a
    /// request head holds one block until <c>RequestHeadersTimeout</c>. 4096 keeps Kestrel's own pool
    /// (docs/adr/0012-transport-block-size.md). Read at start-up.
    /// </summary>
    public int TransportBlockSize { get; set; } = DefaultTransportBlockSize;

    /// <summary>The default <see cref="TransportBlockSize"/>.</summary>
    public const int DefaultTransportBlockSize = 16 * 1024;

    /// <summary>The smallest <see cref="TransportBlockSize"/>: Kestrel's own block, for which its own pool is kept.</summary>
    public const int KestrelTransportBlockSize = 4096;

    /// <summary>The largest <see cref="TransportBlockSize"/>.</summary>
    public const int MaxTransportBlockSize = 1024 * 1024;

    /// <summary>
    /// Size of the larger transport blocks handed out while fewer than <see cref="TransportLargeBlockMemory"/> bytes of
    /// them are out: 64 KiB by default, so that a busy uplink or bulk transfer takes up to 64 KiB per receive call
    /// without every slow connection holding that much (docs/adr/0014-large-transport-blocks.md). Equal to
    /// <see cref="TransportBlockSize"/>, or a <see cref="TransportLargeBlockMemory"/> of 0, turns them off. Read at start-up.
    /// </summary>
    public int TransportLargeBlockSize { get; set; } = DefaultTransportLargeBlockSize;

    /// <summary>The default <see cref="TransportLargeBlockSize"/>.</summary>
    public const int DefaultTransportLargeBlockSize = 64 * 1024;

    /// <summary>
    /// The most memory in large transport blocks (<see cref="TransportLargeBlockSize"/>) out at once, across the entry
    /// and the uplinks: 16 MiB by default (256 blocks of 64 KiB). Beyond it, connections get blocks of
    /// <see cref="TransportBlockSize"/>. Read at start-up.
    /// </summary>
    public long TransportLargeBlockMemory { get; set; } = DefaultTransportLargeBlockMemory;

    /// <summary>The default <see cref="TransportLargeBlockMemory"/>.</summary>
    public const long DefaultTransportLargeBlockMemory = 16 * 1024 * 1024;

    /// <summary>The largest <see cref="TransportLargeBlockMemory"/>.</summary>
    public const long MaxTransportLargeBlockMemory = 1024L * 1024 * 1024;

    /// <summary>Base of the public URL reported to clients, e.g. https://tunnel.example.com; derived from the uplink request when empty.</summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>Uplink protocol limits (docs/protocol.md §7).</summary>
    public TunnelLimits Limits { get; set; } = new();

    /// <summary>Raw TCP tunnels (docs/architecture.md, TCP services).</summary>
    public TunnelTcpOptions Tcp { get; set; } = new();

    /// <summary>
    /// On SIGTERM (ApplicationStopping) how long the server keeps serving: in-flight requests finish and uplinks drain
    /// (GOAWAY) until none is left or this ends, whichever is first; only then does Kestrel stop listening. Below the
    /// host's <c>ShutdownTimeout</c> (set to this plus 5 s, at least 30 s) and Kubernetes' default 30 s grace period.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(25);

    /// <summary>Scale-out: the Redis session directory shared by several nodes (docs/adr/0007-scale-out-directory.md). Off when <c>Redis</c> is empty.</summary>
    public TunnelDirectoryOptions Directory { get; set; } = new();

    /// <summary>Per-session and per-address request rates; beyond them the entry answers 429 with Retry-After.</summary>
    public TunnelRateLimitOptions RateLimit { get; set; } = new();
}

/// <summary>
/// The uplink's pre-authentication budget (docs/adr/0008-uplink-pre-auth-budget.md): a connection whose first request
/// targets <see cref="TunnelServerOptions.UplinkPath"/> (every connection on the dedicated uplink listener) is closed when
/// it has not been authenticated within <see cref="Timeout"/> or has sent more than <see cref="MaxBytes"/> before.
/// </summary>
public sealed class TunnelUplinkPreAuthOptions
{
    /// <summary>
    /// Bytes a connection may send before its token is accepted, the request head included (4 KiB by default; a
    /// TunnelClient's upgrade request is about 300 bytes). Bytes after a complete head count only once they are read.
    /// </summary>
    public int MaxBytes { get; set; } = 4096;

    /// <summary>
    /// Time from the connection's first byte (on the dedicated listener: from the accept, TLS handshake included) until
    /// its token is accepted (5 s by default).
    /// </summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);
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

/// <summary>
/// The session directory that lets several TunnelServer nodes serve the same sessions: each node records in Redis which
/// sessions it holds uplinks for, and forwards a public request for a session it does not hold to a node that does
/// (docs/adr/0007-scale-out-directory.md). Everything stays in one process when <see cref="Redis"/> is empty.
/// </summary>
public sealed class TunnelDirectoryOptions
{
    /// <summary>StackExchange.Redis connection string, e.g. <c>redis.internal:6379,password=…</c>; empty turns scale-out off.</summary>
    public string? Redis { get; set; }

    /// <summary>
    /// The base URL other nodes use to reach this one (e.g. http://10.0.0.5:12000). Empty: the address Kestrel bound,
    /// which must then be a specific address (not 0.0.0.0 or [::]).
    /// </summary>
    public string? NodeUrl { get; set; }

    /// <summary>
    /// Shared by all nodes (at least 32 characters, e.g. <c>openssl rand -hex 32</c>): a request carrying it in
    /// <c>Tunnel2-Node</c> was forwarded by a node, so its <c>Tunnel2-Forwarded</c> origin (client address, scheme) is
    /// trusted. Without it those headers are removed like any other public header.
    /// </summary>
    public string? NodeSecret { get; set; }

    /// <summary>How long a node's claim on a session lasts without renewal: a node that dies stops being a forwarding target after this.</summary>
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How often a node renews the claims of the sessions it holds uplinks for (a third of the lease: two renewals may fail).</summary>
    public TimeSpan RenewInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Timeout of one Redis operation; lookups fail fast with it while Redis is unreachable (public answer 503).</summary>
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>How long a node reuses a lookup that found live nodes before asking Redis again.</summary>
    public TimeSpan LookupCacheDuration { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>TCP connect timeout towards another node; a node that cannot be reached is skipped for <see cref="UnreachableNodeBackoff"/>.</summary>
    public TimeSpan ForwardConnectTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How long a node that refused a connection is not tried again (its claims may outlive it by up to a lease).</summary>
    public TimeSpan UnreachableNodeBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Prefix of every Redis key this directory writes, so several deployments can share one Redis.</summary>
    public string KeyPrefix { get; set; } = "tunnel2:";

    /// <summary>True when a Redis connection string is configured.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(Redis);
}
