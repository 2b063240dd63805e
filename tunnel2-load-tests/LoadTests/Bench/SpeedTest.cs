using System.Buffers;
using System.Diagnostics;
using System.Net;

namespace Tunnel2.LoadTests.Bench;

/// <summary>Which way the bytes go.</summary>
internal enum SpeedTestMode
{
    /// <summary>GET the URL and read the body (e.g. TestBackend <c>/loadtest/bytes/{n}</c>).</summary>
    Download,

    /// <summary>Send a body of the payload size to the URL (e.g. TestBackend <c>/loadtest/info</c>, which reads and hashes it).</summary>
    Upload,
}

/// <summary>One speed test against one URL.</summary>
internal sealed record SpeedTestOptions
{
    /// <summary>Placeholder in the URL replaced by the payload size in bytes: <c>…/loadtest/bytes/{size}</c>.</summary>
    public const string SizePlaceholder = "{size}";

    public required string Label { get; init; }

    /// <summary>The URL, possibly with <see cref="SizePlaceholder"/>.</summary>
    public required string Url { get; init; }

    public SpeedTestMode Mode { get; init; } = SpeedTestMode.Download;

    /// <summary>Parallel transfers, each on its own connection, each looping request after request.</summary>
    public int Streams { get; init; } = 4;

    /// <summary>Bytes per request: the upload body, and the <c>{size}</c> of a download URL.</summary>
    public long PayloadSize { get; init; } = 64 * ByteSize.MiB;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Unrecorded time at the start (connections, JIT, TCP windows opening).</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upload method; TestBackend's <c>/loadtest/info</c> takes any, <c>/loadtest/echo</c> POST or PUT.</summary>
    public HttpMethod UploadMethod { get; init; } = HttpMethod.Put;

    public Uri ResolvedUri => new(Url.Replace(SizePlaceholder, PayloadSize.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
}

/// <summary>One second of a speed test.</summary>
/// <param name="Second">1-based, counted after the warm-up.</param>
/// <param name="Requests">Transfers that completed in this second.</param>
internal sealed record SpeedTestSecond(int Second, double Mbps, long Bytes, long Requests, long Failures);

/// <summary>A finished speed test.</summary>
/// <param name="MeanMbps">All measured bytes over the measured time (partial transfers included).</param>
/// <param name="MedianMbps">Median of the whole seconds.</param>
internal sealed record SpeedTestResult(
    string Label,
    string Url,
    string Mode,
    int Streams,
    long PayloadSize,
    double DurationSec,
    long Bytes,
    double MeanMbps,
    double MedianMbps,
    double MinMbps,
    double MaxMbps,
    long Requests,
    double RequestsPerSec,
    long Failures,
    string? FirstError,
    IReadOnlyList<SpeedTestSecond> Seconds);

/// <summary>
/// A multi-stream HTTP throughput test, in the style of a VPN speed test: N transfers in parallel for a fixed time,
/// bytes counted as they cross the socket (not per finished request), a line per second, and a summary. Transfers
/// still running at the end are cancelled; their bytes so far count.
/// </summary>
internal sealed class SpeedTestRunner
{
    private const int BlockSize = 64 * 1024;

    private readonly SpeedTestOptions _options;
    private readonly HttpMessageHandler? _handler;
    private long _bytes;
    private long _requests;
    private long _failures;
    private string? _firstError;

    /// <param name="handler">For tests; by default a <see cref="SocketsHttpHandler"/> with one connection per stream.</param>
    public SpeedTestRunner(SpeedTestOptions options, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Streams, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PayloadSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Duration, TimeSpan.Zero);
        _options = options;
        _handler = handler;
    }

    public async Task<SpeedTestResult> RunAsync(Action<SpeedTestSecond>? onSecond, CancellationToken cancellationToken)
    {
        using var invoker = new HttpMessageInvoker(_handler ?? new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            MaxConnectionsPerServer = _options.Streams,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        }, disposeHandler: _handler is null);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var uri = _options.ResolvedUri;
        var workers = new Task[_options.Streams];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(() => WorkerAsync(invoker, uri, stop.Token), CancellationToken.None);
        }

