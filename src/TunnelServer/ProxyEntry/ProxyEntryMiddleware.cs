using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Server.Hosting;
using Tunnel2.Server.Observability;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Sessions;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>
/// The public side: takes <c>/session/{id}/{rest}</c>, sends the request over an uplink of that session as one
/// stream, and streams the response back (docs/architecture.md, request path). Everything else goes to the next
/// middleware.
/// </summary>
/// <remarks>
/// Errors are decided and reported in one place, <see cref="ReportError"/>: before the response starts they become
/// a status code (YARP's mapping); after it started the response is aborted so a truncated body never looks complete.
/// No exception escapes to Kestrel from the forwarding path.
/// With scale-out on, a request for a session this node does not hold (or cannot serve now) goes to a node that does
/// (<see cref="NodeForwarder"/>, docs/adr/0007-scale-out-directory.md); while the node drains, responses carry
/// <c>Connection: close</c> so keep-alive clients move on.
/// </remarks>
internal sealed class ProxyEntryMiddleware
{
    private static readonly Task<Exception?> s_noBody = Task.FromResult<Exception?>(null);

    // How often a request waiting for a session that moves between nodes looks again (local uplinks wake it at once).
    private static readonly TimeSpan s_directoryPollInterval = TimeSpan.FromMilliseconds(250);

    private readonly RequestDelegate _next;
    private readonly SessionRegistry _registry;
    private readonly TunnelServerOptions _options;
    private readonly ILogger _logger;
    private readonly string _retryAfter;
    private readonly TimeoutTokenSourcePool _timeouts;
    private readonly EntryRateLimiter _rateLimiter;
    private readonly TimeProvider _time;
    private readonly ServerMetrics _metrics;
    private readonly DrainState _drain;
    private readonly SessionDirectory _directory;
    private readonly NodeForwarder _forwarder;
    private readonly NodeHeaders _nodeHeaders;

    public ProxyEntryMiddleware(
        RequestDelegate next,
        SessionRegistry registry,
        IOptions<TunnelServerOptions> options,
        EntryRateLimiter rateLimiter,
        ServerMetrics metrics,
        DrainState drain,
        SessionDirectory directory,
        NodeForwarder forwarder,
        NodeHeaders nodeHeaders,
        TimeProvider time,
        ILogger<ProxyEntryMiddleware> logger)
    {
        _drain = drain;
        _directory = directory;
        _forwarder = forwarder;
        _nodeHeaders = nodeHeaders;
        _next = next;
        _registry = registry;
        _options = options.Value;
        _logger = logger;
        _retryAfter = _options.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _timeouts = new TimeoutTokenSourcePool(time);
        _rateLimiter = rateLimiter;
        _metrics = metrics;
        _time = time;
    }

    public Task InvokeAsync(HttpContext context)
    {
        RequestHeadRecording.EndHead(context);
        var rawTarget = context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget;
        var status = ProxyTarget.TryParse(rawTarget, out var target);
        switch (status)
        {
            case ProxyTargetStatus.NotTunnel:
                return _next(context);
            case ProxyTargetStatus.BadSessionId:
                return WriteNotFoundAsync(context);
            case ProxyTargetStatus.DotSegments:
                return WriteErrorAsync(context, ProxyError.BadRequestTarget, session: null, exception: null);
        }

        var method = context.Request.Method;
        if (HttpMethods.IsConnect(method))
        {
            // Never a proxy for arbitrary destinations (reliability.md D22); raw TCP goes through service ports.
            return WriteErrorAsync(context, ProxyError.MethodNotAllowed, session: null, exception: null);
        }

        if (method.Length == 5 && !_options.AllowTrace && IsTraceOrTrack(method))
        {
            // A backend that echoes TRACE would hand the caller's cookies and Authorization back (Cross-Site Tracing,
            // reliability.md D22, docs/adr/0009-host-filtering-and-trace.md). Other methods pay one length comparison.
            return WriteErrorAsync(context, ProxyError.TraceNotAllowed, session: null, exception: null);
        }

        if (_drain.IsDraining)
        {
            CloseAfterResponse(context);
        }

        if (!_registry.TryGetSession(target.SessionId, out var session))
        {
            return _directory.Enabled ? ProxyViaDirectoryAsync(context, target.SessionId, retry: false) : WriteNotFoundAsync(context);
        }

        if (!_rateLimiter.TryAcquireSession(session.Id))
        {
            return WriteErrorAsync(context, ProxyError.RateLimited, session, exception: null);
        }

        if (!session.TryOpenStream(out var stream))
        {
            return _directory.Enabled ? ProxyViaDirectoryAsync(context, session.Id, retry: false) : WaitForUplinkAndProxyAsync(context, session, retry: false);
        }

        return SendHeadAndProxyAsync(context, session, stream, target, retry: false);
    }

