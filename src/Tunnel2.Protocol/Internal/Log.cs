using Microsoft.Extensions.Logging;

namespace Tunnel2.Protocol.Internal;

/// <summary>Protocol log messages. Event ids 1–99 belong to Tunnel2.Protocol (docs/architecture.md, Logging).</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Debug, "Uplink {Name} established; peer settings: {MaxConcurrentStreams} streams, window {InitialWindowSize}, frame {MaxFrameSize}.", EventName = "UplinkEstablished")]
    public static partial void UplinkEstablished(ILogger logger, string name, int maxConcurrentStreams, int initialWindowSize, int maxFrameSize);

    [LoggerMessage(2, LogLevel.Information, "Uplink {Name} closed: {ErrorCode} {Reason}", EventName = "UplinkClosed")]
    public static partial void UplinkClosed(ILogger logger, string name, TunnelErrorCode errorCode, string reason);

    [LoggerMessage(3, LogLevel.Warning, "Uplink {Name} protocol error from the peer: {ErrorCode} {Reason}", EventName = "ProtocolError")]
    public static partial void ProtocolError(ILogger logger, string name, TunnelErrorCode errorCode, string reason);

    [LoggerMessage(4, LogLevel.Information, "Uplink {Name} received GOAWAY {ErrorCode} (last stream {LastStreamId}): {Message}", EventName = "GoAwayReceived")]
    public static partial void GoAwayReceived(ILogger logger, string name, TunnelErrorCode errorCode, int lastStreamId, string message);

    [LoggerMessage(5, LogLevel.Warning, "Uplink {Name} heard nothing from the peer for {Idle}; declaring it dead.", EventName = "KeepAliveTimeout")]
    public static partial void KeepAliveTimeout(ILogger logger, string name, TimeSpan idle);

    [LoggerMessage(6, LogLevel.Error, "Uplink {Name} failed unexpectedly.", EventName = "UnexpectedError")]
    public static partial void UnexpectedError(ILogger logger, string name, Exception exception);

    [LoggerMessage(7, LogLevel.Debug, "Uplink {Name} refused stream {StreamId}: {Reason}", EventName = "StreamRefused")]
    public static partial void StreamRefused(ILogger logger, string name, int streamId, string reason);

    [LoggerMessage(8, LogLevel.Information, "Uplink {Name} draining: {Message}", EventName = "Draining")]
    public static partial void Draining(ILogger logger, string name, string message);
}
