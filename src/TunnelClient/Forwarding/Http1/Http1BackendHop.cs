using System.Buffers;
using System.Buffers.Text;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>What <see cref="Http1BackendHop.Prepare"/> decided.</summary>
internal enum Http1PrepareResult
{
    /// <summary>The backend request is written; call <see cref="Http1BackendHop.ForwardAsync"/>.</summary>
    Ready,

    /// <summary>CONNECT, an https:// backend, an upgrade or gRPC: the HttpClient path serves it.</summary>
    NeedsHttpClient,

    /// <summary>The request head does not decode.</summary>
    Invalid,
}

/// <summary>A backend request written by <see cref="Http1BackendHop.Prepare"/>.</summary>
internal struct Http1Request
{
    /// <summary>The head, then any body bytes already taken from the stream (a pooled array).</summary>
    public byte[] Buffer;

    public int Length;

    public BackendRoute Route;

    public RequestBodyFraming Framing;

    /// <summary>Content-Length bytes still to come from the stream.</summary>
    public long BodyRemaining;

    /// <summary>True when <see cref="Buffer"/> holds the whole request: no body pump runs.</summary>
    public bool BodyComplete;

    public bool IsHead;

    public int MethodCode;
}

/// <summary>
/// The built-in HTTP/1.1 hop to plain-http backends (docs/adr/0010-builtin-http1-backend-hop.md): the request head is
/// written from the header block into a pooled buffer, sent with the first body bytes in one write on a pooled
/// connection, the rest of the body is pumped concurrently with reading the response (full duplex: an early answer
/// is forwarded at once), and the response is parsed strictly and forwarded as HEADERS and DATA. Errors map to the
/// same codes, logs and metrics as the HttpClient path in <see cref="BackendForwarder"/>.
/// </summary>
internal sealed class Http1BackendHop : IDisposable
{
    /// <summary>Head buffer first tried; almost every head fits (the retry size is exact).</summary>
    private const int HeadBufferSize = 4096;

    /// <summary>Body bytes already received that travel in the same write as the head.</summary>
    private const int InitialBodyLimit = 16 * 1024;

    /// <summary>Read size for bodies of unknown length and for the pump's scratch buffer (the pool's small buckets keep up).</summary>
    private const int DefaultReadSize = 16 * 1024;

    /// <summary>Larger buffers (huge heads) are not kept.</summary>
    private const int MaxPooledBufferSize = 64 * 1024;

    private static readonly byte[] s_lastChunk = "0\r\n\r\n"u8.ToArray();
    private static readonly byte[] s_crlf = "\r\n"u8.ToArray();

    private readonly TunnelClientOptions _options;
    private readonly BackendRoutes _routes;

    // Head and receive buffers: every request in flight holds two, more than the shared pool keeps per core, and
    // each miss allocates 4 KiB. A pool of our own keeps one pair per concurrent request.
    private readonly ArrayPool<byte> _buffers;
    private readonly ClientMetrics _metrics;
    private readonly ILogger _logger;
    private readonly Http1ConnectionPool?[] _pools;
    private readonly List<Http1ConnectionPool> _distinctPools = [];

    public Http1BackendHop(TunnelClientOptions options, BackendRoutes routes, ClientMetrics metrics, ILogger logger, TimeProvider time)
    {
        _options = options;
        _routes = routes;
        _metrics = metrics;
        _logger = logger;
        _buffers = ArrayPool<byte>.Create(MaxPooledBufferSize, Math.Max(64, options.MaxConcurrentRequests * 2));
        _pools = new Http1ConnectionPool?[routes.All.Count];
        var byEndpoint = new Dictionary<(string, int), Http1ConnectionPool>();
        foreach (var route in routes.All)
        {
            if (!route.IsPlainHttp)
            {
                continue;
            }

            if (!byEndpoint.TryGetValue((route.Host, route.Port), out var pool))
            {
                // Never more idle connections than requests forwarded at once.
                pool = new Http1ConnectionPool(route.Host, route.Port, options.MaxConcurrentRequests, PooledConnectionIdleTimeout, time);
                byEndpoint.Add((route.Host, route.Port), pool);
                _distinctPools.Add(pool);
            }

            _pools[route.Index] = pool;
        }
    }

