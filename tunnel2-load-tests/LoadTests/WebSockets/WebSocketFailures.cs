using System.Net;
using System.Net.WebSockets;

namespace Tunnel2.LoadTests.WebSockets;

/// <summary>Names for what went wrong with a socket, short enough for a report cell and stable enough to count.</summary>
internal static class WebSocketFailures
{
    public const string ConnectTimeout = "timeout";
    public const string ConnectPhaseTimeout = "connect phase over";
    public const string NotSentSocketDown = "not sent: socket down";
    public const string NotSentRunOver = "not sent: run over";
    public const string Lost = "lost: no echo";
    public const string OutOfOrder = "echo out of order";
    public const string BadEcho = "echo not ours";
    public const string CloseTimeout = "close timeout";

    /// <summary>Why a connect failed.</summary>
    /// <param name="exception">What ConnectAsync threw.</param>
    /// <param name="httpStatus">The handshake's response status when one arrived (ClientWebSocket.HttpStatusCode), else 0.</param>
    /// <param name="timedOut">The connect's own deadline fired.</param>
    /// <param name="phaseOver">The connect phase's deadline fired.</param>
    public static string ForConnect(Exception exception, HttpStatusCode httpStatus, bool timedOut, bool phaseOver)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (httpStatus != 0 && httpStatus != HttpStatusCode.SwitchingProtocols)
        {
            return "status " + ((int)httpStatus).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        if (phaseOver)
        {
            return ConnectPhaseTimeout;
        }

        if (timedOut || exception is OperationCanceledException)
        {
            return ConnectTimeout;
        }

        for (var inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpRequestException http)
            {
                return $"connection ({http.HttpRequestError})";
            }
        }

        return exception is WebSocketException ws ? $"websocket ({ws.WebSocketErrorCode})" : exception.GetType().Name;
    }

    /// <summary>Why a socket ended during the run.</summary>
    public static string ForDrop(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            WebSocketException ws => $"aborted ({ws.WebSocketErrorCode})",
            OperationCanceledException => "aborted (cancelled)",
            _ => $"aborted ({exception.GetType().Name})",
        };
    }

    /// <summary>The server closed a socket the run did not close.</summary>
    public static string ForPeerClose(WebSocketCloseStatus? status) =>
        $"closed by the server ({(status is { } s ? s.ToString() : "no status")})";
}
