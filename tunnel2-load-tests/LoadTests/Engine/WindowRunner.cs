namespace Tunnel2.LoadTests.Engine;

/// <summary>
/// Runs one window: schedules the mix's requests (open loop) or its looping copies (closed loop), emits live
/// statistics every tick, waits for in-flight requests after the schedule ends (bounded), and returns the result.
/// </summary>
internal sealed class WindowRunner
{
    private readonly RequestExecutor _executor;
    private readonly TimeProvider _time;
    private readonly EngineOptions _options;
    private readonly ArrivalPacer _pacer;

    /// <param name="pacer">How the scheduler sleeps; by default precise sleeps for the system clock (see <see cref="ArrivalPacer"/>).</param>
    public WindowRunner(HttpLoadClient client, TimeProvider time, EngineOptions options, ArrivalPacer? pacer = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(options);
        _executor = new RequestExecutor(client, time);
        _time = time;
        _options = options;
        _pacer = pacer ?? ArrivalPacer.For(time);
    }

    /// <summary>Runs the window to its end (or until <paramref name="cancellationToken"/> fires).</summary>
    /// <param name="onTick">Called from the ticker with the interval's samples: one per scenario, then the mix ("*").</param>
    public async Task<WindowResult> RunAsync(WindowSpec spec, Action<IReadOnlyList<SecondSample>>? onTick, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Scenarios.Count == 0)
        {
            throw new ArgumentException("A window needs at least one scenario.", nameof(spec));
        }

        var totalWeight = spec.Scenarios.Sum(scenario => scenario.Weight);
        var shares = spec.Scenarios.Select(scenario => scenario.Weight / totalWeight).ToArray();
        var stats = spec.Scenarios.Select(scenario => new ScenarioStats(scenario.Name)).ToArray();
        var seconds = new List<SecondSample>();
        var flags = new List<string>();
        var origin = _time.GetTimestamp();
        var ticker = new Ticker(this, spec, stats, origin, seconds, onTick);

        using var stopTicker = new CancellationTokenSource();
        var tickerTask = ticker.RunAsync(stopTicker.Token);
        long scheduled;
        var window = new InFlight();
        try
        {
            if (!spec.Simulation.IsOpenLoop)
            {
                scheduled = await RunClosedLoopAsync(spec, shares, stats, window, origin, cancellationToken);
            }
            else if (_pacer.Blocks)
            {
                // The scheduler sleeps synchronously: give it a thread of its own, never a pool thread.
                scheduled = await Task.Factory.StartNew(
                    () => RunOpenLoopAsync(spec, shares, stats, window, origin, cancellationToken),
                    CancellationToken.None,
                    TaskCreationOptions.LongRunning,
                    TaskScheduler.Default).Unwrap();
            }
            else
            {
                scheduled = await RunOpenLoopAsync(spec, shares, stats, window, origin, cancellationToken);
            }
        }
        finally
        {
            foreach (var scenario in stats)
            {
                scenario.CloseWindow();
            }

            window.Release();
        }

        try
        {
            await window.Drained.WaitAsync(_options.DrainTimeout, _time, cancellationToken);
        }
        catch (TimeoutException)
        {
            flags.Add($"{window.Count} request(s) still in flight {_options.DrainTimeout.TotalSeconds:0} s after the schedule ended; they are not counted.");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            flags.Add("Run cancelled while waiting for in-flight requests.");
        }

        await stopTicker.CancelAsync();
        await tickerTask;
        ticker.Emit();