    private Task SendHeadAndProxyAsync(HttpContext context, Session session, TunnelStream stream, ProxyTarget target, bool retry)
    {
        if (!TrySendRequestHead(context, stream, target, out var hasBody))
        {
            stream.Reset(TunnelErrorCode.Cancel);
            return WriteErrorAsync(context, ProxyError.RequestHeadTooLarge, session, exception: null);
        }

        return ProxyAsync(context, session, stream, hasBody, retry);
    }

    /// <summary>
    /// No uplink can take the request now (the client is reconnecting, or its uplinks are draining): wait briefly for
    /// one to join (reliability.md B9) before answering 503.
    /// </summary>
    private async Task WaitForUplinkAndProxyAsync(HttpContext context, Session session, bool retry)
    {
        if (_drain.IsDraining)
        {
            // No uplink will join a draining node, and no other node is known: the client should come back elsewhere.
            await WriteErrorAsync(context, ProxyError.Draining, session, exception: null);
            return;
        }

        _drain.Enter();
        TunnelStream? stream;
        try
        {
            stream = await session.WaitToOpenStreamAsync(_options.UplinkWaitTimeout, _time, context.RequestAborted);
        }
        finally
        {
            _drain.Exit();
        }

        if (stream is null)
        {
            var error = context.RequestAborted.IsCancellationRequested ? ProxyError.ClientAborted
                : _drain.IsDraining ? ProxyError.Draining
                : session.UplinkCount == 0 ? ProxyError.NoUplink
                : ProxyError.ClientRefused;
            await WriteErrorAsync(context, error, session, exception: null);
            return;
        }

        // The target was parsed before the wait; a ref struct cannot cross it, so parse the raw target again.
        ProxyTarget.TryParse(context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget, out var target);
        await SendHeadAndProxyAsync(context, session, stream, target, retry);
    }

    /// <summary>
    /// Scale-out: this node cannot serve the session now (it does not hold it, its uplinks are reconnecting or draining).
    /// Forward to a node the directory names; failing that wait, up to <see cref="TunnelServerOptions.UplinkWaitTimeout"/>,
    /// for an uplink here or a holder elsewhere (a client moving between nodes). A request another node forwarded is
    /// never forwarded again: when it cannot be served here it is refused so that node may try another.
    /// </summary>
    private async Task ProxyViaDirectoryAsync(HttpContext context, Guid sessionId, bool retry)
    {
        _drain.Enter();
        try
        {
            await ProxyViaDirectoryCoreAsync(context, sessionId, retry);
        }
        finally
        {
            _drain.Exit();
        }
    }

