using System.Net;
using Microsoft.Extensions.Logging;

namespace Tunnel2.FaultProxy;

/// <summary>FaultProxy log messages. Event ids 800–899 belong to FaultProxy (docs/architecture.md, Logging).</summary>
internal static partial class Log
{
    [LoggerMessage(800, LogLevel.Information, "FaultProxy listening on {EndPoint}, forwarding to {Target}.", EventName = "Listening")]
    public static partial void Listening(ILogger logger, IPEndPoint endPoint, EndPoint target);

    [LoggerMessage(801, LogLevel.Debug, "Connection #{Id} from {Client} forwarded to {Target}.", EventName = "ConnectionAccepted")]
    public static partial void ConnectionAccepted(ILogger logger, long id, EndPoint? client, EndPoint target);

    [LoggerMessage(802, LogLevel.Debug, "Connection #{Id} closed after {Upstream} bytes upstream, {Downstream} downstream.", EventName = "ConnectionClosed")]
    public static partial void ConnectionClosed(ILogger logger, long id, long upstream, long downstream);

    [LoggerMessage(803, LogLevel.Information, "Connection #{Id} broken ({Mode}): {Reason}.", EventName = "ConnectionBroken")]
    public static partial void ConnectionBroken(ILogger logger, long id, BreakMode mode, string reason);

    [LoggerMessage(804, LogLevel.Information, "Refused a connection from {Client} (RefuseNewConnections).", EventName = "Refused")]
    public static partial void Refused(ILogger logger, EndPoint? client);

    [LoggerMessage(805, LogLevel.Warning, "Target {Target} unreachable: {Reason}; the client's connection was reset.", EventName = "TargetUnreachable")]
    public static partial void TargetUnreachable(ILogger logger, EndPoint target, string reason);

    [LoggerMessage(806, LogLevel.Warning, "Accepting a connection failed.", EventName = "AcceptFailed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(807, LogLevel.Error, "Connection #{Id} failed unexpectedly.", EventName = "ConnectionFailed")]
    public static partial void ConnectionFailed(ILogger logger, long id, Exception exception);
}
