using Tunnel2.Protocol;

namespace Tunnel2.Client;

/// <summary>
/// Settings of the TunnelClient, from (lowest to highest precedence) appsettings.json, appsettings.{Environment}.json,
/// environment variables (<c>Tunnel__Server</c>, …; <c>TUNNEL2_TOKEN</c> for the token) and command-line flags.
/// </summary>
public sealed class TunnelClientOptions
{
    public const string SectionName = "Tunnel";

    /// <summary>Base URL of the TunnelServer (http or https). Used when <see cref="Servers"/> is empty.</summary>
    public string Server { get; set; } = "http://127.0.0.1:12000";

    /// <summary>
    /// Several TunnelServer nodes of one deployment (scale-out, docs/adr/0007-scale-out-directory.md). The
    /// <see cref="Uplinks"/> are spread over them round-robin (uplink <c>i</c> prefers server <c>i mod n</c>), so with
    /// two or more uplinks the session is held by two nodes; an uplink whose server fails or drains (GOAWAY) moves to
    /// the next one at once, and returns to its preferred server after <see cref="FailbackDelay"/>. Random session ids
    /// need the session directory on the nodes; without it give every node the same fixed session id.
    /// </summary>
    public List<string> Servers { get; } = [];

    /// <summary>How long an uplink serves a server other than its preferred one before it tries to move back.</summary>
    public TimeSpan FailbackDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The servers the uplinks dial: <see cref="Servers"/>, or <see cref="Server"/> alone.</summary>
    public IReadOnlyList<string> ServerList => Servers.Count > 0 ? Servers : [Server];

    /// <summary>Backend for every path no <see cref="Routes"/> entry matches.</summary>
    public string Backend { get; set; } = "http://127.0.0.1:12007";

    /// <summary>Path prefix → backend URL; the longest matching prefix wins (on a segment boundary). Paths are forwarded unchanged.</summary>
    public Dictionary<string, string> Routes { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Raw TCP services to expose: name → local <c>host:port</c>. The server gives each a public port (reported at
    /// connect and printed); every connection to it becomes a stream to that local address.
    /// </summary>
    public Dictionary<string, string> TcpServices { get; } = new(StringComparer.Ordinal);

    /// <summary>The uplink token. Never accepted on the command line: use TUNNEL2_TOKEN, configuration, or <see cref="TokenFile"/>.</summary>
    public string? Token { get; set; }

    /// <summary>A file holding the token (first line); used when <see cref="Token"/> is empty.</summary>
    public string? TokenFile { get; set; }

    /// <summary>Session id to ask for (GUID). Granted if the token may have it; otherwise the server assigns one.</summary>
    public string? Session { get; set; }

    /// <summary>
    /// Uplink connections per session, in total over all <see cref="Servers"/>. Two by default: requests spread over
    /// both, and losing one loses only its in-flight requests (docs/performance.md has the measurement behind the
    /// default); with two servers, one uplink to each.
    /// </summary>
    public int Uplinks { get; set; } = 2;

    /// <summary>Requests forwarded to backends at once (the SemaphoreSlim bound).</summary>
    public int MaxConcurrentRequests { get; set; } = 512;

    /// <summary>Requests that may wait for a forwarding slot; beyond this the server answers 503.</summary>
    public int MaxQueuedRequests { get; set; } = 4096;

    /// <summary>
    /// How requests reach http:// backends. <see cref="BackendHttpClient.Builtin"/> (the default): the client's own
    /// HTTP/1.1 hop, with pooled connections and buffers, full duplex (an early answer such as 413 is forwarded while
    /// the upload goes on); https:// backends, gRPC, upgrades (WebSocket) and TCP services still use HttpClient.
    /// <see cref="BackendHttpClient.HttpClient"/>: everything through HttpClient (docs/adr/0010-builtin-http1-backend-hop.md).
    /// </summary>
    public BackendHttpClient BackendHttpClient { get; set; } = BackendHttpClient.Builtin;

    /// <summary>How long a backend may take to send its response head (then 504).</summary>
    public TimeSpan BackendTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>TCP (and TLS) connect timeout towards backends (then 502).</summary>
    public TimeSpan BackendConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long dialing the server and the upgrade may take.</summary>
    public TimeSpan ServerConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>First reconnect delay cap; doubles per failed attempt (full jitter) up to <see cref="ReconnectMaxDelay"/>.</summary>
    public TimeSpan ReconnectBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>An uplink that stayed up this long resets the backoff.</summary>
    public TimeSpan StableConnectionTime { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>On shutdown, how long in-flight requests may take to finish.</summary>
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// SHA-256 of the server certificate (hex, colons allowed). When set, the uplink accepts exactly that certificate,
    /// even self-signed, and nothing else (pinning); when empty, the system's normal validation applies.
    /// </summary>
    public string? ServerCertificateSha256 { get; set; }

    /// <summary>Accept any server certificate. For development against a self-signed server only.</summary>
    public bool DangerousAcceptAnyServerCertificate { get; set; }

    /// <summary>
    /// Local status endpoint (<c>/status</c> JSON, <c>/metrics</c> Prometheus), e.g. http://127.0.0.1:12008; empty turns
    /// it off. Keep it on loopback: the status names the public URL.
    /// </summary>
    public string? StatusUrl { get; set; }

    /// <summary>Uplink protocol limits (docs/protocol.md §7).</summary>
    public TunnelLimits Limits { get; set; } = new();
}

/// <summary>The HTTP client that forwards requests to http:// backends (<see cref="TunnelClientOptions.BackendHttpClient"/>).</summary>
public enum BackendHttpClient
{
    /// <summary>The built-in HTTP/1.1 hop for http:// backends; HttpClient for the rest.</summary>
    Builtin,

    /// <summary>HttpClient (SocketsHttpHandler) for every backend request.</summary>
    HttpClient,
}
