using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.Extensions.Options;
using Tunnel2.Client.Forwarding.Http1;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Forwarding;

/// <summary>
/// Forwards each stream the server opens to a backend: at most <see cref="TunnelClientOptions.MaxConcurrentRequests"/>
/// at once (a <see cref="SemaphoreSlim"/>), up to <see cref="TunnelClientOptions.MaxQueuedRequests"/> more waiting,
/// beyond that the stream is refused (503 at the entry). Plain-http requests take the built-in HTTP/1.1 hop
/// (<see cref="Http1BackendHop"/>) unless <see cref="TunnelClientOptions.BackendHttpClient"/> says otherwise; the rest
/// one shared <see cref="SocketsHttpHandler"/> configured as YARP's forwarder client; bodies streamed both ways in
/// pooled buffers.
/// </summary>
internal sealed class BackendForwarder : ITunnelStreamHandler, IDisposable
{
    private static readonly UriCreationOptions s_uriOptions = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private readonly TunnelClientOptions _options;
    private readonly BackendRoutes _routes;
    private readonly TcpForwarder _tcp;
    private readonly ClientMetrics _metrics;
    private readonly ILogger _logger;
    private readonly HttpMessageInvoker _invoker;
    private readonly Http1BackendHop? _http1;
    private readonly SemaphoreSlim _concurrency;
    private readonly int _maxAdmitted;
    private int _admitted;

    public BackendForwarder(IOptions<TunnelClientOptions> options, BackendRoutes routes, TcpForwarder tcp, ClientMetrics metrics, ILogger<BackendForwarder> logger, TimeProvider? time = null)
    {
        _metrics = metrics;
        _tcp = tcp;
        _options = options.Value;
        _routes = routes;
        _logger = logger;
        _concurrency = new SemaphoreSlim(_options.MaxConcurrentRequests, _options.MaxConcurrentRequests);
        _maxAdmitted = _options.MaxConcurrentRequests + _options.MaxQueuedRequests;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = _options.BackendConnectTimeout,
            ActivityHeadersPropagator = null,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),

