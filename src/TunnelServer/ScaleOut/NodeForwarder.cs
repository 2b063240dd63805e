using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Server.ProxyEntry;

namespace Tunnel2.Server.ScaleOut;

internal enum ForwardOutcome
{
    /// <summary>The owner's response was relayed (whatever its status).</summary>
    Completed,

    /// <summary>No connection to the node could be made: nothing was sent, another node may be tried.</summary>
    Unreachable,

    /// <summary>The node answered that it cannot serve this session, before the request body was touched: another node may be tried.</summary>
    Refused,

    /// <summary>Failed; <see cref="ForwardResult.Error"/> says how, and the caller reports it.</summary>
    Failed,
}

internal readonly record struct ForwardResult(ForwardOutcome Outcome, ProxyError Error = ProxyError.None, Exception? Exception = null);

/// <summary>
/// Sends a public request to the node that holds its session and relays the response (docs/adr/0007-scale-out-directory.md):
/// pooled HTTP/1.1 keep-alive connections (Kestrel serves cleartext HTTP/2 only on HTTP/2-only endpoints), the raw
/// target byte for byte, end-to-end fields as received, hop-by-hop ones removed, both bodies streamed. The request
/// carries the node secret and the public client's address, so the owner sets X-Forwarded-For as if it were the entry.
/// </summary>
internal sealed class NodeForwarder : IDisposable
{
    private static readonly UriCreationOptions s_rawUri = new() { DangerousDisablePathAndQueryCanonicalization = true };

    private readonly HttpMessageInvoker _invoker;
    private readonly NodeHeaders _nodeHeaders;
    private readonly TimeSpan _headersTimeout;
    private readonly long? _maxRequestBodySize;

