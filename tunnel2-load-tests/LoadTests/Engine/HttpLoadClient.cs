using System.Buffers;

namespace Tunnel2.LoadTests.Engine;

/// <summary>Connection settings shared by every request of a run.</summary>
internal sealed record HttpLoadClientOptions
{
    /// <summary>Per-request deadline, from the start of the send to the last body byte. Default 10 s.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Connection cap per host:port. Requests beyond it wait in the client's pool; in an open model that wait is
    /// part of the measured latency, which is correct (performance.md §3.4). Default 1000.
    /// </summary>
    public int MaxConnectionsPerServer { get; init; } = 1000;
}

/// <summary>
/// Sends requests through ONE shared <see cref="SocketsHttpHandler"/> (a handler per request means TIME_WAIT churn
/// and port exhaustion, a plausible cause of the original report's 0.4 % failures; performance.md §3.4), reads and
/// discards the body, and classifies the outcome. Never throws for a request-level problem.
/// </summary>
internal sealed class HttpLoadClient : IDisposable
{
    private const int DiscardBufferSize = 16 * 1024;

    private readonly HttpMessageInvoker _invoker;
    private readonly TimeProvider _time;
    private readonly TimeSpan _timeout;
    private string? _firstError;

    public HttpLoadClient(HttpLoadClientOptions options, TimeProvider time, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        _timeout = options.RequestTimeout;
        _invoker = new HttpMessageInvoker(handler ?? CreateHandler(options.MaxConnectionsPerServer), disposeHandler: true);
    }

    /// <summary>The first unexpected (non-HTTP) exception seen, for the report's notes.</summary>
    public string? FirstError => Volatile.Read(ref _firstError);

    /// <summary>A handler configured like YARP's forwarder client: no proxy, redirects, cookies or decompression.</summary>
    public static SocketsHttpHandler CreateHandler(int maxConnectionsPerServer) => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        MaxConnectionsPerServer = maxConnectionsPerServer,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        // Connections stay for the whole run: reconnects would show up as latency that the tunnel did not cause.
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
    };

    /// <summary>Sends one request and reads the whole response; the outcome says how it went.</summary>
    public async Task<RequestOutcome> SendAsync(RequestTemplate template, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(_timeout, _time);
        using var link = cancellationToken.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), deadline);
        using var request = template.CreateRequest();
        try
        {
            using var response = await _invoker.SendAsync(request, deadline.Token);
            var bytes = await DrainAsync(response.Content, deadline.Token);
            return RequestOutcome.FromStatus((int)response.StatusCode, bytes);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return RequestOutcome.Failed(new FailureReason(FailureKind.Aborted));
        }
        catch (OperationCanceledException)
        {
            return RequestOutcome.Failed(new FailureReason(FailureKind.Timeout));
        }
        catch (HttpRequestException e)
        {
            return RequestOutcome.Failed(FailureReason.ForConnection(e.HttpRequestError));
        }
        catch (HttpIOException e)
        {
            return RequestOutcome.Failed(FailureReason.ForConnection(e.HttpRequestError));
        }
        catch (IOException)
        {
            return RequestOutcome.Failed(FailureReason.ForConnection(HttpRequestError.Unknown));
        }
        catch (Exception e)
        {
            Interlocked.CompareExchange(ref _firstError, $"{e.GetType().Name}: {e.Message}", null);
            return RequestOutcome.Failed(new FailureReason(FailureKind.Error));
        }
    }

    public void Dispose() => _invoker.Dispose();

    private static async Task<long> DrainAsync(HttpContent content, CancellationToken cancellationToken)
    {
        var stream = await content.ReadAsStreamAsync(cancellationToken);
        var buffer = ArrayPool<byte>.Shared.Rent(DiscardBufferSize);
        try
        {
            long total = 0;
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
            {
                total += read;
            }

            return total;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
