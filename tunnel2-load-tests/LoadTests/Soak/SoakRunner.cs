using System.Collections.Concurrent;
using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Soak;

/// <summary>Settings of one soak load.</summary>
internal sealed record SoakOptions
{
    /// <summary>Base URL the mix's paths are appended to, e.g. <c>http://127.0.0.1:12000/session/&lt;id&gt;/</c>.</summary>
    public required Uri BaseUrl { get; init; }

    /// <summary>Open-loop arrival rate (requests per second, evenly spaced).</summary>
    public double Rps { get; init; } = 50;

    public TimeSpan Duration { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Per-request deadline, head and body.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests in flight at most; an arrival beyond it is counted as dropped (never silently).</summary>
    public int MaxInFlight { get; init; } = 2000;

    /// <summary>Seed of the mix (what is requested, sizes and content seeds).</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Error and BAD records kept for the report (counts are always complete).</summary>
    public int MaxRecords { get; init; } = 100_000;
}

/// <summary>A request that did not end <see cref="SoakClass.Ok"/>, with its times (Unix ms).</summary>
internal sealed record SoakRecord(long StartMs, long EndMs, SoakKind Kind, SoakClass Class, string Reason, string PathAndQuery);

/// <summary>Requests finished in one second of the run, by class.</summary>
internal sealed record SoakSecond(long UnixSecond, long Ok, long Error, long Bad);

/// <summary>What a soak load saw.</summary>
internal sealed record SoakLoadResult(
    long StartMs,
    long EndMs,
    long Sent,
    long Ok,
    long Error,
    long Bad,
    long Dropped,
    IReadOnlyDictionary<string, long> ByKind,
    IReadOnlyList<SoakRecord> Records,
    IReadOnlyList<SoakSecond> Seconds,
    bool Interrupted);

/// <summary>
/// A steady open-loop mix (<see cref="SoakRequest.Next"/>) for a fixed time: each arrival starts at its time whether
/// or not earlier ones finished, every response is read to the end and checked, and every request is classified as
/// ok, a clear error or BAD.
/// </summary>
internal sealed class SoakRunner
{
    private readonly SoakOptions _options;
    private readonly ConcurrentDictionary<long, (long Ok, long Error, long Bad)> _seconds = new();
    private readonly ConcurrentDictionary<string, long> _byKind = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<SoakRecord> _records = new();
    private long _ok;
    private long _error;
    private long _bad;
    private long _dropped;
    private long _sent;
    private int _inFlight;
    private int _recordCount;

    public SoakRunner(SoakOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    public long Ok => Interlocked.Read(ref _ok);

    public long Error => Interlocked.Read(ref _error);

    public long Bad => Interlocked.Read(ref _bad);

    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Runs the load; <paramref name="cancellationToken"/> ends it early (the result says so).</summary>
    public async Task<SoakLoadResult> RunAsync(Action<string>? progress, CancellationToken cancellationToken)
    {
        using var invoker = new HttpMessageInvoker(HttpLoadClient.CreateHandler(_options.MaxInFlight), disposeHandler: true);
        var random = new Random(_options.Seed);
        var running = new ConcurrentDictionary<long, Task>();
        var startMs = NowMs();
        var start = TimeProvider.System.GetTimestamp();
        var interval = TimeSpan.FromSeconds(1 / _options.Rps);
        var total = (long)Math.Floor(_options.Duration.TotalSeconds * _options.Rps);
        var nextProgress = TimeSpan.FromSeconds(10);
        var interrupted = false;
        try
        {
            for (long i = 0; i < total; i++)
            {
                var due = interval * i;
                var wait = due - TimeProvider.System.GetElapsedTime(start);
                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, cancellationToken);
                }

                if (TimeProvider.System.GetElapsedTime(start) >= nextProgress)
                {
                    progress?.Invoke($"{nextProgress.TotalSeconds,5:0}s  sent {Interlocked.Read(ref _sent)}  ok {Ok}  error {Error}  BAD {Bad}  in flight {InFlight}");
                    nextProgress += TimeSpan.FromSeconds(10);
                }

                var request = SoakRequest.Next(random);
                if (Interlocked.Increment(ref _inFlight) > _options.MaxInFlight)
                {
                    Interlocked.Decrement(ref _inFlight);
                    Interlocked.Increment(ref _dropped);
                    continue;
                }

                Interlocked.Increment(ref _sent);
                var id = i;
                // In-flight requests run to their own deadline even when the run is stopped: stopping ends the arrivals only.
                var task = RunOneAsync(invoker, request, CancellationToken.None);
                running[id] = task;
                _ = task.ContinueWith(_ => running.TryRemove(id, out Task? _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            interrupted = true;
        }

        // Let what is in flight finish (each request has its own deadline).
        try
        {
            await Task.WhenAll(running.Values.ToArray()).WaitAsync(_options.RequestTimeout + TimeSpan.FromSeconds(5), CancellationToken.None);
        }
        catch (TimeoutException)
        {
            progress?.Invoke($"{running.Count} request(s) still running after their deadline; counted as they stand");
        }
        var endMs = NowMs();

        return new SoakLoadResult(
            startMs,
            endMs,
            Interlocked.Read(ref _sent),
            Ok,
            Error,
            Bad,
            Interlocked.Read(ref _dropped),
            _byKind.OrderBy(static p => p.Key, StringComparer.Ordinal).ToDictionary(static p => p.Key, static p => p.Value, StringComparer.Ordinal),
            [.. _records.OrderBy(static r => r.EndMs)],
            [.. _seconds.OrderBy(static p => p.Key).Select(static p => new SoakSecond(p.Key, p.Value.Ok, p.Value.Error, p.Value.Bad))],
            interrupted);
    }

    private static long NowMs() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private async Task RunOneAsync(HttpMessageInvoker invoker, SoakRequest request, CancellationToken cancellationToken)
    {
        await Task.Yield();
        var startMs = NowMs();
        SoakVerdict verdict;
        try
        {
            verdict = await request.ExecuteAsync(invoker, _options.BaseUrl, _options.RequestTimeout, cancellationToken);
        }
        catch (Exception e)
        {
            // ExecuteAsync classifies every request-level failure itself; anything else is a harness bug, reported as such.
            verdict = new SoakVerdict(SoakClass.Error, $"harness: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }

        var endMs = NowMs();
        var key = $"{request.Kind.ToString().ToLowerInvariant()} {verdict.Class.ToString().ToLowerInvariant()}";
        _byKind.AddOrUpdate(key, 1, static (_, n) => n + 1);
        _seconds.AddOrUpdate(
            endMs / 1000,
            _ => Count(default, verdict.Class),
            (_, counts) => Count(counts, verdict.Class));
        switch (verdict.Class)
        {
            case SoakClass.Ok:
                Interlocked.Increment(ref _ok);
                return;
            case SoakClass.Error:
                Interlocked.Increment(ref _error);
                break;
            default:
                Interlocked.Increment(ref _bad);
                break;
        }

        if (Interlocked.Increment(ref _recordCount) <= _options.MaxRecords || verdict.Class == SoakClass.Bad)
        {
            _records.Enqueue(new SoakRecord(startMs, endMs, request.Kind, verdict.Class, verdict.Reason, request.PathAndQuery));
        }
    }

    private static (long Ok, long Error, long Bad) Count((long Ok, long Error, long Bad) counts, SoakClass verdict) => verdict switch
    {
        SoakClass.Ok => (counts.Ok + 1, counts.Error, counts.Bad),
        SoakClass.Error => (counts.Ok, counts.Error + 1, counts.Bad),
        _ => (counts.Ok, counts.Error, counts.Bad + 1),
    };
}