    private async Task ProxyViaDirectoryCoreAsync(HttpContext context, Guid sessionId, bool retry)
    {
        var forwardedIn = _nodeHeaders.TryGetOrigin(context.Request, out _, out _);
        var upgrade = ForwardableUpgrade(context) is not null;
        var aborted = context.RequestAborted;
        var start = _time.GetTimestamp();
        var status = DirectoryStatus.Unknown;
        var bodyStarted = new StrongBox<bool>();
        List<string>? tried = null;
        Session? session;
        while (true)
        {
            if (_registry.TryGetSession(sessionId, out session) && session.TryOpenStream(out var stream))
            {
                await SendHeadAndProxyParsedAsync(context, session, stream, retry);
                return;
            }

            if (!forwardedIn && !_directory.Enabled)
            {
                break;
            }

            if (!forwardedIn)
            {
                var lookup = await _directory.LookupAsync(sessionId);
                status = lookup.Status == DirectoryStatus.Unavailable && status != DirectoryStatus.Unknown ? status : lookup.Status;
                if (upgrade && lookup.Nodes.Length > 0)
                {
                    await ReportError(context, ProxyError.UpgradeNotForwarded, session, exception: null, remote: session is null);
                    return;
                }

                foreach (var node in lookup.Nodes)
                {
                    if (tried?.Contains(node) == true)
                    {
                        continue;
                    }

                    var result = await _forwarder.ForwardAsync(context, node, bodyStarted);
                    _metrics.CountForward(result.Outcome);
                    if (result.Outcome == ForwardOutcome.Completed)
                    {
                        return;
                    }

                    if (result.Outcome == ForwardOutcome.Failed)
                    {
                        await ReportError(context, result.Error, session, result.Exception, remote: session is null);
                        return;
                    }

                    // Unreachable or refused before anything of the request went out: try the next holder.
                    (tried ??= []).Add(node);
                    _directory.Invalidate(sessionId);
                    if (result.Outcome == ForwardOutcome.Unreachable)
                    {
                        _directory.MarkUnreachable(node);
                        Log.NodeUnreachable(_logger, node, result.Exception?.Message ?? "refused");
                    }
                }
            }

            // Nobody served it now. Wait (bounded) only if an uplink may come: the session is known here or elsewhere.
            var remaining = _options.UplinkWaitTimeout - _time.GetElapsedTime(start);
            var mayCome = session is not null || tried is not null || status is DirectoryStatus.Live or DirectoryStatus.Idle;
            if (remaining <= TimeSpan.Zero || !mayCome || _drain.IsDraining || aborted.IsCancellationRequested)
            {
                break;
            }

            var slice = remaining < s_directoryPollInterval ? remaining : s_directoryPollInterval;
            if (session is not null)
            {
                var waited = await session.WaitToOpenStreamAsync(slice, _time, aborted);
                if (waited is not null)
                {
                    await SendHeadAndProxyParsedAsync(context, session, waited, retry);
                    return;
                }
            }
            else
            {
                try
                {
                    await Task.Delay(slice, _time, aborted);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        ProxyError error;
        if (aborted.IsCancellationRequested)
        {
            error = ProxyError.ClientAborted;
        }
        else if (forwardedIn)
        {
            error = ProxyError.NodeRefused;
        }
        else if (session is null && status == DirectoryStatus.Unknown && tried is null)
        {
            await WriteNotFoundAsync(context);
            return;
        }
        else if (_drain.IsDraining)
        {
            error = ProxyError.Draining;
        }
        else if (tried is not null)
        {
            error = ProxyError.NodeUnreachable;
        }
        else if (session is not null)
        {
            error = session.UplinkCount == 0 ? ProxyError.NoUplink : ProxyError.ClientRefused;
        }
        else
        {
            error = status == DirectoryStatus.Unavailable ? ProxyError.DirectoryUnavailable : ProxyError.NoUplink;
        }

        await ReportError(context, error, session, exception: null, remote: session is null);
    }

    private Task SendHeadAndProxyParsedAsync(HttpContext context, Session session, TunnelStream stream, bool retry)
    {
        // The target was parsed before an await; a ref struct cannot cross it, so parse the raw target again.
        ProxyTarget.TryParse(context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget, out var target);
        return SendHeadAndProxyAsync(context, session, stream, target, retry);
    }

    private static void CloseAfterResponse(HttpContext context)
    {
        var protocol = context.Request.Protocol;
        if (!HttpProtocol.IsHttp2(protocol) && !HttpProtocol.IsHttp3(protocol))
        {
            // HTTP/1.x keep-alive clients reconnect (through their load balancer) to a node that is not going away.
            context.Response.Headers.Connection = "close";
        }
    }

    private bool TrySendRequestHead(HttpContext context, TunnelStream stream, ProxyTarget target, out bool hasBody)
    {
        var request = context.Request;
        var bodyDetection = context.Features.Get<IHttpRequestBodyDetectionFeature>();
        hasBody = bodyDetection?.CanHaveBody ?? (request.ContentLength > 0);

        var maxBlock = stream.MaxHeaderBlockSize;
        var upgrade = ForwardableUpgrade(context);
        string? originFor = null, originProto = null;
        if (_nodeHeaders.Secret is not null && _nodeHeaders.TryGetOrigin(request, out originFor, out originProto))
        {
            _metrics.CountForwardedIn();
        }

        byte[] buffer;
        int length;
        for (var size = Math.Min(HeaderBlockWriter.TypicalBlockSize, maxBlock); ; size = maxBlock)
        {
            buffer = ArrayPool<byte>.Shared.Rent(size);
            var writer = new HeaderBlockWriter(buffer.AsSpan(0, size));
            writer.WriteRequestHead(request.Method, target.Target);
            if (RequestHeadEncoder.Write(ref writer, context, target.ForwardPrefix, upgrade, originFor, originProto))
            {
                length = writer.Length;
                break;
            }

            ArrayPool<byte>.Shared.Return(buffer);
            if (size == maxBlock)
            {
                return false;
            }
        }

        if (hasBody)
        {
            var sizeFeature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
            if (sizeFeature is { IsReadOnly: false })
            {
                sizeFeature.MaxRequestBodySize = _options.MaxRequestBodySize;
            }
        }

        // A refused head (connection closing meanwhile) surfaces as a stream error when the response is awaited.
        // An upgrade keeps the stream open: after a 101 the public client's bytes follow as DATA.
        stream.TrySendHeaders(buffer, length, endStream: !hasBody && upgrade is null);
        return true;
    }

    private async Task ProxyAsync(HttpContext context, Session session, TunnelStream stream, bool hasBody, bool retry)
    {
        using var abortRegistration = context.RequestAborted.UnsafeRegister(
            static state => ((TunnelStream)state!).Reset(TunnelErrorCode.Cancel, "The public client went away."),
            stream);

        using var bodyCancellation = hasBody ? new CancellationTokenSource() : null;
        var bodyTask = hasBody ? CopyRequestBodyAsync(context, stream, bodyCancellation!.Token) : s_noBody;

        var error = ProxyError.None;
        Exception? exception = null;
        var start = _time.GetTimestamp();
        try
        {
            // The wait for the response head is awaited here rather than in a method of its own: it nearly always
            // suspends, and each suspending async method costs a state machine box per request. What follows the head
            // mostly completes synchronously for small responses, so it costs none.
            var timeout = _timeouts.Rent(_options.ResponseHeadersTimeout);
            ReceivedHeaderBlock head = default;
            try
            {
                head = await stream.ReadHeadersAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested)
            {
                error = ProxyError.ResponseHeadersTimeout;
            }
            catch (TunnelStreamException ex)
            {
                error = context.RequestAborted.IsCancellationRequested ? ProxyError.ClientAborted : ProxyErrorMapping.FromResetCode(ex.ErrorCode);
            }
            finally
            {
                _timeouts.Return(timeout);
            }

            if (error == ProxyError.None)
            {
                error = await ForwardResponseAsync(context, stream, head, start);
            }
        }
        catch (Exception ex)
        {
            (error, exception) = (ProxyError.ResponseBodyTunnel, ex);
        }

        if (hasBody && !bodyTask.IsCompleted)
        {
            // The response is over (or failed) before the request body: stop reading it.
            bodyCancellation!.Cancel();
            if (error == ProxyError.None)
            {
                stream.Reset(TunnelErrorCode.NoError, "The response completed before the request body.");
            }
        }

        var bodyException = await bodyTask;
        if (error == ProxyError.None)
        {
            // An upgrade request the backend answered without switching still has our side open: end it.
            stream.Complete();
            _metrics.CountRequest(session, ProxyError.None);
            return;
        }

        // A stream the client refused unprocessed (its uplink was draining, or at its stream limit) is safe to send
        // again elsewhere, once, when no body went out (nginx's rule: never replay what the backend may have seen).
        if (!retry && !hasBody && !context.Response.HasStarted
            && stream.AbortReason is TunnelStreamException { ErrorCode: TunnelErrorCode.RefusedStream })
        {
            await (_directory.Enabled ? ProxyViaDirectoryAsync(context, session.Id, retry: true) : WaitForUplinkAndProxyAsync(context, session, retry: true));
            return;
        }

        // Blame the public client first (YARP's CVE-2023-33141 lesson): its bad body explains the uplink's reaction.
        if (bodyException is not null && !context.Response.HasStarted)
        {
            (error, exception) = (ProxyError.RequestBodyClient, bodyException);
        }

        stream.Reset(TunnelErrorCode.Cancel);
        await ReportError(context, error, session, exception ?? stream.AbortReason);
    }

    /// <returns>The error that ended the exchange, or <see cref="ProxyError.None"/>.</returns>
    // Pooled: one of these runs per proxied request.
    [System.Runtime.CompilerServices.AsyncMethodBuilder(typeof(System.Runtime.CompilerServices.PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ProxyError> ForwardResponseAsync(HttpContext context, TunnelStream stream, ReceivedHeaderBlock head, long start)
    {
        _metrics.ObserveResponseHead(_time.GetElapsedTime(start));
        string? headError;
        using (head)
        {
            var decoder = new ResponseHeadDecoder(context.Response);
            headError = HeaderBlockReader.Read(head.Span, ref decoder, _options.Limits.MaxHeaderListSize) ?? decoder.Error;
            if (decoder.BackendMicroseconds >= 0)
            {
                _metrics.ObserveBackend(TimeSpan.FromMicroseconds(decoder.BackendMicroseconds));
            }
        }

        var switching = context.Response.StatusCode == StatusCodes.Status101SwitchingProtocols;
        if (headError is null && switching && (ForwardableUpgrade(context) is null || head.EndStream))
        {
            // 101 to a request that asked for no upgrade (or with nothing to follow) is a backend bug (reliability.md C7).
            headError = "101 Switching Protocols without a matching upgrade request.";
        }

        if (headError is not null)
        {
            context.Response.Headers.Clear();
            context.Response.ContentLength = null;
            context.Response.StatusCode = StatusCodes.Status200OK;
            return ProxyError.InvalidResponse;
        }

        if (switching)
        {
            return await RelayUpgradedAsync(context, stream);
        }

        if (head.EndStream)
        {
            return ProxyError.None;
        }

        var input = stream.Input;
        var output = context.Response.BodyWriter;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                var buffer = result.Buffer;
                foreach (var segment in buffer)
                {
                    output.Write(segment.Span);
                }

                input.AdvanceTo(buffer.End);

                // Flush every read so streamed responses (SSE, chunked progress) stay live.
                var flush = await output.FlushAsync();
                if (flush.IsCanceled || flush.IsCompleted)
                {
                    return ProxyError.ClientAborted;
                }

                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (TunnelStreamException)
        {
            return context.RequestAborted.IsCancellationRequested ? ProxyError.ClientAborted : ProxyError.ResponseBodyTunnel;
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionAbortedException or ConnectionResetException or IOException)
        {
            return ProxyError.ClientAborted;
        }
        finally
        {
            await input.CompleteAsync();
        }

        if (stream.TryTakeTrailers(out var trailers))
        {
            using (trailers)
            {
                ApplyTrailers(context, trailers);
            }
        }

        return ProxyError.None;
    }

    /// <returns>The public client's error if its body could not be read, else null.</returns>
    private static async Task<Exception?> CopyRequestBodyAsync(HttpContext context, TunnelStream stream, CancellationToken cancellationToken)
    {
        var reader = context.Request.BodyReader;
        var maxChunk = stream.Connection.PeerSettings.MaxFrameSize;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await reader.ReadAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return null;
            }
            catch (Exception ex)
            {
                // Kestrel's BadHttpRequestException (400/408/413) or a dropped connection: the public client's fault.
                stream.Reset(TunnelErrorCode.RequestBodyInvalid, "The public client's request body failed.");
                return ex;
            }

            var buffer = result.Buffer;
            try
            {
                while (buffer.Length > maxChunk)
                {
                    await stream.WriteAsync(buffer.Slice(0, maxChunk), endStream: false, cancellationToken);
                    buffer = buffer.Slice(maxChunk);
                }

                await stream.WriteAsync(buffer, endStream: result.IsCompleted, cancellationToken);
            }
            catch (Exception)
            {
                // The stream ended (reset, uplink lost, response done): the response side reports why.
                reader.AdvanceTo(result.Buffer.End);
                return null;
            }

            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    /// <summary>Sends the 101 to the public client and relays the upgraded connection (WebSocket) both ways.</summary>
    private static async Task<ProxyError> RelayUpgradedAsync(HttpContext context, TunnelStream stream)
    {
        Stream opaque;
        try
        {
            opaque = await context.Features.GetRequiredFeature<IHttpUpgradeFeature>().UpgradeAsync();
        }
        catch (Exception)
        {
            return ProxyError.ClientAborted;
        }

        await using (opaque)
        {
            if (!await OpaqueRelay.RunAsync(stream, opaque))
            {
                context.Abort();
            }
        }

        return ProxyError.None;
    }

    /// <summary>
    /// TRACE, or TRACK (IIS's TRACE). In any case: methods are case-sensitive, but servers that match them without case
    /// would still echo a <c>trace</c>.
    /// </summary>
    private static bool IsTraceOrTrack(string method)
        => HttpMethods.IsTrace(method) || string.Equals(method, "TRACK", StringComparison.OrdinalIgnoreCase);

    /// <summary>The Upgrade value to pass through for an upgradable HTTP/1.1 request, or null (never h2c).</summary>
    private static string? ForwardableUpgrade(HttpContext context)
    {
        if (context.Features.Get<IHttpUpgradeFeature>() is not { IsUpgradableRequest: true })
        {
            return null;
        }

        var upgrade = context.Request.Headers.Upgrade.ToString();
        return HopByHopHeaders.IsForwardableUpgrade(upgrade) ? upgrade : null;
    }

    private static void ApplyTrailers(HttpContext context, ReceivedHeaderBlock trailers)
    {
        var feature = context.Features.Get<IHttpResponseTrailersFeature>();
        if (feature is null || !context.Response.SupportsTrailers())
        {
            return;
        }

        var collector = new TrailerCollector(feature.Trailers);
        HeaderBlockReader.Read(trailers.Span, ref collector, int.MaxValue);
    }

    private Task WriteErrorAsync(HttpContext context, ProxyError error, Session? session, Exception? exception)
        => ReportError(context, error, session, exception);

    /// <summary>Unknown and malformed ids get the same 404; an address that keeps guessing gets 429 (reliability.md D24).</summary>
    private Task WriteNotFoundAsync(HttpContext context)
        => ReportError(
            context,
            _rateLimiter.TryAcquireNotFound(context.Connection.RemoteIpAddress) ? ProxyError.SessionNotFound : ProxyError.RateLimited,
            session: null,
            exception: null);

    /// <summary>The one place a failed exchange is reported: log once, then a status or an abort.</summary>
    /// <param name="remote">The request was for a session held by other nodes (counted under session "remote").</param>
    private Task ReportError(HttpContext context, ProxyError error, Session? session, Exception? exception, bool remote = false)
    {
        var response = context.Response;
        var sessionLabel = session?.RedactedId ?? "-";
        if (remote)
        {
            _metrics.CountRemoteRequest(error);
        }
        else
        {
            _metrics.CountRequest(session, error);
        }

        if (error == ProxyError.ClientAborted)
        {
            // Nobody is listening; a status would go nowhere.
            context.Abort();
            return Task.CompletedTask;
        }

        if (response.HasStarted)
        {
            Log.ProxyErrorAfterStart(_logger, context.Request.Method, sessionLabel, error, exception);
            context.Abort();
            return Task.CompletedTask;
        }

        var statusCode = error == ProxyError.RequestBodyClient && exception is Microsoft.AspNetCore.Http.BadHttpRequestException bad
            ? bad.StatusCode
            : ProxyErrorMapping.ToStatusCode(error);
        // Scanners probe unknown ids and TRACE on every host: those are counted, not logged.
        if (error is not (ProxyError.SessionNotFound or ProxyError.RateLimited or ProxyError.NodeRefused or ProxyError.TraceNotAllowed))
        {
            Log.ProxyError(_logger, context.Request.Method, sessionLabel, error, statusCode, exception);
        }

        response.Clear();
        response.StatusCode = statusCode;
        response.ContentType = "text/plain; charset=utf-8";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.CacheControl = "no-store";
        if (statusCode is StatusCodes.Status503ServiceUnavailable or StatusCodes.Status429TooManyRequests)
        {
            response.Headers.RetryAfter = _retryAfter;
        }

        if (error == ProxyError.NodeRefused)
        {
            response.Headers[NodeHeaders.Refused] = "1";
        }

        if (_drain.IsDraining)
        {
            CloseAfterResponse(context);
        }

        return response.WriteAsync(ProxyErrorMapping.ToMessage(error) + "\n");
    }

    private readonly struct TrailerCollector(IHeaderDictionary trailers) : IHeaderBlockHandler
    {
        public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        {
        }

        public void OnResponseHead(int statusCode)
        {
        }

        public void OnTrailersHead()
        {
        }

        public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            var nameString = staticIndex != 0 ? StaticTable.GetName(staticIndex)! : System.Text.Encoding.Latin1.GetString(name);
            trailers.Append(nameString, System.Text.Encoding.Latin1.GetString(value));
        }
    }
}
