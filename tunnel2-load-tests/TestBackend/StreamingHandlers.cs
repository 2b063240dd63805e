using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Tunnel2.TestBackend;

/// <summary>
/// Endpoints whose bodies are generated while they are sent: <c>bytes/{n}</c> (large deterministic bodies),
/// <c>stream/{chunks}</c> and <c>sse</c> (incremental delivery), <c>abort-after/{bytes}</c> (a backend that dies
/// mid-response). Content is produced straight into the response pipe's memory; nothing is allocated per chunk.
/// </summary>
internal sealed class StreamingHandlers
{
    /// <summary>Largest <c>/loadtest/bytes/{n}</c>: 2 GiB.</summary>
    public const long MaxBytes = 2L * 1024 * 1024 * 1024;

    /// <summary>Largest body for which <c>?sha=1</c> adds <c>X-Content-Sha256</c> (it is hashed before sending).</summary>
    public const long MaxHashedBytes = 64L * 1024 * 1024;

    /// <summary>Largest <c>/loadtest/abort-after/{bytes}</c>: 1 GiB (the declared Content-Length is twice that).</summary>
    public const long MaxAbortAfterBytes = 1L * 1024 * 1024 * 1024;

    public const long MaxChunks = 1_000_000;
    public const long MaxChunkSize = 1024 * 1024;
    public const long DefaultChunkSize = 64;
    public const long MaxIntervalMilliseconds = 60_000;
    public const long DefaultSseCount = 10;
    public const long DefaultSseIntervalMilliseconds = 100;

    /// <summary>Default pause between the last flush and the abort of <c>/loadtest/abort-after/{bytes}</c>.</summary>
    public const long DefaultAbortGraceMilliseconds = 50;

    /// <summary>Name of the response header that carries the body's SHA-256 for <c>/loadtest/bytes/{n}?sha=1</c>.</summary>
    public const string ContentSha256Header = "X-Content-Sha256";

    // Flush every 64 KiB: large enough to amortise the flush, small enough to keep memory and latency low
    // (YARP's StreamCopier and Kestrel's output pipe pause threshold use the same order of magnitude).
    private const int FlushThreshold = DeterministicContent.BlockSize;

    // Seed of the bytes written by abort-after, so its prefix equals /loadtest/bytes/{2n}?seed=1.
    private const ulong AbortAfterSeed = 1;

    private readonly ILogger _logger;

    public StreamingHandlers(ILogger logger)
    {
        _logger = logger;
    }

