using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using HdrHistogram;

namespace Tunnel2.LoadTests.Engine;

/// <summary>
/// Live counters and latency recorders of one scenario in one window. Writers (request completions, on any
/// thread) never block; one reader (the per-second ticker, then the window's end) takes interval histograms and
/// folds them into the totals.
/// </summary>
internal sealed class ScenarioStats
{
    private readonly Recorder _latency = Histograms.CreateRecorder();
    private readonly Recorder _service = Histograms.CreateRecorder();
    private readonly Recorder _lag = Histograms.CreateRecorder();
    private readonly ConcurrentDictionary<FailureReason, StrongBox<long>> _failures = new();
    private long _started;
    private long _ok;
    private long _failed;
    private long _okInWindow;
    private long _bytes;
    private long _inFlight;
    private int _windowClosed;

    // Reader-side state (one reader at a time).
    private HistogramBase? _latencyInterval;
    private HistogramBase? _serviceInterval;
    private HistogramBase? _lagInterval;
    private long _lastOk;
    private long _lastFailed;
    private long _lastDropped;

    public ScenarioStats(string name)
    {
        Name = name;
    }

    public string Name { get; }

    /// <summary>CO-corrected latency: from the intended start to the last response byte.</summary>
    public HistogramBase LatencyTotal { get; } = Histograms.Create();

    /// <summary>Service time: from the actual start to the last response byte (what closed-loop tools report).</summary>
    public HistogramBase ServiceTotal { get; } = Histograms.Create();

    /// <summary>Scheduling lag: actual start minus intended start. Large values mean a saturated generator.</summary>
    public HistogramBase LagTotal { get; } = Histograms.Create();

    public long InFlight => Interlocked.Read(ref _inFlight);

    public long Started => Interlocked.Read(ref _started);

    public long Ok => Interlocked.Read(ref _ok);

    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Successful responses that completed before the window's schedule ended (achieved throughput).</summary>
    public long OkInWindow => Interlocked.Read(ref _okInWindow);

    public long BytesReceived => Interlocked.Read(ref _bytes);

    public long Dropped => CountOf(new FailureReason(FailureKind.Dropped));

    /// <summary>Failure counts by reason.</summary>
    public IReadOnlyDictionary<FailureReason, long> Failures =>
        _failures.ToDictionary(pair => pair.Key, pair => Interlocked.Read(ref pair.Value.Value));

    /// <summary>A request starts; <paramref name="lag"/> is null for closed-loop copies, which have no schedule.</summary>
    public void OnStarted(TimeSpan? lag)
    {
        Interlocked.Increment(ref _started);
        Interlocked.Increment(ref _inFlight);
        if (lag is { } value)
        {
            _lag.RecordValue(Histograms.ToMicroseconds(value));
        }
    }

    /// <summary>A started request ends.</summary>
    public void OnCompleted(RequestOutcome outcome, TimeSpan latency, TimeSpan service)
    {
        _latency.RecordValue(Histograms.ToMicroseconds(latency));
        _service.RecordValue(Histograms.ToMicroseconds(service));
        Interlocked.Add(ref _bytes, outcome.BytesReceived);
        if (outcome.Failure is { } failure)
        {
            CountFailure(failure);
        }
        else
        {
            Interlocked.Increment(ref _ok);
            if (Volatile.Read(ref _windowClosed) == 0)
            {
                Interlocked.Increment(ref _okInWindow);
            }
        }

        Interlocked.Decrement(ref _inFlight);
    }

    /// <summary>A due request that could not start (in-flight cap): a failure, never silent.</summary>
    public void OnDropped() => CountFailure(new FailureReason(FailureKind.Dropped));

    /// <summary>The schedule has ended: later successes still count, but not towards achieved throughput.</summary>
    public void CloseWindow() => Volatile.Write(ref _windowClosed, 1);

    /// <summary>
    /// Takes what was recorded since the previous call and adds it to the totals. The returned histograms are
    /// reused by the next call: read them before calling again.
    /// </summary>
    public IntervalStats TakeInterval()
    {
        _latencyInterval = _latencyInterval is null ? _latency.GetIntervalHistogram() : _latency.GetIntervalHistogram(_latencyInterval);
        _serviceInterval = _serviceInterval is null ? _service.GetIntervalHistogram() : _service.GetIntervalHistogram(_serviceInterval);
        _lagInterval = _lagInterval is null ? _lag.GetIntervalHistogram() : _lag.GetIntervalHistogram(_lagInterval);
        LatencyTotal.Add(_latencyInterval);
        ServiceTotal.Add(_serviceInterval);
        LagTotal.Add(_lagInterval);

        var ok = Ok;
        var failed = Failed;
        var dropped = Dropped;
        var interval = new IntervalStats(_latencyInterval, _lagInterval, ok - _lastOk, failed - _lastFailed, dropped - _lastDropped, InFlight);
        _lastOk = ok;
        _lastFailed = failed;
        _lastDropped = dropped;
        return interval;
    }

    private void CountFailure(FailureReason reason)
    {
        Interlocked.Increment(ref _failures.GetOrAdd(reason, static _ => new StrongBox<long>()).Value);
        Interlocked.Increment(ref _failed);
    }

    private long CountOf(FailureReason reason) =>
        _failures.TryGetValue(reason, out var box) ? Interlocked.Read(ref box.Value) : 0;
}

/// <summary>What one scenario did during one ticker interval.</summary>
internal readonly record struct IntervalStats(HistogramBase Latency, HistogramBase Lag, long Ok, long Failed, long Dropped, long InFlight);