            // Header bytes pass through unchanged, as on the server (docs/protocol.md §4.2).
            RequestHeaderEncodingSelector = static (_, _) => Encoding.Latin1,
            ResponseHeaderEncodingSelector = static (_, _) => Encoding.Latin1,
        });
        if (_options.BackendHttpClient == BackendHttpClient.Builtin)
        {
            _http1 = new Http1BackendHop(_options, routes, metrics, logger, time ?? TimeProvider.System);
        }
    }

    /// <summary>Requests admitted and not finished: running plus queued.</summary>
    public int Admitted => Volatile.Read(ref _admitted);

    /// <summary>Requests waiting for a forwarding slot.</summary>
    public int QueueDepth => Math.Max(0, Admitted - (_options.MaxConcurrentRequests - _concurrency.CurrentCount));

    public void OnStreamOpened(TunnelStream stream)
    {
        var admitted = Interlocked.Increment(ref _admitted);
        if (admitted > _maxAdmitted)
        {
            Interlocked.Decrement(ref _admitted);
            Log.QueueFull(_logger, admitted - 1);
            _metrics.CountOutcome(TunnelErrorCode.ClientOverloaded);
            stream.Reset(TunnelErrorCode.ClientOverloaded, "The forwarding queue is full.");
            return;
        }

        // Off the read loop: decoding, routing and the backend call run on the thread pool.
        ThreadPool.UnsafeQueueUserWorkItem(new ForwardWorkItem(this, stream), preferLocal: false);
    }

    public void Dispose()
    {
        _http1?.Dispose();
        _invoker.Dispose();
        _concurrency.Dispose();
    }

    private async Task ForwardAsync(ForwardWorkItem item)
    {
        var stream = item.Stream;
        try
        {
            if (!_concurrency.Wait(0))
            {
                await _concurrency.WaitAsync(stream.Aborted);
            }

            item.TookSlot();
            await ForwardCoreAsync(item);
        }
        catch (Exception) when (stream.AbortReason is not null)
        {
            // The server reset the stream (public client gone) or the uplink dropped: nobody to answer.
        }
        catch (Exception ex)
        {
            Log.ForwardingError(_logger, ex);
            stream.Reset(TunnelErrorCode.InternalError, "Forwarding failed.");
        }
        finally
        {
            item.Leave();
        }
    }

    /// <summary>
    /// The built-in HTTP/1.1 hop when it serves the request, else HttpClient. Not async itself: when the head is
    /// already there (nearly always), the hop's own pooled method is the only state machine of the request.
    /// </summary>
    private ValueTask ForwardCoreAsync(ForwardWorkItem item)
    {
        var pending = item.Stream.ReadHeadersAsync();
        if (!pending.IsCompletedSuccessfully)
        {
            return ForwardAfterHeadAsync(item, pending);
        }

        var head = pending.Result;
        return TryStartHttp1(item.Stream, head, out var forwarding) ? forwarding : ForwardWithHttpClientAsync(item, head);
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ForwardAfterHeadAsync(ForwardWorkItem item, ValueTask<ReceivedHeaderBlock> pending)
    {
        var head = await pending;
        if (TryStartHttp1(item.Stream, head, out var forwarding))
        {
            await forwarding;
            return;
        }

        await ForwardWithHttpClientAsync(item, head);
    }

    /// <summary>Starts the built-in hop for <paramref name="head"/>; false (the head untouched) when HttpClient must serve it.</summary>
    private bool TryStartHttp1(TunnelStream stream, ReceivedHeaderBlock head, out ValueTask forwarding)
    {
        forwarding = default;
        if (_http1 is null)
        {
            return false;
        }

        Http1PrepareResult prepared;
        Http1Request request;
        string? error;
        try
        {
            prepared = _http1.Prepare(stream, head, out request, out error);
        }
        catch
        {
            head.Dispose();
            throw;
        }

        if (prepared == Http1PrepareResult.NeedsHttpClient)
        {
            return false;
        }

        head.Dispose();
        if (prepared == Http1PrepareResult.Invalid)
        {
            Log.BadRequestHead(_logger, error ?? "no request head");
            stream.Reset(TunnelErrorCode.RequestInvalid, error);
            return true;
        }

        forwarding = _http1.ForwardAsync(stream, request);
        return true;
    }

    // Pooled: one of these (and one body copy) runs per request forwarded with HttpClient.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ForwardWithHttpClientAsync(ForwardWorkItem item, ReceivedHeaderBlock head)
    {
        var stream = item.Stream;
        var hasBody = !head.EndStream;
        using var request = new HttpRequestMessage { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower };
        if (hasBody)
        {
            request.Content = new TunnelRequestContent(stream, length: null);
        }

        var decoder = new RequestHeadDecoder(request, hasBody);
        string? error;
        using (head)
        {
            error = HeaderBlockReader.Read(head.Span, ref decoder, _options.Limits.MaxHeaderListSize) ?? decoder.Error;
        }

        if (error is not null || decoder.Target is null)
        {
            Log.BadRequestHead(_logger, error ?? "no request head");
            stream.Reset(TunnelErrorCode.RequestInvalid, error);
            return;
        }

        if (request.Method == HttpMethod.Connect)
        {
            request.Content?.Dispose();
            await _tcp.ForwardAsync(stream, decoder.Target[1..], item.Leave);
            return;
        }

        if (decoder.ContentLength is { } contentLength && request.Content is not null)
        {
            request.Content.Headers.ContentLength = contentLength;
        }

        var backendUrl = _routes.Resolve(decoder.Target);
        request.RequestUri = new Uri(backendUrl, in s_uriOptions);
        if (IsGrpc(request))
        {
            // gRPC needs HTTP/2 end to end (trailers, full duplex): h2 over TLS, or h2c with prior knowledge over http.
            request.Version = HttpVersion.Version20;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
            request.Headers.TryAddWithoutValidation("TE", "trailers");
        }

        var upgrade = decoder.Upgrade;
        if (upgrade is not null)
        {
            // The stream stays open for the bytes after a 101; they are not a request body.
            request.Content?.Dispose();
            request.Content = null;
            // HttpClient hands back the raw connection for a 101, as it does for its own WebSocket client.
            request.Version = HttpVersion.Version11;
            request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
            request.Headers.TryAddWithoutValidation("Upgrade", upgrade);
            request.Headers.Connection.Add("Upgrade");
        }

        HttpResponseMessage response;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted);
        timeout.CancelAfter(_options.BackendTimeout);
        var sent = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            response = await _invoker.SendAsync(request, timeout.Token);
        }
        catch (Exception) when (stream.AbortReason is not null)
        {
            return;
        }
        catch (OperationCanceledException ex)
        {
            Log.BackendFailed(_logger, request.Method.Method, request.RequestUri.GetLeftPart(UriPartial.Authority), TunnelErrorCode.BackendTimeout, ex);
            _metrics.CountOutcome(TunnelErrorCode.BackendTimeout);
            stream.Reset(TunnelErrorCode.BackendTimeout, "The backend did not answer in time.");
            return;
        }
        catch (HttpRequestException ex)
        {
            var code = Classify(ex);
            Log.BackendFailed(_logger, request.Method.Method, request.RequestUri.GetLeftPart(UriPartial.Authority), code, ex);
            _metrics.CountOutcome(code);
            stream.Reset(code, ex.Message);
            return;
        }

        using (response)
        {
            timeout.CancelAfter(Timeout.InfiniteTimeSpan);
            if (response.StatusCode == HttpStatusCode.SwitchingProtocols)
            {
                await RelayUpgradedAsync(item, request, response, upgrade);
                return;
            }

            if (HasConflictingContentLengths(response))
            {
                // RFC 9112 §6.3: an unrecoverable framing error; never forward a body whose length is unknown.
                _metrics.CountOutcome(TunnelErrorCode.BackendInvalidResponse);
                stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend sent conflicting Content-Length values.");
                return;
            }

            var backendTime = System.Diagnostics.Stopwatch.GetElapsedTime(sent);
            _metrics.CountOutcome(TunnelErrorCode.NoError);
            _metrics.ObserveBackend(backendTime);
            if (!TrySendResponseHead(stream, request, response, backendTime, out var endStream))
            {
                stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend's response head is too large for the tunnel.");
                return;
            }

            if (!endStream)
            {
                await CopyResponseBodyAsync(stream, request, response);
            }
        }

        await stream.Input.CompleteAsync();
    }

    /// <summary>After the backend's 101: the head goes back with its Upgrade, then bytes flow both ways until either side ends.</summary>
    private async Task RelayUpgradedAsync(ForwardWorkItem item, HttpRequestMessage request, HttpResponseMessage response, string? upgrade)
    {
        var stream = item.Stream;
        if (upgrade is null)
        {
            // 101 to a request that asked for no upgrade: never switch (reliability.md C7).
            stream.Reset(TunnelErrorCode.BackendInvalidResponse, "101 Switching Protocols to a request that asked for no upgrade.");
            return;
        }

        if (!TrySendResponseHead(stream, request, response, backendTime: null, out _))
        {
            stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend's 101 head is too large for the tunnel.");
            return;
        }

        var connection = await response.Content.ReadAsStreamAsync(stream.Aborted);

        // Now an opaque stream that may live for hours: it must not hold a request slot (MaxConcurrentRequests) or a
        // queue place, or a few open WebSockets would starve every plain request. The server's per-session stream cap
        // bounds these instead.
        item.Leave();
        await using (connection)
        {
            if (!await OpaqueRelay.RunAsync(stream, connection))
            {
                Log.BackendFailedAfterStart(_logger, request.Method.Method, request.RequestUri!.GetLeftPart(UriPartial.Authority), exception: null);
            }
        }
    }

    private static bool TrySendResponseHead(TunnelStream stream, HttpRequestMessage request, HttpResponseMessage response, TimeSpan? backendTime, out bool endStream)
    {
        var status = (int)response.StatusCode;
        var contentHeaders = response.Content.Headers;
        endStream = request.Method == HttpMethod.Head
            || status is StatusCodes.NoContent or StatusCodes.NotModified
            || contentHeaders.ContentLength == 0;

        var maxBlock = stream.MaxHeaderBlockSize;
        for (var size = Math.Min(HeaderBlockWriter.TypicalBlockSize, maxBlock); ; size = maxBlock)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            var length = WriteResponseHead(buffer.AsSpan(0, size), status, response, backendTime);
            if (length >= 0)
            {
                stream.TrySendHeaders(buffer, length, endStream && status != 101);
                return true;
            }

            ArrayPool<byte>.Shared.Return(buffer);
            if (size == maxBlock)
            {
                return false;
            }
        }
    }

    /// <returns>The head's length, or -1 when it does not fit <paramref name="destination"/>.</returns>
    private static int WriteResponseHead(Span<byte> destination, int status, HttpResponseMessage response, TimeSpan? backendTime)
    {
        var writer = new HeaderBlockWriter(destination);
        writer.WriteResponseHead(status);
        var connection = response.Headers.NonValidated.TryGetValues("Connection", out var values) ? values.ToString() : null;
        if (!WriteFields(ref writer, response.Headers.NonValidated, connection) || !WriteFields(ref writer, response.Content.Headers.NonValidated, connection))
        {
            return -1;
        }

        if (status == 101 && response.Headers.NonValidated.TryGetValues("Upgrade", out var upgrade))
        {
            // Hop-by-hop, so skipped above; a switch needs it end to end.
            writer.WriteField("Upgrade", upgrade.ToString());
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

    private static bool WriteFields(ref HeaderBlockWriter writer, HttpHeadersNonValidated headers, string? connection)
    {
        foreach (var header in headers)
        {
            var name = header.Key;
            if (HopByHopHeaders.IsHopByHop(name) || (connection is not null && HopByHopHeaders.IsNominated(connection, name)))
            {
                continue;
            }

            foreach (var value in header.Value)
            {
                if (writer.WriteField(name, value) == HeaderFieldResult.Overflow)
                {
                    return false;
                }
            }
        }

        return true;
    }

    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask CopyResponseBodyAsync(TunnelStream stream, HttpRequestMessage request, HttpResponseMessage response)
    {
        var remaining = response.Content.Headers.ContentLength ?? -1;
        var frameSize = stream.Connection.PeerSettings.MaxFrameSize;

        // Size reads to the body: the pool's small buckets keep up under concurrency, its 64 KiB bucket does not.
        const int DefaultReadSize = 16 * 1024;
        var aborted = stream.Aborted;
        Stream body;
        try
        {
            body = await response.Content.ReadAsStreamAsync(aborted);
        }
        catch (Exception ex) when (stream.AbortReason is null)
        {
            FailAfterStart(stream, request, ex);
            return;
        }

        while (true)
        {
            var readSize = remaining > 0 ? (int)Math.Min(remaining, frameSize) : Math.Min(DefaultReadSize, frameSize);
            var buffer = ArrayPool<byte>.Shared.Rent(readSize);
            int read;
            try
            {
                read = await body.ReadAsync(buffer.AsMemory(0, readSize), aborted);
            }
            catch (Exception ex)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                if (stream.AbortReason is null)
                {
                    FailAfterStart(stream, request, ex);
                }

                return;
            }

            if (read == 0)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                if (remaining > 0)
                {
                    FailAfterStart(stream, request, new HttpRequestException("The backend's body ended before its Content-Length."));
                    return;
                }

                if (!TrySendTrailers(stream, response))
                {
                    stream.Complete();
                }

                return;
            }

            if (remaining > 0)
            {
                remaining -= read;
            }

            // With a known length, END_STREAM rides on the last DATA frame instead of an extra empty frame.
            var last = remaining == 0;
            await stream.SendDataAsync(buffer, read, endStream: last, aborted);
            if (last)
            {
                return;
            }
        }
    }

    /// <summary>Ends the stream with the backend's trailers (gRPC status), if it sent any.</summary>
    private static bool TrySendTrailers(TunnelStream stream, HttpResponseMessage response)
    {
        if (!response.TrailingHeaders.NonValidated.GetEnumerator().MoveNext())
        {
            return false;
        }

        var maxBlock = stream.MaxHeaderBlockSize;
        var buffer = ArrayPool<byte>.Shared.Rent(maxBlock);
        var writer = new HeaderBlockWriter(buffer.AsSpan(0, maxBlock));
        writer.WriteTrailersHead();
        if (!WriteFields(ref writer, response.TrailingHeaders.NonValidated, connection: null))
        {
            ArrayPool<byte>.Shared.Return(buffer);
            stream.Reset(TunnelErrorCode.BackendInvalidResponse, "The backend's trailers are too large for the tunnel.");
            return true;
        }

        stream.TrySendHeaders(buffer, writer.Length, endStream: true);
        return true;
    }

    private static bool HasConflictingContentLengths(HttpResponseMessage response)
    {
        if (!response.Content.Headers.NonValidated.TryGetValues("Content-Length", out var values) || values.Count < 2)
        {
            return false;
        }

        string? first = null;
        foreach (var value in values)
        {
            foreach (var part in value.Split(','))
            {
                var trimmed = part.Trim();
                if (first is null)
                {
                    first = trimmed;
                }
                else if (trimmed != first)
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool IsGrpc(HttpRequestMessage request)
        => request.Content?.Headers.ContentType?.MediaType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;

    private void FailAfterStart(TunnelStream stream, HttpRequestMessage request, Exception exception)
    {
        Log.BackendFailedAfterStart(_logger, request.Method.Method, request.RequestUri!.GetLeftPart(UriPartial.Authority), exception);
        stream.Reset(TunnelErrorCode.BackendAborted, "The backend failed in the middle of its response.");
    }

    private static TunnelErrorCode Classify(HttpRequestException exception) => exception.HttpRequestError switch
    {
        HttpRequestError.InvalidResponse or HttpRequestError.ResponseEnded or HttpRequestError.ConfigurationLimitExceeded
            => TunnelErrorCode.BackendInvalidResponse,
        _ => TunnelErrorCode.BackendUnavailable,
    };

    private static class StatusCodes
    {
        public const int NoContent = 204;
        public const int NotModified = 304;
    }

    /// <summary>One admitted stream: its queue place and, once it runs, its forwarding slot.</summary>
    private sealed class ForwardWorkItem(BackendForwarder forwarder, TunnelStream stream) : IThreadPoolWorkItem
    {
        private int _holdsSlot;
        private int _admitted = 1;

        public TunnelStream Stream => stream;

        public void Execute() => _ = forwarder.ForwardAsync(this);

        public void TookSlot() => Volatile.Write(ref _holdsSlot, 1);

        /// <summary>Gives back the slot and the queue place, once: when the exchange ends, or earlier when it became an opaque stream.</summary>
        public void Leave()
        {
            if (Interlocked.Exchange(ref _holdsSlot, 0) == 1)
            {
                forwarder._concurrency.Release();
            }

            if (Interlocked.Exchange(ref _admitted, 0) == 1)
            {
                Interlocked.Decrement(ref forwarder._admitted);
            }
        }
    }
}
