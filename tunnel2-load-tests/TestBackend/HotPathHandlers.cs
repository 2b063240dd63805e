using System.Buffers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tunnel2.TestBackend;

/// <summary>
/// The endpoints load tests hammer: <c>ping</c>, <c>get</c>, <c>fast</c>, <c>delay/{ms}</c> and <c>echo</c>.
/// Bodies are cached arrays (<see cref="Payloads"/>) written straight into the response pipe, and Content-Length is
/// set up front, so Kestrel sends head and body in one write when the handler returns.
/// </summary>
internal sealed class HotPathHandlers
{
    /// <summary>Upper bound of <c>/loadtest/delay/{ms}</c>.</summary>
    public const long MaxDelayMilliseconds = 60_000;

    private readonly ILogger _logger;

    public HotPathHandlers(ILogger logger)
    {
        _logger = logger;
    }

    public static Task PingAsync(HttpContext context)
        => WriteCachedAsync(context.Response, Payloads.TextPlain, Payloads.Pong);

    public static Task GetAsync(HttpContext context)
        => WriteCachedAsync(context.Response, Payloads.ApplicationJson, Payloads.Get);

    public static Task FastAsync(HttpContext context)
        => WriteCachedAsync(context.Response, Payloads.ApplicationJson, Payloads.Fast);

    public static async Task DelayAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetRouteInt64(context, "ms", MaxDelayMilliseconds, out var milliseconds))
        {
            await RequestParsing.WriteBadRequestAsync(context, "delay must be a whole number of milliseconds in [0, 60000]");
            return;
        }

        if (milliseconds > 0)
        {
            // SuppressThrowing: a client that leaves during the delay is the normal case, not an exception.
            var aborted = context.RequestAborted;
            await Task.Delay(TimeSpan.FromMilliseconds(milliseconds), aborted).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            if (aborted.IsCancellationRequested)
            {
                return;
            }
        }

        await WriteCachedAsync(context.Response, Payloads.ApplicationJson, Payloads.Delayed);
    }

    /// <summary>
    /// Streams the request body back as it arrives, flushing after every read, with the request's Content-Type and,
    /// when the request declared one, the same Content-Length (otherwise the response is chunked).
    /// </summary>
    public async Task EchoAsync(HttpContext context)
    {
        var request = context.Request;
        var response = context.Response;
        var aborted = context.RequestAborted;

        if (request.ContentType is { } contentType)
        {
            response.ContentType = contentType;
        }

        if (request.ContentLength is { } contentLength)
        {
            response.ContentLength = contentLength;
        }

        var reader = request.BodyReader;
        var writer = response.BodyWriter;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(aborted);
                var buffer = result.Buffer;

                foreach (var segment in buffer)
                {
                    writer.Write(segment.Span);
                }

                reader.AdvanceTo(buffer.End);

                if (!buffer.IsEmpty)
                {
                    var flush = await writer.FlushAsync(aborted);
                    if (flush.IsCompleted || flush.IsCanceled)
                    {
                        return;
                    }
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, request.Method, request.Path.Value ?? string.Empty, ex);
        }
    }

    /// <summary>
    /// Writes a cached body into the response pipe without flushing: Kestrel flushes head and body together when the
    /// handler returns. On HEAD Kestrel discards the body and keeps the Content-Length.
    /// </summary>
    private static Task WriteCachedAsync(HttpResponse response, string contentType, byte[] payload)
    {
        response.ContentType = contentType;
        response.ContentLength = payload.Length;
        response.BodyWriter.Write(payload);
        return Task.CompletedTask;
    }
}