        var scenarios = stats.Select(ScenarioResult.From).ToList();
        var result = new WindowResult
        {
            Target = spec.Target,
            Stage = spec.Stage,
            Simulation = spec.Simulation.Describe(),
            OpenLoop = spec.Simulation.IsOpenLoop,
            OfferedRps = spec.Simulation.IsOpenLoop ? scheduled / spec.Simulation.During.TotalSeconds : null,
            Exploratory = spec.Exploratory,
            StartSec = spec.RunOffset.TotalSeconds,
            DurationSec = spec.Simulation.During.TotalSeconds,
            Scenarios = scenarios,
            Total = ScenarioResult.Combine(SecondSample.AllScenarios, scenarios),
            Seconds = seconds,
        };
        result.Flags.AddRange(flags);
        return result;
    }

    private async Task<long> RunOpenLoopAsync(
        WindowSpec spec, double[] shares, ScenarioStats[] stats, InFlight window, long origin, CancellationToken cancellationToken)
    {
        var schedules = new IEnumerable<TimeSpan>[shares.Length];
        for (var i = 0; i < shares.Length; i++)
        {
            var simulation = spec.Simulation.Scale(shares[i]);
            var interval = simulation is RampingInject ramp ? ramp.Interval : TimeSpan.FromSeconds(1);
            var startRate = spec.StartRatePerSecond * shares[i] * interval.TotalSeconds;
            schedules[i] = InjectionSchedule.Create(simulation, startRate, _options.Spread, _options.Seed + i);
        }

        using var scheduler = new OpenLoopScheduler(schedules);
        var frequency = (double)_time.TimestampFrequency;
        void Dispatch(int index, TimeSpan intended)
        {
            if (!window.TryEnter(_options.MaxInFlight))
            {
                stats[index].OnDropped();
                return;
            }

            var intendedTimestamp = origin + (long)(intended.TotalSeconds * frequency);
            var request = spec.Scenarios[index].Request;
            ThreadPool.UnsafeQueueUserWorkItem(
                static state => _ = state.Runner.ExecuteOpenAsync(state.Stats, state.Request, state.Intended, state.Window, state.Token),
                new WorkItem(this, stats[index], request, intendedTimestamp, window, cancellationToken),
                preferLocal: false);
        }

        try
        {
            while (scheduler.DispatchDue(_time.GetElapsedTime(origin), Dispatch) is { } next)
            {
                var wait = next - _time.GetElapsedTime(origin);
                if (wait > TimeSpan.Zero)
                {
                    await _pacer.WaitAsync(wait, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled: what was dispatched is drained and reported.
        }

        return scheduler.Dispatched;
    }

    private async Task ExecuteOpenAsync(ScenarioStats stats, RequestTemplate request, long intendedTimestamp, InFlight window, CancellationToken cancellationToken)
    {
        try
        {
            await _executor.ExecuteAsync(stats, request, intendedTimestamp, openLoop: true, cancellationToken);
        }
        finally
        {
            window.Exit();
        }
    }

    private async Task<long> RunClosedLoopAsync(
        WindowSpec spec, double[] shares, ScenarioStats[] stats, InFlight window, long origin, CancellationToken cancellationToken)
    {
        var copies = new List<Task>();
        for (var i = 0; i < shares.Length; i++)
        {
            var simulation = spec.Simulation.Scale(shares[i]);
            var startCopies = (int)Math.Round(spec.StartCopies * shares[i]);
            foreach (var copy in ClosedLoopPlan.Create(simulation, startCopies))
            {
                window.TryEnter(int.MaxValue);
                copies.Add(RunCopyAsync(stats[i], spec.Scenarios[i].Request, copy, origin, window, cancellationToken));
            }
        }

        await Task.WhenAll(copies);
        return 0;
    }

    private async Task RunCopyAsync(
        ScenarioStats stats, RequestTemplate request, CopyWindow copy, long origin, InFlight window, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            var wait = copy.Start - _time.GetElapsedTime(origin);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, _time, cancellationToken);
            }

            while (!cancellationToken.IsCancellationRequested && _time.GetElapsedTime(origin) < copy.Stop)
            {
                await _executor.ExecuteAsync(stats, request, _time.GetTimestamp(), openLoop: false, cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled between requests.
        }
        finally
        {
            window.Exit();
        }
    }

    private readonly record struct WorkItem(
        WindowRunner Runner, ScenarioStats Stats, RequestTemplate Request, long Intended, InFlight Window, CancellationToken Token);

    /// <summary>In-flight count of a window plus a "drained" signal once the schedule has released its own hold.</summary>
    private sealed class InFlight
    {
        private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);

        // Starts at 1: the schedule's own hold, released when no more requests can start.
        private int _pending = 1;
        private int _count;

        public Task Drained => _drained.Task;

        public int Count => Volatile.Read(ref _count);

        public bool TryEnter(int limit)
        {
            if (Interlocked.Increment(ref _count) > limit)
            {
                Interlocked.Decrement(ref _count);
                return false;
            }

            Interlocked.Increment(ref _pending);
            return true;
        }

        public void Exit()
        {
            Interlocked.Decrement(ref _count);
            Release();
        }

        public void Release()
        {
            if (Interlocked.Decrement(ref _pending) == 0)
            {
                _drained.TrySetResult();
            }
        }
    }

    /// <summary>Takes every scenario's interval each tick and turns it into samples.</summary>
    private sealed class Ticker
    {
        private readonly WindowRunner _runner;
        private readonly WindowSpec _spec;
        private readonly ScenarioStats[] _stats;
        private readonly long _origin;
        private readonly List<SecondSample> _seconds;
        private readonly Action<IReadOnlyList<SecondSample>>? _onTick;
        private long _last;

        public Ticker(WindowRunner runner, WindowSpec spec, ScenarioStats[] stats, long origin, List<SecondSample> seconds, Action<IReadOnlyList<SecondSample>>? onTick)
        {
            _runner = runner;
            _spec = spec;
            _stats = stats;
            _origin = origin;
            _last = origin;
            _seconds = seconds;
            _onTick = onTick;
        }

        public async Task RunAsync(CancellationToken stop)
        {
            using var timer = new PeriodicTimer(_runner._options.TickInterval, _runner._time);
            try
            {
                while (await timer.WaitForNextTickAsync(stop))
                {
                    Emit();
                }
            }
            catch (OperationCanceledException)
            {
                // Stopped by the window.
            }
        }

        public void Emit()
        {
            var time = _runner._time;
            var now = time.GetTimestamp();
            var length = time.GetElapsedTime(_last, now).TotalSeconds;
            var windowTime = time.GetElapsedTime(_origin, now).TotalSeconds;
            _last = now;

            var samples = new List<SecondSample>(_stats.Length + 1);
            var intervals = _stats.Select(stats => stats.TakeInterval()).ToArray();
            for (var i = 0; i < _stats.Length; i++)
            {
                samples.Add(Sample(_stats[i].Name, intervals[i], LatencySummary.From(intervals[i].Latency), LatencySummary.From(intervals[i].Lag), length, windowTime));
            }

            var all = new IntervalStats(
                Histograms.Sum(intervals.Select(interval => interval.Latency)),
                Histograms.Sum(intervals.Select(interval => interval.Lag)),
                intervals.Sum(interval => interval.Ok),
                intervals.Sum(interval => interval.Failed),
                intervals.Sum(interval => interval.Dropped),
                intervals.Sum(interval => interval.InFlight));
            samples.Add(Sample(SecondSample.AllScenarios, all, LatencySummary.From(all.Latency), LatencySummary.From(all.Lag), length, windowTime));
            _seconds.AddRange(samples);
            _onTick?.Invoke(samples);
        }

        private SecondSample Sample(string scenario, IntervalStats interval, LatencySummary latency, LatencySummary lag, double length, double windowTime) => new(
            _spec.Target,
            _spec.Stage,
            scenario,
            Math.Round(_spec.RunOffset.TotalSeconds + windowTime, 3),
            Math.Round(windowTime, 3),
            interval.Ok,
            interval.Failed,
            interval.Dropped,
            length <= 0 ? 0 : (interval.Ok + interval.Failed - interval.Dropped) / length,
            latency.MeanMs,
            latency.P50Ms,
            latency.P99Ms,
            latency.MaxMs,
            interval.InFlight,
            lag.P99Ms);
    }
}
