namespace Tunnel2.Server.Uplink;

/// <summary>
/// The pre-authentication budget of one connection (docs/adr/0008-uplink-pre-auth-budget.md), as a connection
/// feature. Present on every connection of the dedicated uplink listener, and on a shared port once the connection's
/// first request line has presented itself as an uplink; absent otherwise.
/// </summary>
internal interface IUplinkAuthenticationFeature
{
    /// <summary>True when the connection came in on the dedicated uplink listener (<c>Tunnel:UplinkListenUrl</c>).</summary>
    bool IsDedicatedListener { get; }

    /// <summary>
    /// Ends the budget: the token was accepted, and from now on the connection's bytes pass through uncounted. False
    /// when the budget has already closed the connection, which must then not become an uplink.
    /// </summary>
    bool TryAuthenticate();
}
