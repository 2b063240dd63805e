using Tunnel2.Protocol;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>Where a proxied request failed and who is to blame (YARP's ForwarderError, reliability.md §1.1).</summary>
internal enum ProxyError
{
    None,

    /// <summary>The request target cannot be forwarded as it is (dot-segments).</summary>
    BadRequestTarget,

    /// <summary>CONNECT, which the entry never forwards.</summary>
    MethodNotAllowed,

    /// <summary>TRACE or TRACK, refused unless <see cref="TunnelServerOptions.AllowTrace"/> (Cross-Site Tracing).</summary>
    TraceNotAllowed,

    /// <summary>The request head does not fit one HEADERS frame.</summary>
    RequestHeadTooLarge,

    /// <summary>No session has this id (or it is malformed); indistinguishable from a foreign id on purpose.</summary>
    SessionNotFound,

    /// <summary>The session is over its configured request rate, or the address over its 404 budget.</summary>
    RateLimited,

    /// <summary>The session is known but has no uplink that can take a stream.</summary>
    NoUplink,

    /// <summary>The client refused the stream (queue full or draining).</summary>
    ClientRefused,

    /// <summary>The client could not reach the backend, or the backend reset before its response head.</summary>
    BackendUnavailable,

    /// <summary>The client reports that the backend did not answer in time.</summary>
    BackendTimeout,

    /// <summary>The backend's response (or the client's report of it) cannot be proxied.</summary>
    InvalidResponse,

    /// <summary>No response head arrived within <see cref="TunnelServerOptions.ResponseHeadersTimeout"/>.</summary>
    ResponseHeadersTimeout,

    /// <summary>The uplink closed before the response head.</summary>
    UplinkLost,

    /// <summary>Reading the public client's request body failed: its fault (400, or Kestrel's 408/413).</summary>
    RequestBodyClient,

    /// <summary>The client could not turn the request head into a backend request (public status 400).</summary>
    RequestRejected,

    /// <summary>The public client went away.</summary>
    ClientAborted,

    /// <summary>The response body stopped on the tunnel side after the response had started.</summary>
    ResponseBodyTunnel,

    /// <summary>This node is draining (shutting down) and no other node holds the session: 503 with Connection: close.</summary>
    Draining,

    /// <summary>Scale-out: the session directory (Redis) did not answer, so a session not held here cannot be found.</summary>
    DirectoryUnavailable,

    /// <summary>Scale-out: the nodes that hold the session could not be reached (or refused) before anything was sent.</summary>
    NodeUnreachable,

    /// <summary>Scale-out: the node holding the session failed after the request went to it, before a response head.</summary>
    NodeFailed,

    /// <summary>Scale-out: a node forwarded this request here, but this node cannot serve the session (tells it to try another).</summary>
    NodeRefused,

    /// <summary>Scale-out: an upgrade (WebSocket) for a session held only by other nodes; upgrades are not forwarded between nodes.</summary>
    UpgradeNotForwarded,
}

internal static class ProxyErrorMapping
{
    /// <summary>The public status for a stream reset before the response head (docs/protocol.md §6).</summary>
    public static ProxyError FromResetCode(TunnelErrorCode code) => code switch
    {
        TunnelErrorCode.BackendUnavailable => ProxyError.BackendUnavailable,
        TunnelErrorCode.BackendTimeout => ProxyError.BackendTimeout,
        TunnelErrorCode.BackendInvalidResponse => ProxyError.InvalidResponse,
        TunnelErrorCode.ClientOverloaded or TunnelErrorCode.RefusedStream => ProxyError.ClientRefused,
        TunnelErrorCode.RequestBodyInvalid => ProxyError.RequestBodyClient,
        TunnelErrorCode.RequestInvalid => ProxyError.RequestRejected,
        TunnelErrorCode.ConnectionLost => ProxyError.UplinkLost,
        _ => ProxyError.InvalidResponse,
    };

    public static int ToStatusCode(ProxyError error) => error switch
    {
        ProxyError.BadRequestTarget => StatusCodes.Status400BadRequest,
        ProxyError.MethodNotAllowed or ProxyError.TraceNotAllowed => StatusCodes.Status405MethodNotAllowed,
        ProxyError.RequestHeadTooLarge => StatusCodes.Status431RequestHeaderFieldsTooLarge,
        ProxyError.SessionNotFound => StatusCodes.Status404NotFound,
        ProxyError.NoUplink or ProxyError.ClientRefused or ProxyError.Draining or ProxyError.DirectoryUnavailable
            or ProxyError.NodeUnreachable or ProxyError.NodeRefused or ProxyError.UpgradeNotForwarded => StatusCodes.Status503ServiceUnavailable,
        ProxyError.RateLimited => StatusCodes.Status429TooManyRequests,
        ProxyError.BackendTimeout or ProxyError.ResponseHeadersTimeout => StatusCodes.Status504GatewayTimeout,
        ProxyError.RequestBodyClient or ProxyError.RequestRejected => StatusCodes.Status400BadRequest,
        ProxyError.ClientAborted => StatusCodes.Status499ClientClosedRequest,
        _ => StatusCodes.Status502BadGateway,
    };

    public static string ToMessage(ProxyError error) => error switch
    {
        ProxyError.BadRequestTarget => "Tunnel2: the request path contains dot-segments ('.' or '..'), which the tunnel does not forward.",
        ProxyError.RequestHeadTooLarge => "Tunnel2: the request headers are too large for the tunnel.",
        ProxyError.MethodNotAllowed => "Tunnel2: CONNECT is not forwarded.",
        ProxyError.TraceNotAllowed => "Tunnel2: TRACE and TRACK are not forwarded.",
        ProxyError.SessionNotFound => "Tunnel2: no such session.",
        ProxyError.RateLimited => "Tunnel2: too many requests; slow down.",
        ProxyError.NoUplink => "Tunnel2: the session's client is not connected; try again shortly.",
        ProxyError.ClientRefused => "Tunnel2: the session's client is at capacity; try again shortly.",
        ProxyError.BackendUnavailable => "Tunnel2: the client could not reach its backend.",
        ProxyError.BackendTimeout => "Tunnel2: the backend did not answer in time.",
        ProxyError.ResponseHeadersTimeout => "Tunnel2: no response from the session's client in time.",
        ProxyError.InvalidResponse => "Tunnel2: the backend's response could not be forwarded.",
        ProxyError.UplinkLost => "Tunnel2: the connection to the session's client was lost.",
        ProxyError.RequestBodyClient => "Tunnel2: the request body could not be read.",
        ProxyError.RequestRejected => "Tunnel2: the session's client could not forward this request to its backend.",
        ProxyError.Draining => "Tunnel2: this server is shutting down; try again.",
        ProxyError.DirectoryUnavailable => "Tunnel2: the session directory is unavailable; try again shortly.",
        ProxyError.NodeUnreachable => "Tunnel2: the server holding this session cannot be reached; try again shortly.",
        ProxyError.NodeFailed => "Tunnel2: the server holding this session failed to answer.",
        ProxyError.NodeRefused => "Tunnel2: this server does not hold the session.",
        ProxyError.UpgradeNotForwarded => "Tunnel2: WebSocket and other upgrades are served only by a server holding the session's uplinks; try again.",
        _ => "Tunnel2: the request failed.",
    };
}