    /// <summary>How long an idle backend connection is kept, as the HttpClient path's PooledConnectionIdleTimeout.</summary>
    public static TimeSpan PooledConnectionIdleTimeout { get; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Writes the backend request for <paramref name="head"/>, with the body bytes that have already arrived. Does
    /// not dispose <paramref name="head"/>.
    /// </summary>
    public Http1PrepareResult Prepare(TunnelStream stream, in ReceivedHeaderBlock head, out Http1Request request, out string? error)
    {
        request = default;
        var hasBody = !head.EndStream;
        var size = HeadBufferSize;
        while (true)
        {
            var buffer = _buffers.Rent(size);
            var writer = new Http1RequestWriter(_routes, hasBody, buffer);
            error = HeaderBlockReader.Read(head.Span, ref writer, _options.Limits.MaxHeaderListSize) ?? writer.Error;
            if (error is not null || !writer.HasTarget || writer.NeedsHttpClient)
            {
                _buffers.Return(buffer);
                return error is not null || !writer.HasTarget ? Http1PrepareResult.Invalid : Http1PrepareResult.NeedsHttpClient;
            }

            if (!writer.Overflowed)
            {
                writer.Finish(head.Span, _options.Limits.MaxHeaderListSize);
            }

            if (writer.Overflowed)
            {
                _buffers.Return(buffer);
                if (size != HeadBufferSize)
                {
                    // The retry size is a bound, so this is never reached; refuse rather than loop.
                    error = "The request head does not fit its bound.";
                    return Http1PrepareResult.Invalid;
                }

                size = Http1RequestWriter.WorstCaseSize(head.Span.Length, writer.Route!);
                continue;
            }

            request = new Http1Request
            {
                Buffer = buffer,
                Length = writer.Length,
                Route = writer.Route!,
                Framing = writer.Framing,
                BodyRemaining = writer.ContentLength ?? 0,
                BodyComplete = !hasBody,
                IsHead = writer.IsHead,
                MethodCode = writer.MethodCode,
            };
            break;
        }

        if (hasBody && stream.Input.TryRead(out var result))
        {
            TakeInitialBody(_buffers, stream.Input, result, ref request);
        }

        return Http1PrepareResult.Ready;
    }

    /// <summary>
    /// Forwards a prepared request and its response, then completes the stream's input. Never throws for backend
    /// failures: it reports them on the stream.
    /// </summary>
    /// <remarks>
    /// The exchange's state lives in the connection (<see cref="Http1Connection.Parser"/>, the receive buffer, the
    /// pump), not in this method's state machine: under concurrency the builder's pool runs dry and every box is
    /// allocated, so a small one matters.
    /// </remarks>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ForwardAsync(TunnelStream stream, Http1Request request)
    {
        var start = Stopwatch.GetTimestamp();
        Http1Connection? connection = null;
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                // The retry after a stale connection always dials: another idle one may be just as stale.
                var pool = _pools[request.Route.Index]!;
                connection = attempt == 0 ? pool.TryRent() : null;
                var fresh = connection is null;
                connection ??= pool.Create();
                var remaining = _options.BackendTimeout - Stopwatch.GetElapsedTime(start);
                if (!connection.Begin(stream, fresh && _options.BackendConnectTimeout < remaining ? _options.BackendConnectTimeout : remaining))
                {
                    return;
                }

                if (fresh && !await ConnectAsync(stream, connection, request, start))
                {
                    return;
                }

                try
                {
                    await SendAllAsync(connection.Socket, request.Buffer.AsMemory(0, request.Length), connection.Token);
                    if (!request.BodyComplete)
                    {
                        // Awaited exactly once: when the response is done, or by StopPumpAsync.
#pragma warning disable CA2012
                        connection.Pump = PumpAsync(connection, stream, request.Framing, request.BodyRemaining);
#pragma warning restore CA2012
                        connection.Pumping = true;
                    }

                    connection.Receive = _buffers.Rent(HeadBufferSize);
                    while (!ParseHead(connection, stream.MaxHeaderBlockSize))
                    {
                        var read = await connection.Socket.ReceiveAsync(connection.Receive.AsMemory(connection.Filled), SocketFlags.None, connection.Token);
                        if (read == 0)
                        {
                            throw new HttpRequestException(HttpRequestError.ResponseEnded, "The backend closed the connection before its response head was complete.");
                        }

                        connection.Filled += read;
                        connection.ReceivedAny = true;
                    }

                    break;
                }
                catch (Exception ex) when (stream.AbortReason is null)
                {
                    if (connection.Pumping)
                    {
                        await StopPumpAsync(connection, stream);
                    }

                    // A reused connection the backend had closed (HttpClient retries the same way): once, on a fresh
                    // connection, when nothing came back and no body byte left the stream that cannot be sent again.
                    if (attempt == 0 && connection.Reused && !connection.ReceivedAny && !connection.BodyConsumed && !connection.TimedOut)
                    {
                        Release(connection);
                        connection = null;
                        continue;
                    }

                    ReportBeforeResponse(stream, request, ex, connection.TimedOut);
                    return;
                }
            }

            connection.EndTimeout();
            var keepAlive = await ForwardResponseAsync(stream, connection, request, start);
            if (connection.Pumping)
            {
                if (!connection.Pump.IsCompleted)
                {
                    // The response is complete before the request body: stop sending it (RFC 9112 §9.5), never reuse.
                    keepAlive = false;
                }
                else
                {
                    connection.Pumping = false;
                    await connection.Pump;
                    keepAlive &= connection.BodySent;
                }
            }

            if (keepAlive)
            {
                ReturnBuffer(connection);
                if (connection.End())
                {
                    connection.Pool.Return(connection);
                    connection = null;
                }
            }
        }
        finally
        {
            if (connection is { Pumping: true })
            {
                await StopPumpAsync(connection, stream);
            }

            await stream.Input.CompleteAsync();
            if (connection is not null)
            {
                Release(connection);
            }

            _buffers.Return(request.Buffer);
        }
    }

    /// <summary>Parses what has arrived; true once a final head is complete (interim 1xx heads are dropped on the way).</summary>
    private bool ParseHead(Http1Connection connection, int maxHead)
    {
        while (true)
        {
            var status = connection.Parser.Parse(connection.Receive.AsSpan(0, connection.Filled), maxHead, ref connection.Fields);
            if (status == HeadParseStatus.Invalid)
            {
                throw new HttpRequestException(HttpRequestError.InvalidResponse, connection.Parser.Error);
            }

            if (status == HeadParseStatus.NeedMore)
            {
                if (connection.Filled == connection.Receive.Length)
                {
                    var grown = _buffers.Rent(Math.Min(connection.Receive.Length * 2, Math.Max(maxHead, HeadBufferSize)));
                    connection.Receive.AsSpan(0, connection.Filled).CopyTo(grown);
                    _buffers.Return(connection.Receive);
                    connection.Receive = grown;
                }

                return false;
            }

            if (connection.Parser.StatusCode is >= 100 and < 200 and not 101)
            {
                // An interim response (100 Continue, 103 Early Hints): skipped, the final one follows.
                var headLength = connection.Parser.HeadLength;
                connection.Filled -= headLength;
                connection.Receive.AsSpan(headLength, connection.Filled).CopyTo(connection.Receive);
                connection.Parser = default;
                continue;
            }

            return true;
        }
    }

    /// <summary>Sends the response head and body to the stream.</summary>
    /// <returns>True when the connection may serve another request, as far as the response goes.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> ForwardResponseAsync(TunnelStream stream, Http1Connection connection, Http1Request request, long start)
    {
        var status = connection.Parser.StatusCode;
        if (status == 101)
        {
            // Never asked for on this path (upgrades take the HttpClient path), so never switched (reliability.md C7).
            stream.Reset(TunnelErrorCode.BackendInvalidResponse, "101 Switching Protocols to a request that asked for no upgrade.");
            return false;
        }

        var headLength = connection.Parser.HeadLength;
        var receive = connection.Receive;
        var fields = connection.Fields.AsSpan(0, connection.Parser.FieldCount);
        var framing = Http1ResponseFraming.Decide(status, connection.Parser.IsHttp10, request.IsHead, Http1ResponseFraming.Scan(receive.AsSpan(0, headLength), fields));
        if (framing.Error is not null)
        {
            ReportBeforeResponse(stream, request, new HttpRequestException(HttpRequestError.InvalidResponse, framing.Error), timedOut: false);
            return false;
        }

        var backendTime = Stopwatch.GetElapsedTime(start);
        _metrics.CountOutcome(TunnelErrorCode.NoError);
        _metrics.ObserveBackend(backendTime);
        if (!TrySendResponseHead(stream, status, receive.AsSpan(0, headLength), fields, framing, backendTime))
        {
            stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend's response head is too large for the tunnel.");
            return false;
        }

        // Reusable only when both messages ended exactly where their framing says: a request body cut short by an
        // early response, or bytes after the response, would desynchronise the next exchange.
        var leftover = connection.Filled - headLength;
        var body = framing.Kind switch
        {
            ResponseBodyKind.None => leftover == 0 ? BodyResult.Complete : BodyResult.CompleteNotReusable,
            ResponseBodyKind.ContentLength => await CopyLengthAsync(stream, connection, request, receive, headLength, leftover, framing.Length),
            ResponseBodyKind.Chunked => await CopyChunkedAsync(stream, connection, request, receive, headLength, leftover),
            _ => await CopyUntilCloseAsync(stream, connection, request, receive, headLength, leftover),
        };
        return body == BodyResult.Complete && framing.KeepAlive;
    }

    /// <summary>Connects a new connection within the connect timeout (and what is left of the backend timeout); reports a failure.</summary>
    private async ValueTask<bool> ConnectAsync(TunnelStream stream, Http1Connection connection, Http1Request request, long start)
    {
        try
        {
            await connection.Pool.ConnectAsync(connection, connection.Token);
        }
        catch (Exception ex) when (stream.AbortReason is null)
        {
            if (!connection.TimedOut)
            {
                ReportBeforeResponse(stream, request, new HttpRequestException(HttpRequestError.ConnectionError, $"{ex.Message} ({request.Route.HostHeader})", ex), timedOut: false);
            }
            else if (Stopwatch.GetElapsedTime(start) >= _options.BackendTimeout)
            {
                ReportBeforeResponse(stream, request, ex, timedOut: true);
            }
            else
            {
                ReportBeforeResponse(stream, request, new HttpRequestException(HttpRequestError.ConnectionError, $"The connection to {request.Route.HostHeader} timed out after {_options.BackendConnectTimeout}.", ex), timedOut: false);
            }

            return false;
        }

        // Connected: from now on only the backend timeout applies.
        connection.Rearm(_options.BackendTimeout - Stopwatch.GetElapsedTime(start));
        return true;
    }

    private void ReturnBuffer(Http1Connection connection)
    {
        if (connection.Receive is { } receive)
        {
            connection.Receive = null!;
            _buffers.Return(receive);
        }
    }

    private void Release(Http1Connection connection)
    {
        ReturnBuffer(connection);
        connection.Dispose();
    }

    public void Dispose()
    {
        foreach (var pool in _distinctPools)
        {
            pool.Dispose();
        }
    }

    /// <summary>Takes the body bytes that arrived with the head into the request buffer, chunk-framed if need be.</summary>
    private static void TakeInitialBody(ArrayPool<byte> buffers, PipeReader input, ReadResult result, ref Http1Request request)
    {
        var data = result.Buffer;
        var take = (int)Math.Min(data.Length, InitialBodyLimit);
        if (request.Framing == RequestBodyFraming.ContentLength)
        {
            take = (int)Math.Min(take, request.BodyRemaining);
        }

        // Room for the data, a chunk header and trailing CRLF, and the last chunk.
        var needed = request.Length + take + 32;
        if (needed > request.Buffer.Length)
        {
            var grown = buffers.Rent(needed);
            request.Buffer.AsSpan(0, request.Length).CopyTo(grown);
            buffers.Return(request.Buffer);
            request.Buffer = grown;
        }

        var destination = request.Buffer.AsSpan(request.Length);
        var written = 0;
        if (request.Framing == RequestBodyFraming.Chunked)
        {
            if (take > 0)
            {
                written += WriteChunkHeader(destination, take);
                data.Slice(0, take).CopyTo(destination.Slice(written));
                written += take;
                "\r\n"u8.CopyTo(destination.Slice(written));
                written += 2;
            }

            if (result.IsCompleted && take == data.Length)
            {
                s_lastChunk.CopyTo(destination.Slice(written));
                written += s_lastChunk.Length;
                request.BodyComplete = true;
            }
        }
        else
        {
            data.Slice(0, take).CopyTo(destination);
            written = take;
            request.BodyRemaining -= take;
            request.BodyComplete = request.BodyRemaining == 0;
        }

        request.Length += written;
        input.AdvanceTo(data.GetPosition(take));
    }

    private static int WriteChunkHeader(Span<byte> destination, int length)
    {
        Utf8Formatter.TryFormat(length, destination, out var written, new StandardFormat('X'));
        destination[written++] = (byte)'\r';
        destination[written++] = (byte)'\n';
        return written;
    }

    /// <summary>A failure before the response head: the same log, metric and reset as the HttpClient path.</summary>
    private void ReportBeforeResponse(TunnelStream stream, in Http1Request request, Exception exception, bool timedOut)
    {
        if (timedOut)
        {
            Log.BackendFailed(_logger, MethodName(request), request.Route.Authority, TunnelErrorCode.BackendTimeout, exception);
            _metrics.CountOutcome(TunnelErrorCode.BackendTimeout);
            stream.Reset(TunnelErrorCode.BackendTimeout, "The backend did not answer in time.");
            return;
        }

        var code = exception is HttpRequestException { HttpRequestError: HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded }
            ? TunnelErrorCode.BackendInvalidResponse
            : TunnelErrorCode.BackendUnavailable;
        Log.BackendFailed(_logger, MethodName(request), request.Route.Authority, code, exception);
        _metrics.CountOutcome(code);
        stream.Reset(code, exception.Message);
    }

    private void FailAfterStart(TunnelStream stream, in Http1Request request, Exception exception)
    {
        Log.BackendFailedAfterStart(_logger, MethodName(request), request.Route.Authority, exception);
        stream.Reset(TunnelErrorCode.BackendAborted, "The backend failed in the middle of its response.");
    }

    private static string MethodName(in Http1Request request)
    {
        if (StaticTable.GetMethod(request.MethodCode) is { } method)
        {
            return method;
        }

        var line = request.Buffer.AsSpan(0, request.Length);
        return Encoding.Latin1.GetString(line.Slice(0, Math.Max(0, line.IndexOf((byte)' '))));
    }

    private static bool TrySendResponseHead(TunnelStream stream, int status, ReadOnlySpan<byte> head, ReadOnlySpan<FieldRange> fields, in ResponseFraming framing, TimeSpan backendTime)
    {
        var endStream = framing.Kind == ResponseBodyKind.None;
        var maxBlock = stream.MaxHeaderBlockSize;
        for (var size = Math.Min(HeaderBlockWriter.TypicalBlockSize, maxBlock); ; size = maxBlock)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            var length = WriteResponseHead(buffer.AsSpan(0, size), status, head, fields, framing.ForwardedLength, backendTime);
            if (length >= 0)
            {
                stream.TrySendHeaders(buffer, length, endStream);
                return true;
            }

            ArrayPool<byte>.Shared.Return(buffer);
            if (size == maxBlock)
            {
                return false;
            }
        }
    }

    /// <summary>The tunnel's response head, as <see cref="BackendForwarder"/> writes it from an HttpResponseMessage.</summary>
    /// <returns>The head's length, or -1 when it does not fit <paramref name="destination"/>.</returns>
    internal static int WriteResponseHead(Span<byte> destination, int status, ReadOnlySpan<byte> head, ReadOnlySpan<FieldRange> fields, long contentLength, TimeSpan? backendTime)
    {
        var writer = new HeaderBlockWriter(destination);
        writer.WriteResponseHead(status);
        var hasConnection = false;
        foreach (var field in fields)
        {
            hasConnection |= Ascii.EqualsIgnoreCase(field.Name(head), "Connection"u8);
        }

        foreach (var field in fields)
        {
            var name = field.Name(head);
            if (HopByHopHeaders.IsHopByHop(name) || Ascii.EqualsIgnoreCase(name, "Content-Length"u8) || (hasConnection && IsNominated(head, fields, name)))
            {
                continue;
            }

            if (writer.WriteField(name, field.Value(head)) == HeaderFieldResult.Overflow)
            {
                return -1;
            }
        }

        if (contentLength >= 0)
        {
            // One value, however the backend spelled it (a list of equal values is one value, RFC 9110 §8.6).
            Span<byte> digits = stackalloc byte[20];
            Utf8Formatter.TryFormat(contentLength, digits, out var written);
            writer.WriteField("Content-Length"u8, digits.Slice(0, written));
        }

        if (backendTime is { } elapsed)
        {
            // For the server's tunnel2_backend_seconds; it strips the field before the public response.
            Span<char> digits = stackalloc char[20];
            ((long)elapsed.TotalMicroseconds).TryFormat(digits, out var written, provider: System.Globalization.CultureInfo.InvariantCulture);
            writer.WriteField(UplinkHandshake.BackendTimeField, digits.Slice(0, written));
        }

        return writer.Overflowed ? -1 : writer.Length;
    }

    private static bool IsNominated(ReadOnlySpan<byte> head, ReadOnlySpan<FieldRange> fields, ReadOnlySpan<byte> name)
    {
        foreach (var field in fields)
        {
            if (Ascii.EqualsIgnoreCase(field.Name(head), "Connection"u8) && HopByHopHeaders.IsNominated(field.Value(head), name))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Ends the stream with the backend's trailers; false when there are none to send.</summary>
    private static bool TrySendTrailers(TunnelStream stream, Span<byte> section, ref FieldRange[] fields, out string? error)
    {
        error = null;
        var parser = Http1HeadParser.ForTrailers();
        if (parser.Parse(section, section.Length + 1, ref fields) != HeadParseStatus.Done)
        {
            error = parser.Error ?? "The backend's trailer section is incomplete.";
            return false;
        }

        if (parser.FieldCount == 0)
        {
            return false;
        }

        var maxBlock = stream.MaxHeaderBlockSize;
        var buffer = ArrayPool<byte>.Shared.Rent(maxBlock);
        var writer = new HeaderBlockWriter(buffer.AsSpan(0, maxBlock));
        writer.WriteTrailersHead();
        foreach (var field in fields.AsSpan(0, parser.FieldCount))
        {
            var name = field.Name(section);
            if (!HopByHopHeaders.IsHopByHop(name) && writer.WriteField(name, field.Value(section)) == HeaderFieldResult.Overflow)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend's trailers are too large for the tunnel.");
                return true;
            }
        }

        stream.TrySendHeaders(buffer, writer.Length, endStream: true);
        return true;
    }

    private enum BodyResult
    {
        /// <summary>The body failed; the stream has been reset.</summary>
        Failed,

        /// <summary>The body ended where its framing says, nothing after it.</summary>
        Complete,

        /// <summary>The body ended, but the connection cannot serve another request (bytes after it).</summary>
        CompleteNotReusable,
    }

    /// <summary>
    /// Reads the next bytes of a response body into a rented buffer (the caller sends or returns it). On a receive
    /// failure the buffer goes back, the stream is failed unless it was already aborted, and the buffer is null.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<(byte[]? Buffer, int Read)> ReceiveBodyAsync(TunnelStream stream, Http1Connection connection, Http1Request request, int size)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        try
        {
            return (buffer, await connection.Socket.ReceiveAsync(buffer.AsMemory(0, size), SocketFlags.None, connection.Token));
        }
        catch (Exception ex)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (stream.AbortReason is null)
            {
                FailAfterStart(stream, request, ex);
            }

            return (null, 0);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BodyResult> CopyLengthAsync(TunnelStream stream, Http1Connection connection, Http1Request request, byte[] received, int offset, int leftover, long remaining)
    {
        var frameSize = stream.Connection.PeerSettings.MaxFrameSize;
        var extra = false;
        if (leftover > 0)
        {
            var take = (int)Math.Min(leftover, remaining);
            extra = leftover > take;
            remaining -= take;
            await stream.WriteAsync(received.AsMemory(offset, take), endStream: remaining == 0, connection.Token);
        }

        while (remaining > 0)
        {
            // Size reads to the body: the pool's small buckets keep up under concurrency, its 64 KiB bucket does not.
            var (buffer, read) = await ReceiveBodyAsync(stream, connection, request, (int)Math.Min(remaining, frameSize));
            if (buffer is null)
            {
                return BodyResult.Failed;
            }

            if (read == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                FailAfterStart(stream, request, new HttpRequestException(HttpRequestError.ResponseEnded, "The backend's body ended before its Content-Length."));
                return BodyResult.Failed;
            }

            remaining -= read;

            // With a known length, END_STREAM rides on the last DATA frame instead of an extra empty frame.
            await stream.SendDataAsync(buffer, read, endStream: remaining == 0, connection.Token);
        }

        return extra ? BodyResult.CompleteNotReusable : BodyResult.Complete;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BodyResult> CopyChunkedAsync(TunnelStream stream, Http1Connection connection, Http1Request request, byte[] received, int offset, int leftover)
    {
        var frameSize = stream.Connection.PeerSettings.MaxFrameSize;
        var readSize = Math.Min(DefaultReadSize, frameSize);
        var maxTrailers = stream.MaxHeaderBlockSize;
        var decoder = default(ChunkedDecoder);
        try
        {
            var ended = false;
            var extra = false;
            if (leftover > 0)
            {
                // The bytes read with the head: decoded in place, then copied out (the head buffer is not ours to hand over).
                var status = decoder.Decode(received.AsSpan(offset, leftover), maxTrailers, out var consumed, out var written);
                if (status == ChunkedStatus.Invalid)
                {
                    FailAfterStart(stream, request, new HttpRequestException(HttpRequestError.InvalidResponse, decoder.Error));
                    return BodyResult.Failed;
                }

                ended = status == ChunkedStatus.Done;
                extra = ended && consumed < leftover;
                if (written > 0)
                {
                    await stream.WriteAsync(received.AsMemory(offset, written), endStream: ended && !decoder.HasTrailers, connection.Token);
                    if (ended && !decoder.HasTrailers)
                    {
                        return extra ? BodyResult.CompleteNotReusable : BodyResult.Complete;
                    }
                }
            }

            while (!ended)
            {
                var (buffer, read) = await ReceiveBodyAsync(stream, connection, request, readSize);
                if (buffer is null)
                {
                    return BodyResult.Failed;
                }

                var consumed = 0;
                var written = 0;
                var status = read == 0 ? ChunkedStatus.Invalid : decoder.Decode(buffer.AsSpan(0, read), maxTrailers, out consumed, out written);
                if (status == ChunkedStatus.Invalid)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    FailAfterStart(stream, request, new HttpRequestException(
                        read == 0 ? HttpRequestError.ResponseEnded : HttpRequestError.InvalidResponse,
                        read == 0 ? "The backend's chunked body ended before its last chunk." : decoder.Error));
                    return BodyResult.Failed;
                }

                ended = status == ChunkedStatus.Done;
                extra = ended && consumed < read;
                if (written == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    continue;
                }

                // The chunk data was moved to the front of the read buffer: it goes out as it is.
                await stream.SendDataAsync(buffer, written, endStream: ended && !decoder.HasTrailers, connection.Token);
                if (ended && !decoder.HasTrailers)
                {
                    return extra ? BodyResult.CompleteNotReusable : BodyResult.Complete;
                }
            }

            if (decoder.HasTrailers)
            {
                var section = decoder.TrailerSpan;
                if (!TrySendTrailers(stream, section, ref connection.Fields, out var error))
                {
                    if (error is not null)
                    {
                        FailAfterStart(stream, request, new HttpRequestException(HttpRequestError.InvalidResponse, error));
                        return BodyResult.Failed;
                    }

                    stream.Complete();
                }
            }
            else
            {
                stream.Complete();
            }

            return extra ? BodyResult.CompleteNotReusable : BodyResult.Complete;
        }
        finally
        {
            decoder.Release();
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<BodyResult> CopyUntilCloseAsync(TunnelStream stream, Http1Connection connection, Http1Request request, byte[] received, int offset, int leftover)
    {
        var readSize = Math.Min(DefaultReadSize, stream.Connection.PeerSettings.MaxFrameSize);
        if (leftover > 0)
        {
            await stream.WriteAsync(received.AsMemory(offset, leftover), endStream: false, connection.Token);
        }

        while (true)
        {
            // A reset is not a close: the body may be cut short, so it must not look complete (ReceiveBodyAsync fails it).
            var (buffer, read) = await ReceiveBodyAsync(stream, connection, request, readSize);
            if (buffer is null)
            {
                return BodyResult.Failed;
            }

            if (read == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                stream.Complete();
                return BodyResult.CompleteNotReusable;
            }

            await stream.SendDataAsync(buffer, read, endStream: false, connection.Token);
        }
    }

    /// <summary>
    /// Sends the request body from the stream to the backend while the response is read (full duplex), framed by
    /// Content-Length (never more than it says) or as chunks. Failures only mark the body unsent: the response side
    /// reports what the backend did.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask PumpAsync(Http1Connection connection, TunnelStream stream, RequestBodyFraming framing, long remaining)
    {
        var input = stream.Input;
        var socket = connection.Socket;
        var token = connection.Token;
        byte[]? scratch = null;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(token);
                var data = result.Buffer;
                if (connection.StopPump)
                {
                    input.AdvanceTo(data.Start);
                    return;
                }

                if (result.IsCanceled)
                {
                    // Left over from stopping the pump of a stale connection before the retry: not meant for this one.
                    input.AdvanceTo(data.Start);
                    continue;
                }

                var used = framing == RequestBodyFraming.ContentLength ? Math.Min(data.Length, remaining) : data.Length;
                if (used > 0)
                {
                    connection.BodyConsumed = true;
                    scratch ??= ArrayPool<byte>.Shared.Rent(DefaultReadSize);
                    if (framing == RequestBodyFraming.Chunked)
                    {
                        await SendChunkAsync(socket, data.Slice(0, used), scratch, token);
                    }
                    else
                    {
                        await SendSequenceAsync(socket, data.Slice(0, used), scratch, token);
                        remaining -= used;
                    }
                }

                // Anything past Content-Length is dropped (the entry never sends it).
                input.AdvanceTo(data.End);
                if (framing == RequestBodyFraming.ContentLength && remaining == 0)
                {
                    connection.BodySent = true;
                    return;
                }

                if (result.IsCompleted)
                {
                    if (framing == RequestBodyFraming.Chunked)
                    {
                        await SendAllAsync(socket, s_lastChunk, token);
                        connection.BodySent = true;
                    }

                    return;
                }
            }
        }
        catch (Exception)
        {
            // The backend stopped reading (it answered early and closed), or the stream was reset: nothing to report here.
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
    }

    private static async ValueTask StopPumpAsync(Http1Connection connection, TunnelStream stream)
    {
        connection.StopPump = true;
        try
        {
            stream.Input.CancelPendingRead();
        }
        catch (Exception)
        {
            // The stream's input already ended.
        }

        connection.Cancel();
        connection.Pumping = false;
        await connection.Pump;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (!data.IsEmpty)
        {
            var sent = await socket.SendAsync(data, SocketFlags.None, cancellationToken);
            data = data.Slice(sent);
        }
    }

    /// <summary>Sends a body slice: one write when it is one segment or fits the scratch buffer.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendSequenceAsync(Socket socket, ReadOnlySequence<byte> data, byte[] scratch, CancellationToken cancellationToken)
    {
        if (data.IsSingleSegment)
        {
            await SendAllAsync(socket, data.First, cancellationToken);
        }
        else if (data.Length <= scratch.Length)
        {
            data.CopyTo(scratch);
            await SendAllAsync(socket, scratch.AsMemory(0, (int)data.Length), cancellationToken);
        }
        else
        {
            foreach (var segment in data)
            {
                await SendAllAsync(socket, segment, cancellationToken);
            }
        }
    }

    /// <summary>Sends <paramref name="data"/> as one chunk, built in the scratch buffer a piece at a time.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendChunkAsync(Socket socket, ReadOnlySequence<byte> data, byte[] scratch, CancellationToken cancellationToken)
    {
        var position = WriteChunkHeader(scratch, checked((int)data.Length));
        while (true)
        {
            var take = (int)Math.Min(data.Length, scratch.Length - position);
            data.Slice(0, take).CopyTo(scratch.AsSpan(position));
            position += take;
            data = data.Slice(take);
            if (data.IsEmpty && scratch.Length - position >= 2)
            {
                scratch[position++] = (byte)'\r';
                scratch[position++] = (byte)'\n';
                await SendAllAsync(socket, scratch.AsMemory(0, position), cancellationToken);
                return;
            }

            await SendAllAsync(socket, scratch.AsMemory(0, position), cancellationToken);
            position = 0;
            if (data.IsEmpty)
            {
                await SendAllAsync(socket, s_crlf, cancellationToken);
                return;
            }
        }
    }
}
