using Microsoft.Extensions.Logging;

namespace Tunnel2.TestBackend;

/// <summary>
/// Source-generated log messages. Event ids 900–999 are reserved for the test backend (Protocol uses 1–99,
/// Server 100–199, Client 200–299). Nothing is logged per request above Debug.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(900, LogLevel.Information, "TestBackend listening on {Addresses}", EventName = "Listening")]
    public static partial void Listening(ILogger logger, string addresses);

    [LoggerMessage(901, LogLevel.Debug, "Client went away during {Method} {Path}", EventName = "ClientAborted")]
    public static partial void ClientAborted(ILogger logger, string method, string path, Exception exception);

    [LoggerMessage(902, LogLevel.Debug, "Aborting {Path} after {Bytes} bytes as requested", EventName = "AbortingOnRequest")]
    public static partial void AbortingOnRequest(ILogger logger, string path, long bytes);
}