    /// <summary>
    /// <c>GET|HEAD /loadtest/bytes/{n}?seed=S&amp;sha=1</c>: n deterministic bytes with Content-Length n (HEAD: the
    /// same head, nothing generated).
    /// </summary>
    public async Task BytesAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetRouteInt64(context, "n", MaxBytes, out var length))
        {
            await RequestParsing.WriteBadRequestAsync(context, "n must be a whole number of bytes in [0, 2147483648]");
            return;
        }

        if (!RequestParsing.TryGetQueryUInt64(context, "seed", 1, out var seed))
        {
            await RequestParsing.WriteBadRequestAsync(context, "seed must be an unsigned 64-bit integer");
            return;
        }

        var response = context.Response;
        response.ContentType = Payloads.ApplicationOctetStream;
        response.ContentLength = length;
        if (length <= MaxHashedBytes && RequestParsing.IsQueryFlagSet(context, "sha"))
        {
            response.Headers[ContentSha256Header] = DeterministicContent.ComputeSha256Hex(length, seed);
        }

        if (HttpMethods.IsHead(context.Request.Method))
        {
            return;
        }

        try
        {
            await WriteDeterministicAsync(response.BodyWriter, length, seed, context.RequestAborted);
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, context.Request.Method, context.Request.Path.Value ?? string.Empty, ex);
        }
    }

    /// <summary>
    /// <c>GET /loadtest/stream/{chunks}?size=N&amp;delayMs=D</c>: a chunked text body of <c>chunks</c> pieces of N
    /// bytes, flushed one by one, D ms apart. Piece i is "<c>chunk 0003</c>" (i, at least four digits), padded
    /// with '.', ending in '\n'; a piece shorter than its label is the label cut short, still ending in '\n'.
    /// </summary>
    public async Task StreamAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetRouteInt64(context, "chunks", MaxChunks, out var chunks))
        {
            await RequestParsing.WriteBadRequestAsync(context, "chunks must be a whole number in [0, 1000000]");
            return;
        }

        if (!RequestParsing.TryGetQueryInt64(context, "size", DefaultChunkSize, 1, MaxChunkSize, out var size))
        {
            await RequestParsing.WriteBadRequestAsync(context, "size must be a whole number of bytes in [1, 1048576]");
            return;
        }

        if (!RequestParsing.TryGetQueryInt64(context, "delayMs", 0, 0, MaxIntervalMilliseconds, out var delay))
        {
            await RequestParsing.WriteBadRequestAsync(context, "delayMs must be a whole number in [0, 60000]");
            return;
        }

        var response = context.Response;
        var aborted = context.RequestAborted;
        response.ContentType = Payloads.TextPlain;

        try
        {
            // Without Content-Length and with a flush, Kestrel uses chunked transfer coding on HTTP/1.1.
            await response.StartAsync(aborted);

            var writer = response.BodyWriter;
            for (long i = 0; i < chunks; i++)
            {
                if (i > 0 && !await DelayAsync(delay, aborted))
                {
                    return;
                }

                WriteChunk(writer, i, (int)size);
                var flush = await writer.FlushAsync(aborted);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, context.Request.Method, context.Request.Path.Value ?? string.Empty, ex);
        }
    }

    /// <summary>
    /// <c>GET /loadtest/sse?count=N&amp;intervalMs=M</c>: N server-sent events "<c>data: i</c>" (i from 0), one
    /// every M ms, each flushed.
    /// </summary>
    public async Task ServerSentEventsAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetQueryInt64(context, "count", DefaultSseCount, 0, MaxChunks, out var count))
        {
            await RequestParsing.WriteBadRequestAsync(context, "count must be a whole number in [0, 1000000]");
            return;
        }

        if (!RequestParsing.TryGetQueryInt64(context, "intervalMs", DefaultSseIntervalMilliseconds, 0, MaxIntervalMilliseconds, out var interval))
        {
            await RequestParsing.WriteBadRequestAsync(context, "intervalMs must be a whole number in [0, 60000]");
            return;
        }

        var response = context.Response;
        var aborted = context.RequestAborted;
        response.ContentType = Payloads.TextEventStream;
        response.Headers.CacheControl = "no-cache";

        try
        {
            await response.StartAsync(aborted);

            var writer = response.BodyWriter;
            for (long i = 0; i < count; i++)
            {
                if (i > 0 && !await DelayAsync(interval, aborted))
                {
                    return;
                }

                WriteEvent(writer, i);
                var flush = await writer.FlushAsync(aborted);
                if (flush.IsCompleted || flush.IsCanceled)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, context.Request.Method, context.Request.Path.Value ?? string.Empty, ex);
        }
    }

    /// <summary>
    /// <c>GET /loadtest/abort-after/{bytes}?graceMs=G</c>: declares Content-Length 2×bytes, sends bytes (the same
    /// content as <c>/loadtest/bytes/{2×bytes}?seed=1</c>), flushes, waits G ms (default 50), then aborts the
    /// connection. With bytes = 0 it aborts at once, before any response head: a backend that resets before headers.
    /// </summary>
    /// <remarks>
    /// The grace period is there because a flush only hands the bytes to Kestrel's transport pipe, and
    /// <see cref="HttpContext.Abort"/> discards what the socket send loop has not taken yet: measured on loopback,
    /// aborting straight after the flush delivered nothing at all (not even the head) for 1 KB, and 64–128 KiB of a
    /// 1 MB body; with 1 ms or more everything flushed arrived in 120 of 120 runs.
    /// </remarks>
    public async Task AbortAfterAsync(HttpContext context)
    {
        if (!RequestParsing.TryGetRouteInt64(context, "bytes", MaxAbortAfterBytes, out var bytes))
        {
            await RequestParsing.WriteBadRequestAsync(context, "bytes must be a whole number in [0, 1073741824]");
            return;
        }

        if (!RequestParsing.TryGetQueryInt64(context, "graceMs", DefaultAbortGraceMilliseconds, 0, MaxIntervalMilliseconds, out var grace))
        {
            await RequestParsing.WriteBadRequestAsync(context, "graceMs must be a whole number in [0, 60000]");
            return;
        }

        var response = context.Response;
        var aborted = context.RequestAborted;
        try
        {
            if (bytes > 0)
            {
                response.ContentType = Payloads.ApplicationOctetStream;
                response.ContentLength = bytes * 2;
                await WriteDeterministicAsync(response.BodyWriter, bytes, AbortAfterSeed, aborted);
                if (!await DelayAsync(grace, aborted))
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (RequestParsing.IsClientAbort(ex))
        {
            Log.ClientAborted(_logger, context.Request.Method, context.Request.Path.Value ?? string.Empty, ex);
            return;
        }

        Log.AbortingOnRequest(_logger, context.Request.Path.Value ?? string.Empty, bytes);
        context.Abort();
    }

    /// <summary>
    /// Writes <paramref name="length"/> bytes of <see cref="DeterministicContent"/> (from offset 0) into the pipe's
    /// own memory, flushing every <see cref="FlushThreshold"/> bytes and at the end. Stops early when the client goes
    /// away.
    /// </summary>
    /// <remarks>
    /// The final flush is required: once a response has started, Kestrel does not flush what is left in
    /// <see cref="HttpResponse.BodyWriter"/> when the handler returns (HTTP/1.1 with Content-Length), and the tail
    /// would wait for the next response or the keep-alive timeout (dotnet/AspNetCore.Docs#35289).
    /// </remarks>
    private static async Task WriteDeterministicAsync(PipeWriter writer, long length, ulong seed, CancellationToken cancellationToken)
    {
        long offset = 0;
        var unflushed = 0;
        while (offset < length)
        {
            var written = FillNext(writer, offset, length - offset, seed);
            offset += written;
            unflushed += written;

            if (unflushed >= FlushThreshold || offset == length)
            {
                unflushed = 0;
                var flush = await writer.FlushAsync(cancellationToken);
                if (flush.IsCompleted || flush.IsCanceled || cancellationToken.IsCancellationRequested)
                {
                    return;
                }
            }
        }
    }

    private static int FillNext(PipeWriter writer, long offset, long remaining, ulong seed)
    {
        var span = writer.GetSpan();
        var count = (int)Math.Min(span.Length, remaining);
        DeterministicContent.Fill(span[..count], offset, seed);
        writer.Advance(count);
        return count;
    }

    private static void WriteChunk(PipeWriter writer, long index, int size)
    {
        Span<byte> label = stackalloc byte[32];
        "chunk "u8.CopyTo(label);
        Utf8Formatter.TryFormat(index, label[6..], out var digits, new StandardFormat('D', 4));
        label = label[..(6 + digits)];

        for (var position = 0; position < size;)
        {
            var span = writer.GetSpan();
            var count = Math.Min(span.Length, size - position);
            var piece = span[..count];

            piece.Fill((byte)'.');
            if (position < label.Length)
            {
                var labelPart = label[position..Math.Min(label.Length, position + count)];
                labelPart.CopyTo(piece);
            }

            if (position + count == size)
            {
                piece[^1] = (byte)'\n';
            }

            writer.Advance(count);
            position += count;
        }
    }

    private static void WriteEvent(PipeWriter writer, long index)
    {
        // "data: " + up to 20 digits + "\n\n"
        var span = writer.GetSpan(32);
        "data: "u8.CopyTo(span);
        Utf8Formatter.TryFormat(index, span[6..], out var digits);
        "\n\n"u8.CopyTo(span[(6 + digits)..]);
        writer.Advance(6 + digits + 2);
    }

    /// <summary>Waits, returning false (not throwing) when the client went away meanwhile.</summary>
    private static async ValueTask<bool> DelayAsync(long milliseconds, CancellationToken cancellationToken)
    {
        if (milliseconds > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(milliseconds), cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        return !cancellationToken.IsCancellationRequested;
    }
}
