using Docker.DotNet.Models;
using Tunnel2.LoadTests.Resources;

namespace Tunnel2.LoadTests.Docker;

/// <summary>
/// CPU, memory and task count of containers, from the Engine API's stats stream (one record per second per
/// container, what <c>docker stats</c> shows), tagged with the window running at the time like the /proc sampler's
/// samples. A stream that ends (the container restarted) is opened again.
/// </summary>
internal sealed class ContainerStatsSampler : IAsyncDisposable
{
    private readonly ComposeProject _project;
    private readonly IReadOnlyList<ServiceContainer> _containers;
    private readonly TimeProvider _time;
    private readonly long _runOrigin;
    private readonly Func<(int Stage, string Target)?> _currentWindow;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<ResourceSample> _samples = [];
    private readonly Dictionary<string, string> _errors = new(StringComparer.Ordinal);
    private readonly List<Task> _loops = [];

    public ContainerStatsSampler(
        ComposeProject project, IReadOnlyList<ServiceContainer> containers, TimeProvider time, long runOrigin, Func<(int Stage, string Target)?> currentWindow)
    {
        _project = project;
        _containers = containers;
        _time = time;
        _runOrigin = runOrigin;
        _currentWindow = currentWindow;
    }

    /// <summary>The role a container's samples carry in the report.</summary>
    public static string RoleOf(string service) => $"{service} (container)";

    public void Start()
    {
        if (_loops.Count == 0)
        {
            foreach (var container in _containers)
            {
                _loops.Add(LoopAsync(container, _stop.Token));
            }
        }
    }

    /// <summary>Stops the streams; returns one entry per container and the samples.</summary>
    public async Task<ResourceReport> StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
        lock (_samples)
        {
            var processes = _containers.Select(c =>
            {
                var role = RoleOf(c.Service);
                var count = _samples.Count(s => s.Role == role);
                var note = $"container {c.Name}: docker stats from the Engine API (CPU of one core, memory without inactive page cache, tasks as threads; no GC counters)";
                if (_errors.TryGetValue(c.Service, out var error))
                {
                    note += $"; stats stream interrupted: {error}";
                }

                return new SampledProcess(role, null, count > 0, false, note);
            }).ToList();
            return new ResourceReport(processes, _samples.ToList());
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _stop.Dispose();
    }

    private async Task LoopAsync(ServiceContainer container, CancellationToken cancellationToken)
    {
        var progress = new SynchronousProgress(record => OnRecord(container, record));
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _project.Client.Containers.GetContainerStatsAsync(container.Id, new ContainerStatsParameters { Stream = true }, progress, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The container stopped or restarted, or the daemon hiccupped: remember why, then open the stream again.
                lock (_samples)
                {
                    _errors[container.Service] = $"{e.GetType().Name}: {e.Message}";
                }
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void OnRecord(ServiceContainer container, ContainerStatsResponse record)
    {
        if (record.CPUStats?.CPUUsage is not { } cpu || record.PreCPUStats?.CPUUsage is not { } previous || record.MemoryStats is not { } memory)
        {
            return;
        }

        var percent = ContainerStatsMath.CpuPercent(
            cpu.TotalUsage, previous.TotalUsage, record.CPUStats.SystemUsage, record.PreCPUStats.SystemUsage,
            record.CPUStats.OnlineCPUs, cpu.PercpuUsage?.Count ?? 0);
        if (percent is not { } cpuPercent)
        {
            return;
        }

        var window = _currentWindow();
        var runTime = Math.Round(_time.GetElapsedTime(_runOrigin).TotalSeconds, 3);
        var sample = new ResourceSample(
            RoleOf(container.Service),
            runTime,
            window?.Stage,
            window?.Target,
            Math.Round(cpuPercent, 1),
            Math.Round(ContainerStatsMath.MemoryBytes(memory.Usage, memory.Stats) / (1024.0 * 1024.0), 1),
            (int)Math.Min(record.PidsStats?.Current ?? 0, int.MaxValue),
            null, null, null, null, null);
        lock (_samples)
        {
            _samples.Add(sample);
        }
    }

    /// <summary>Handles each record on the reading thread (Progress&lt;T&gt; would post it to the thread pool, out of order).</summary>
    private sealed class SynchronousProgress(Action<ContainerStatsResponse> handler) : IProgress<ContainerStatsResponse>
    {
        public void Report(ContainerStatsResponse value) => handler(value);
    }
}
