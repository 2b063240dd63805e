using System.Net;
using Microsoft.Extensions.Logging;
using Tunnel2.Protocol;
using Tunnel2.Server.ProxyEntry;

namespace Tunnel2.Server;

/// <summary>
/// Server log messages. Event ids 100–199 belong to TunnelServer. Session ids appear only redacted
/// (<see cref="Sessions.SessionIds.Redact"/>); tokens never appear.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(100, LogLevel.Information, "Uplink registered for session {Session} (owner {Owner}, instance {Instance}); {UplinkCount} uplink(s) now.", EventName = "UplinkRegistered")]
    public static partial void UplinkRegistered(ILogger logger, string session, string owner, Guid instance, int uplinkCount);

    [LoggerMessage(101, LogLevel.Information, "Uplink of session {Session} ended ({ErrorCode}); {UplinkCount} uplink(s) left.", EventName = "UplinkEnded")]
    public static partial void UplinkEnded(ILogger logger, string session, TunnelErrorCode errorCode, int uplinkCount);

    [LoggerMessage(102, LogLevel.Warning, "Uplink from {RemoteAddress} rejected: {Reason}", EventName = "UplinkRejected")]
    public static partial void UplinkRejected(ILogger logger, IPAddress? remoteAddress, string reason);

    [LoggerMessage(103, LogLevel.Information, "Session {Session}: {Count} uplink(s) of a previous client instance superseded.", EventName = "UplinksSuperseded")]
    public static partial void UplinksSuperseded(ILogger logger, string session, int count);

    [LoggerMessage(104, LogLevel.Warning, "Uplink for session {Session} sent no SETTINGS within {Timeout}.", EventName = "UplinkHandshakeTimeout")]
    public static partial void UplinkHandshakeTimeout(ILogger logger, string session, TimeSpan timeout);

    [LoggerMessage(105, LogLevel.Information, "Connection {ConnectionId} from {RemoteAddress} closed before authenticating as an uplink: {Reason} (Tunnel:UplinkPreAuth); {Bytes} bytes counted after {Elapsed}.", EventName = "UplinkPreAuthExceeded")]
    public static partial void UplinkPreAuthExceeded(ILogger logger, string connectionId, IPAddress? remoteAddress, string reason, long bytes, TimeSpan elapsed);

    [LoggerMessage(110, LogLevel.Information, "{Method} request to session {Session} failed: {Error} ({StatusCode}).", EventName = "ProxyError")]
    public static partial void ProxyError(ILogger logger, string method, string session, ProxyError error, int statusCode, Exception? exception);

    [LoggerMessage(111, LogLevel.Information, "{Method} request to session {Session} failed after the response started: {Error}; response aborted.", EventName = "ProxyErrorAfterStart")]
    public static partial void ProxyErrorAfterStart(ILogger logger, string method, string session, ProxyError error, Exception? exception);

    [LoggerMessage(120, LogLevel.Information, "Draining {Count} uplink(s) for shutdown.", EventName = "DrainingUplinks")]
    public static partial void DrainingUplinks(ILogger logger, int count);

    [LoggerMessage(122, LogLevel.Information, "Drained in {Elapsed}: no uplink or forwarded request left.", EventName = "Drained")]
    public static partial void Drained(ILogger logger, TimeSpan elapsed);

    [LoggerMessage(123, LogLevel.Warning, "Drain ended after {Elapsed} with {Uplinks} uplink(s) and {Active} uplink/forward/wait(s) still active; stopping anyway (Tunnel:DrainTimeout).", EventName = "DrainTimedOut")]
    public static partial void DrainTimedOut(ILogger logger, TimeSpan elapsed, int uplinks, int active);

    [LoggerMessage(130, LogLevel.Information, "Session directory on: this node is {NodeUrl}; Redis connected: {Connected}.", EventName = "DirectoryStarted")]
    public static partial void DirectoryStarted(ILogger logger, string nodeUrl, bool connected);

    [LoggerMessage(131, LogLevel.Warning, "Session directory (Redis) unreachable ({Reason}): local sessions keep working, sessions held by other nodes answer 503 until it is back.", EventName = "DirectoryUnavailable")]
    public static partial void DirectoryUnavailable(ILogger logger, string reason);

    [LoggerMessage(132, LogLevel.Information, "Session directory (Redis) reachable again; renewing {Count} session(s) now.", EventName = "DirectoryRestored")]
    public static partial void DirectoryRestored(ILogger logger, int count);

    [LoggerMessage(133, LogLevel.Warning, "Session directory: {Count} renewal(s) failed; the leases are written again once Redis answers.", EventName = "DirectoryRenewFailed")]
    public static partial void DirectoryRenewFailed(ILogger logger, int count);

    [LoggerMessage(134, LogLevel.Warning, "Session {Session} is owned by another token in the directory, not {Owner}; its uplinks on this node are closed.", EventName = "DirectoryConflict")]
    public static partial void DirectoryConflict(ILogger logger, string session, string owner);

    [LoggerMessage(135, LogLevel.Warning, "Node {Node} could not be reached ({Reason}); it is skipped for a while.", EventName = "NodeUnreachable")]
    public static partial void NodeUnreachable(ILogger logger, string node, string reason);

    [LoggerMessage(121, LogLevel.Warning, "No uplink tokens are configured: every uplink will be refused. Set Tunnel:Tokens (see README).", EventName = "NoTokensConfigured")]
    public static partial void NoTokensConfigured(ILogger logger);
}
