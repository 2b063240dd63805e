namespace Tunnel2.Protocol;

/// <summary>
/// The HTTP/1.1 upgrade that turns a connection into an uplink (docs/protocol.md §2):
/// <code>
/// GET /tunnel/connect HTTP/1.1
/// Connection: Upgrade
/// Upgrade: tunnel2
/// Authorization: Bearer &lt;token&gt;
/// Tunnel2-Version: 1
/// Tunnel2-Instance: &lt;client process id, a GUID&gt;
/// Tunnel2-Session: &lt;requested session id&gt;          (optional)
///
/// HTTP/1.1 101 Switching Protocols
/// Tunnel2-Session: &lt;assigned session id&gt;
/// Tunnel2-Public-Url: &lt;public base URL of the session&gt;
/// </code>
/// After the 101 both sides speak frames; the first frame each way is SETTINGS.
/// </summary>
public static class UplinkHandshake
{
    public const string DefaultPath = "/tunnel/connect";

    public const string UpgradeToken = "tunnel2";

    public const string SessionHeader = "Tunnel2-Session";

    public const string InstanceHeader = "Tunnel2-Instance";

    public const string VersionHeader = "Tunnel2-Version";

    public const string PublicUrlHeader = "Tunnel2-Public-Url";

    /// <summary>Request: the raw TCP services the client serves, comma-separated names (docs/protocol.md §2.1).</summary>
    public const string TcpServicesHeader = "Tunnel2-Tcp-Services";

    /// <summary>Response: the public port of each TCP service, as <c>name=port</c>, comma-separated.</summary>
    public const string TcpPortsHeader = "Tunnel2-Tcp-Ports";

    /// <summary>
    /// Response-head field the client adds with the backend's answer time in microseconds; the server records it
    /// (tunnel2_backend_seconds) and never forwards it.
    /// </summary>
    public const string BackendTimeField = "Tunnel2-Backend-Time-Us";

    /// <summary>The method of a stream that carries one raw TCP connection; its target is "/" + the service name.</summary>
    public const string TcpConnectMethod = "CONNECT";

    public const string CurrentVersion = "1";
}
