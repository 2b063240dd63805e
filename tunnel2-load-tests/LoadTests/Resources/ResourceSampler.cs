namespace Tunnel2.LoadTests.Resources;

/// <summary>One process at one second.</summary>
/// <param name="CpuPercent">Share of ONE core over the last second (200 = both cores of a 2-vCPU machine).</param>
/// <param name="Gen0">Cumulative GC counts and pause since sampling started (null when GC counters are unavailable).</param>
internal sealed record ResourceSample(
    string Role,
    double RunTimeSec,
    int? Stage,
    string? Target,
    double CpuPercent,
    double RssMb,
    int Threads,
    long? Gen0,
    long? Gen1,
    long? Gen2,
    double? GcPauseMs,
    double? HeapMb);

/// <summary>A process the sampler was asked to watch, and how that went.</summary>
internal sealed record SampledProcess(string Role, int? Pid, bool Sampled, bool GcCounters, string Note);

/// <summary>Everything the sampler collected.</summary>
internal sealed record ResourceReport(IReadOnlyList<SampledProcess> Processes, IReadOnlyList<ResourceSample> Samples)
{
    public static readonly ResourceReport Empty = new([], []);
}

/// <summary>
/// Samples CPU %, RSS and threads from /proc, and GC counts and pause time from the runtime, once per second, for
/// TunnelServer, TunnelClient and the generator itself; each sample is tagged with the window running at the time.
/// </summary>
internal sealed class ResourceSampler : IAsyncDisposable
{
    private readonly List<Watched> _watched = [];
    private readonly List<SampledProcess> _processes = [];
    private readonly List<ResourceSample> _samples = [];
    private readonly TimeProvider _time;
    private readonly long _runOrigin;
    private readonly Func<(int Stage, string Target)?> _currentWindow;
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    /// <param name="processes">Role and PID; a null PID is reported as "not sampled".</param>
    /// <param name="runOrigin">The run's start, a <see cref="TimeProvider.GetTimestamp"/> value.</param>
    /// <param name="currentWindow">The window running now, or null between windows.</param>
    public ResourceSampler(IEnumerable<(string Role, int? Pid)> processes, TimeProvider time, long runOrigin, Func<(int Stage, string Target)?> currentWindow)
    {
        ArgumentNullException.ThrowIfNull(processes);
        _time = time;
        _runOrigin = runOrigin;
        _currentWindow = currentWindow;
        foreach (var (role, pid) in processes)
        {
            if (pid is not { } id)
            {
                _processes.Add(new SampledProcess(role, null, false, false, "not sampled (no PID given)"));
                continue;
            }

            if (!ProcFs.TryRead(id, out var first))
            {
                _processes.Add(new SampledProcess(role, id, false, false, $"not sampled (/proc/{id} unreadable: no such process?)"));
                continue;
            }

            string note;
            IGcSource? gc;
            if (id == Environment.ProcessId)
            {
                gc = new InProcessGcSource();
                note = "GC from the runtime in-process";
            }
            else
            {
                gc = EventPipeGcSource.TryStart(id, out var error);
                note = gc is null ? $"GC counters unavailable ({error})" : "GC from System.Runtime EventCounters over EventPipe";
            }

            _processes.Add(new SampledProcess(role, id, true, gc is not null, note));
            _watched.Add(new Watched(role, id, gc, first, time.GetTimestamp(), gc?.Read()));
        }
    }

    public IReadOnlyList<SampledProcess> Processes => _processes;

    public void Start() => _loop ??= LoopAsync(_stop.Token);

    /// <summary>Stops sampling and returns what was collected.</summary>
    public async Task<ResourceReport> StopAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null)
        {
            await _loop;
        }

        lock (_samples)
        {
            return new ResourceReport(_processes.ToList(), _samples.ToList());
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        foreach (var watched in _watched)
        {
            watched.Gc?.Dispose();
        }

        _stop.Dispose();
    }

    private async Task LoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                SampleOnce();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    private void SampleOnce()
    {
        var window = _currentWindow();
        var now = _time.GetTimestamp();
        var runTime = Math.Round(_time.GetElapsedTime(_runOrigin, now).TotalSeconds, 3);
        foreach (var watched in _watched)
        {
            if (!ProcFs.TryRead(watched.Pid, out var snapshot))
            {
                continue;
            }

            var elapsed = _time.GetElapsedTime(watched.LastTimestamp, now).TotalSeconds;
            var cpu = elapsed <= 0 ? 0 : (snapshot.CpuTicks - watched.Last.CpuTicks) / ProcFs.ClockTicksPerSecond / elapsed * 100;
            var gc = watched.Gc?.Read();
            var baseline = watched.GcBaseline;
            lock (_samples)
            {
                _samples.Add(new ResourceSample(
                    watched.Role,
                    runTime,
                    window?.Stage,
                    window?.Target,
                    Math.Round(cpu, 1),
                    Math.Round(snapshot.RssBytes / (1024.0 * 1024.0), 1),
                    snapshot.Threads,
                    gc is { } g && baseline is { } b ? g.Gen0 - b.Gen0 : null,
                    gc is { } g1 && baseline is { } b1 ? g1.Gen1 - b1.Gen1 : null,
                    gc is { } g2 && baseline is { } b2 ? g2.Gen2 - b2.Gen2 : null,
                    gc is { } g3 && baseline is { } b3 ? Math.Round(g3.PauseMs - b3.PauseMs, 3) : null,
                    gc is { } g4 ? Math.Round(g4.HeapMb, 1) : null));
            }

            watched.Last = snapshot;
            watched.LastTimestamp = now;
        }
    }

    private sealed class Watched
    {
        public Watched(string role, int pid, IGcSource? gc, ProcessSnapshot first, long timestamp, GcSnapshot? baseline)
        {
            Role = role;
            Pid = pid;
            Gc = gc;
            Last = first;
            LastTimestamp = timestamp;
            GcBaseline = baseline;
        }

        public string Role { get; }

        public int Pid { get; }

        public IGcSource? Gc { get; }

        public GcSnapshot? GcBaseline { get; }

        public ProcessSnapshot Last { get; set; }

        public long LastTimestamp { get; set; }
    }
}
