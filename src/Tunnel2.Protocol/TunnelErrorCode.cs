namespace Tunnel2.Protocol;

/// <summary>
/// Error codes carried by RESET and GOAWAY (docs/protocol.md §6). 0x0–0xF mirror HTTP/2 (RFC 9113 §7);
/// 0x100 and up are tunnel-specific and tell the server which public status to answer with.
/// </summary>
public enum TunnelErrorCode : uint
{
    NoError = 0x0,
    ProtocolError = 0x1,
    InternalError = 0x2,
    FlowControlError = 0x3,
    SettingsTimeout = 0x4,
    StreamClosed = 0x5,
    FrameSizeError = 0x6,
    RefusedStream = 0x7,
    Cancel = 0x8,
    EnhanceYourCalm = 0xB,

    /// <summary>The backend refused or dropped the connection before a response head (public status 502).</summary>
    BackendUnavailable = 0x100,

    /// <summary>The backend did not send a response head in time (public status 504).</summary>
    BackendTimeout = 0x101,

    /// <summary>The backend's response cannot be proxied (public status 502).</summary>
    BackendInvalidResponse = 0x102,

    /// <summary>The client's forwarding queue is full (public status 503 with Retry-After).</summary>
    ClientOverloaded = 0x103,

    /// <summary>The backend failed after the response head was sent (the public response is aborted).</summary>
    BackendAborted = 0x104,

    /// <summary>The request body from the public client was bad or incomplete.</summary>
    RequestBodyInvalid = 0x105,

    /// <summary>The peer has gone away: keep-alive timed out or the transport closed (public status 502).</summary>
    ConnectionLost = 0x106,

    /// <summary>The request head cannot be forwarded (public status 400).</summary>
    RequestInvalid = 0x107,

    /// <summary>
    /// GOAWAY only: a newer instance of the same client took over the session. The connection drains like
    /// NO_ERROR, but the client must not reconnect, or two instances would take the session from each other forever.
    /// </summary>
    Superseded = 0x108,
}
