using System.Buffers;
using System.Net.WebSockets;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tunnel2.TestBackend;

/// <summary>
/// <c>/loadtest/ws</c>: a WebSocket echo (HTTP/1.1 Upgrade or HTTP/2 extended CONNECT). Every frame is sent back
/// with its type and end-of-message flag; a close from the client is answered with the same status.
/// </summary>
internal sealed class WebSocketEchoHandler
{
    // One frame buffer per socket; larger messages are echoed in several frames of the same message.
    private const int BufferSize = 16 * 1024;

    private readonly ILogger _logger;

    public WebSocketEchoHandler(ILogger logger)
    {
        _logger = logger;
    }

    public async Task EchoAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RequestParsing.WriteBadRequestAsync(context, "expected a WebSocket request");
            return;
        }

        var aborted = context.RequestAborted;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            while (true)
            {
                var result = await socket.ReceiveAsync(buffer.AsMemory(), aborted);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseOutputAsync(
                        socket.CloseStatus ?? WebSocketCloseStatus.NormalClosure,
                        socket.CloseStatusDescription,
                        aborted);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, result.Count), result.MessageType, result.EndOfMessage, aborted);
            }
        }
        catch (Exception ex) when (ex is WebSocketException || RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, context.Request.Method, context.Request.Path.Value ?? string.Empty, ex);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