        var seconds = new List<SpeedTestSecond>();
        var measuredSec = 0.0;
        long measuredBytes = 0;
        long measuredRequests = 0;
        long measuredFailures = 0;
        try
        {
            await Task.Delay(_options.WarmUp, cancellationToken);
            var origin = Stopwatch.GetTimestamp();
            var last = (Time: origin, Bytes: Interlocked.Read(ref _bytes), Requests: Interlocked.Read(ref _requests), Failures: Interlocked.Read(ref _failures));
            var start = last;
            var end = origin + (long)(_options.Duration.TotalSeconds * Stopwatch.Frequency);
            for (var second = 1; ; second++)
            {
                var due = Math.Min(end, origin + (second * Stopwatch.Frequency));
                var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }

                var now = (Time: Stopwatch.GetTimestamp(), Bytes: Interlocked.Read(ref _bytes), Requests: Interlocked.Read(ref _requests), Failures: Interlocked.Read(ref _failures));
                var elapsed = Stopwatch.GetElapsedTime(last.Time, now.Time).TotalSeconds;

                // A last fragment shorter than half a second is too noisy to be a "second" of its own.
                if (elapsed >= 0.5 || due < end)
                {
                    var sample = new SpeedTestSecond(second, Mbps(now.Bytes - last.Bytes, elapsed), now.Bytes - last.Bytes, now.Requests - last.Requests, now.Failures - last.Failures);
                    seconds.Add(sample);
                    onSecond?.Invoke(sample);
                }

                last = now;
                if (due >= end)
                {
                    measuredSec = Stopwatch.GetElapsedTime(start.Time, now.Time).TotalSeconds;
                    measuredBytes = now.Bytes - start.Bytes;
                    measuredRequests = now.Requests - start.Requests;
                    measuredFailures = now.Failures - start.Failures;
                    break;
                }
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(workers);
        }

        var perSecond = seconds.Select(s => s.Mbps).Order().ToList();
        return new SpeedTestResult(
            _options.Label,
            uri.AbsoluteUri,
            _options.Mode == SpeedTestMode.Download ? "download" : "upload",
            _options.Streams,
            _options.PayloadSize,
            Math.Round(measuredSec, 3),
            measuredBytes,
            Math.Round(Mbps(measuredBytes, measuredSec), 1),
            Math.Round(Median(perSecond), 1),
            perSecond.Count > 0 ? Math.Round(perSecond[0], 1) : 0,
            perSecond.Count > 0 ? Math.Round(perSecond[^1], 1) : 0,
            measuredRequests,
            measuredSec > 0 ? Math.Round(measuredRequests / measuredSec, 2) : 0,
            measuredFailures,
            Volatile.Read(ref _firstError),
            seconds);
    }

    /// <summary>Megabits (10^6 bits) per second, as speed tests and iperf report them.</summary>
    public static double Mbps(long bytes, double seconds) => seconds > 0 ? bytes * 8 / seconds / 1e6 : 0;

    public static double Median(IReadOnlyList<double> sorted) => sorted.Count switch
    {
        0 => 0,
        var n when n % 2 == 1 => sorted[n / 2],
        var n => (sorted[(n / 2) - 1] + sorted[n / 2]) / 2,
    };

    private async Task WorkerAsync(HttpMessageInvoker invoker, Uri uri, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BlockSize);

        // An upload's response (small) is read into its own buffer: the body block may still be in use by the send.
        var download = _options.Mode == SpeedTestMode.Download;
        var readBuffer = download ? buffer : new byte[4096];
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                try
                {
                    using var request = new HttpRequestMessage(download ? HttpMethod.Get : _options.UploadMethod, uri)
                    {
                        Version = HttpVersion.Version11,
                        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                    };
                    if (!download)
                    {
                        request.Content = new GeneratedContent(_options.PayloadSize, buffer, count => Interlocked.Add(ref _bytes, count));
                    }

                    using var response = await invoker.SendAsync(request, cancellationToken);
                    var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                    int read;
                    while ((read = await body.ReadAsync(readBuffer, cancellationToken)) > 0)
                    {
                        if (download)
                        {
                            Interlocked.Add(ref _bytes, read);
                        }
                    }

                    if ((int)response.StatusCode is >= 200 and < 300)
                    {
                        Interlocked.Increment(ref _requests);
                    }
                    else
                    {
                        Fail($"status {(int)response.StatusCode}");
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
                {
                    Fail($"{e.GetType().Name}: {e.Message}");

                    // A refused connection must not spin.
                    await Task.Delay(TimeSpan.FromMilliseconds(100), CancellationToken.None);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Fail(string error)
    {
        Interlocked.Increment(ref _failures);
        Interlocked.CompareExchange(ref _firstError, error, null);
    }

    /// <summary>
    /// A request body of a fixed length (so Content-Length is sent, not chunked) written from one reused block,
    /// reporting every write. The block's bytes are whatever it holds: no path can shortcut them.
    /// </summary>
    private sealed class GeneratedContent : HttpContent
    {
        private readonly long _length;
        private readonly byte[] _block;
        private readonly Action<int> _written;

        public GeneratedContent(long length, byte[] block, Action<int> written)
        {
            _length = length;
            _block = block;
            _written = written;
            Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            for (var remaining = _length; remaining > 0;)
            {
                var count = (int)Math.Min(_block.Length, remaining);
                await stream.WriteAsync(_block.AsMemory(0, count), cancellationToken);
                _written(count);
                remaining -= count;
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = _length;
            return true;
        }
    }
}
