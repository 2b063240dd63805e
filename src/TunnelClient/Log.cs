using Microsoft.Extensions.Logging;
using Tunnel2.Protocol;

namespace Tunnel2.Client;

/// <summary>Client log messages. Event ids 200–299 belong to TunnelClient. Tokens never appear; session ids only redacted.</summary>
internal static partial class Log
{
    [LoggerMessage(200, LogLevel.Information, "Uplink {Slot} connected to session {Session} on {Server}.", EventName = "UplinkConnected")]
    public static partial void UplinkConnected(ILogger logger, int slot, string session, string server);

    [LoggerMessage(201, LogLevel.Warning, "Uplink {Slot} lost ({ErrorCode}: {Reason}); reconnecting in {Delay}.", EventName = "UplinkLost")]
    public static partial void UplinkLost(ILogger logger, int slot, TunnelErrorCode errorCode, string reason, TimeSpan delay);

    [LoggerMessage(202, LogLevel.Warning, "Uplink {Slot} could not connect: {Reason}; retrying in {Delay}.", EventName = "DialFailed")]
    public static partial void DialFailed(ILogger logger, int slot, string reason, TimeSpan delay);

    [LoggerMessage(203, LogLevel.Critical, "The server refused this client: {StatusCode} {Message} Not retrying; fix the configuration and restart.", EventName = "DialRejected")]
    public static partial void DialRejected(ILogger logger, int statusCode, string message);

    [LoggerMessage(204, LogLevel.Warning, "The server assigned session {Session} instead of the one requested; reconnecting the other uplinks to it.", EventName = "SessionChanged")]
    public static partial void SessionChanged(ILogger logger, string session);

    [LoggerMessage(205, LogLevel.Critical, "A newer instance of this client took over the session; this one stops (in-flight requests finish first).", EventName = "Superseded")]
    public static partial void Superseded(ILogger logger);

    [LoggerMessage(206, LogLevel.Information, "Uplink {Slot} is back on its preferred server {Server}; the other uplink drains.", EventName = "FailingBack")]
    public static partial void FailingBack(ILogger logger, int slot, string server);

    [LoggerMessage(207, LogLevel.Warning, "{Server} assigned a different session id than the other servers; not following it. Configure the session directory (Tunnel:Directory) on every node, or a fixed session id.", EventName = "ServerDisagrees")]
    public static partial void ServerDisagrees(ILogger logger, string server);

    [LoggerMessage(210, LogLevel.Information, "{Method} to {Backend} failed before a response: {ErrorCode}.", EventName = "BackendFailed")]
    public static partial void BackendFailed(ILogger logger, string method, string backend, TunnelErrorCode errorCode, Exception? exception);

    [LoggerMessage(211, LogLevel.Information, "{Method} to {Backend} failed after the response started; the public response is aborted.", EventName = "BackendFailedAfterStart")]
    public static partial void BackendFailedAfterStart(ILogger logger, string method, string backend, Exception? exception);

    [LoggerMessage(212, LogLevel.Warning, "Forwarding queue full ({Admitted} requests); refusing a stream.", EventName = "QueueFull")]
    public static partial void QueueFull(ILogger logger, int admitted);

    [LoggerMessage(213, LogLevel.Warning, "A request head from the server could not be decoded: {Reason}", EventName = "BadRequestHead")]
    public static partial void BadRequestHead(ILogger logger, string reason);

    [LoggerMessage(214, LogLevel.Error, "Forwarding failed unexpectedly.", EventName = "ForwardingError")]
    public static partial void ForwardingError(ILogger logger, Exception exception);

    [LoggerMessage(220, LogLevel.Information, "Shutting down: draining {Count} uplink(s).", EventName = "ShuttingDown")]
    public static partial void ShuttingDown(ILogger logger, int count);
}