    public NodeForwarder(IOptions<TunnelServerOptions> options, NodeHeaders nodeHeaders)
    {
        var o = options.Value;
        _nodeHeaders = nodeHeaders;

        // One second more than the owner's own backstop, so the owner's 504 (with its reason) normally wins the race.
        _headersTimeout = o.ResponseHeadersTimeout + TimeSpan.FromSeconds(1);
        _maxRequestBodySize = o.MaxRequestBodySize;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = o.Directory.ForwardConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(60),
            MaxConnectionsPerServer = int.MaxValue,

            // Nothing may add fields the public client did not send (traceparent and friends).
            ActivityHeadersPropagator = null,
            RequestHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
            ResponseHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
            ConnectCallback = ConnectAsync,
        });
    }

    /// <summary>Forwards the request in <paramref name="context"/> to <paramref name="node"/>.</summary>
    /// <param name="bodyStarted">Set once the request body started to go out: from then on the request is never sent to another node.</param>
    public async Task<ForwardResult> ForwardAsync(HttpContext context, string node, StrongBox<bool> bodyStarted)
    {
        var request = context.Request;
        var rawTarget = PathForm(context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget);
        using var message = new HttpRequestMessage(HttpMethod.Parse(request.Method), new Uri(node + rawTarget, in s_rawUri))
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        var bodyDetection = context.Features.Get<IHttpRequestBodyDetectionFeature>();
        var hasBody = bodyDetection?.CanHaveBody ?? request.ContentLength > 0;
        if (hasBody)
        {
            var sizeFeature = context.Features.Get<IHttpMaxRequestBodySizeFeature>();
            if (sizeFeature is { IsReadOnly: false })
            {
                sizeFeature.MaxRequestBodySize = _maxRequestBodySize;
            }

            message.Content = new RequestBodyContent(request.BodyReader, bodyStarted);
        }

        CopyRequestHeaders(request, message);
        message.Headers.TryAddWithoutValidation(NodeHeaders.Node, _nodeHeaders.Secret);
        message.Headers.TryAddWithoutValidation(NodeHeaders.Forwarded, NodeHeaders.Describe(context));

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        timeout.CancelAfter(_headersTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(message, timeout.Token);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return new ForwardResult(ForwardOutcome.Failed, ProxyError.ClientAborted);
        }
        catch (OperationCanceledException ex)
        {
            return new ForwardResult(ForwardOutcome.Failed, ProxyError.ResponseHeadersTimeout, ex);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ConnectionError && !bodyStarted.Value)
        {
            return new ForwardResult(ForwardOutcome.Unreachable, ProxyError.NodeUnreachable, ex);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            // A public client whose body broke is to blame before the node (YARP's rule).
            return new ForwardResult(ForwardOutcome.Failed, ex.InnerException is RequestBodyException ? ProxyError.RequestBodyClient : ProxyError.NodeFailed, ex.InnerException ?? ex);
        }

        using (response)
        {
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable && response.Headers.Contains(NodeHeaders.Refused) && !bodyStarted.Value)
            {
                return new ForwardResult(ForwardOutcome.Refused, ProxyError.NodeUnreachable);
            }

            return await RelayResponseAsync(context, response);
        }
    }

    public void Dispose() => _invoker.Dispose();

    private static async Task<ForwardResult> RelayResponseAsync(HttpContext context, HttpResponseMessage response)
    {
        var target = context.Response;
        target.StatusCode = (int)response.StatusCode;
        CopyResponseHeaders(response.Headers.NonValidated, target.Headers);
        CopyResponseHeaders(response.Content.Headers.NonValidated, target.Headers);

        var output = target.BodyWriter;
        Stream body;
        try
        {
            body = await response.Content.ReadAsStreamAsync(context.RequestAborted);
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            return new ForwardResult(ForwardOutcome.Failed, context.RequestAborted.IsCancellationRequested ? ProxyError.ClientAborted : ProxyError.NodeFailed, ex);
        }

        await using (body)
        {
            while (true)
            {
                int read;
                var memory = output.GetMemory(16 * 1024);
                try
                {
                    read = await body.ReadAsync(memory, context.RequestAborted);
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
                {
                    return new ForwardResult(ForwardOutcome.Failed, context.RequestAborted.IsCancellationRequested ? ProxyError.ClientAborted : ProxyError.ResponseBodyTunnel, ex);
                }

                if (read == 0)
                {
                    break;
                }

                output.Advance(read);

                // Flush every read so streamed responses (SSE, chunked progress) stay live across the extra hop too.
                var flush = await output.FlushAsync(context.RequestAborted);
                if (flush.IsCanceled || flush.IsCompleted)
                {
                    return new ForwardResult(ForwardOutcome.Failed, ProxyError.ClientAborted);
                }
            }
        }

        if (response.TrailingHeaders.NonValidated.Count > 0 && context.Response.SupportsTrailers())
        {
            foreach (var (name, values) in response.TrailingHeaders.NonValidated)
            {
                foreach (var value in values)
                {
                    context.Response.AppendTrailer(name, value);
                }
            }
        }

        return new ForwardResult(ForwardOutcome.Completed);
    }

    /// <summary>End-to-end request fields as received (Host too, so the owner derives X-Forwarded-Host from it).</summary>
    private static void CopyRequestHeaders(HttpRequest request, HttpRequestMessage message)
    {
        var headers = request.Headers;
        var connectionValue = ProxyEntry.RequestHeadRecording.ConnectionField(request.HttpContext);
        foreach (var header in headers)
        {
            var name = header.Key;
            if (HopByHopHeaders.IsHopByHop(name) || NodeHeaders.IsInternal(name)
                || (connectionValue is not null && HopByHopHeaders.IsNominated(connectionValue, name)))
            {
                continue;
            }

            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase))
            {
                message.Headers.Host = header.Value.ToString();
                continue;
            }

            if (!message.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)header.Value))
            {
                message.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)header.Value);
            }
        }
    }

    private static void CopyResponseHeaders(System.Net.Http.Headers.HttpHeadersNonValidated source, IHeaderDictionary target)
    {
        foreach (var (name, values) in source)
        {
            if (HopByHopHeaders.IsHopByHop(name) || name.Equals(NodeHeaders.Refused, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (values.Count == 1)
            {
                foreach (var value in values)
                {
                    target.Append(name, value);
                }
            }
            else
            {
                target.Append(name, values.ToArray());
            }
        }
    }

    /// <summary>The origin-form of a raw target: absolute-form targets lose their scheme and authority (reliability.md D22).</summary>
    private static string PathForm(string rawTarget)
    {
        if (rawTarget.StartsWith('/'))
        {
            return rawTarget;
        }

        var scheme = rawTarget.IndexOf("://", StringComparison.Ordinal);
        var slash = scheme < 0 ? -1 : rawTarget.IndexOf('/', scheme + 3);
        return slash < 0 ? "/" : rawTarget[slash..];
    }

    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Streams the public request body to the node; marks when it started, after which no other node may be tried.</summary>
    private sealed class RequestBodyContent(System.IO.Pipelines.PipeReader reader, StrongBox<bool> started) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            started.Value = true;
            while (true)
            {
                System.IO.Pipelines.ReadResult result;
                try
                {
                    result = await reader.ReadAsync(cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new RequestBodyException(ex);
                }

                foreach (var segment in result.Buffer)
                {
                    await stream.WriteAsync(segment, cancellationToken);
                }

                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context)
            => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>Reading the public client's body failed: its fault, not the node's.</summary>
    private sealed class RequestBodyException(Exception inner) : IOException("The public client's request body failed.", inner);
}
