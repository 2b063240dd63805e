using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Resources;

namespace Tunnel2.LoadTests.Bench;

/// <summary>A process whose managed allocations are measured, by role (e.g. TunnelServer) and PID.</summary>
internal sealed record ProbedProcess(string Role, int Pid);

/// <summary>What <see cref="AllocationProbe"/> measures.</summary>
internal sealed record AllocationProbeOptions
{
    public required Uri Url { get; init; }

    public required IReadOnlyList<ProbedProcess> Processes { get; init; }

    /// <summary>Measured requests; the per-request figure divides by the successful ones.</summary>
    public long Requests { get; init; } = 100_000;

    public int Concurrency { get; init; } = 50;

    /// <summary>Unmeasured requests first, so JIT tiering, pools and connections are settled.</summary>
    public long WarmUpRequests { get; init; } = 5_000;

    /// <summary>Counter intervals (seconds) of idle measured before the load, subtracted as background allocation.</summary>
    public int IdleIntervals { get; init; } = 2;

    /// <summary>How many allocated types to name per process (from allocation-tick sampling); 0 turns sampling off.</summary>
    public int TopTypes { get; init; } = 8;
}

/// <summary>One process's allocations during the measured requests.</summary>
/// <param name="LoadBytes">Allocated between the counter payloads around the load, idle background removed.</param>
/// <param name="IdleBytesPerSec">Background allocation with no load (timers, keep-alive, the counters themselves).</param>
/// <param name="TopTypes">The types allocated most during the load, by sampled volume (empty when not sampled).</param>
internal sealed record ProcessAllocation(
    string Role, int Pid, double LoadBytes, double IdleBytesPerSec, double BytesPerRequest, long Gen0, long Gen1, long Gen2, IReadOnlyList<AllocatedType> TopTypes);

internal sealed record AllocationProbeResult(string Url, FixedCountResult Load, IReadOnlyList<ProcessAllocation> Processes);

/// <summary>
/// Managed bytes allocated per proxied request, per process, from the outside: each process's runtime
/// "alloc-rate" counter (<see cref="GC.GetTotalAllocatedBytes"/> differences, over EventPipe) is read at counter
/// payloads before and after a fixed number of requests. The payloads are a second apart, so the window also
/// holds a second or two of idle time on each side; the idle rate measured just before is subtracted.
/// </summary>
internal sealed class AllocationProbe
{
    private static readonly TimeSpan PayloadTimeout = TimeSpan.FromSeconds(15);

    private readonly AllocationProbeOptions _options;

    public AllocationProbe(AllocationProbeOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Requests, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.IdleIntervals, 1);
        _options = options;
    }

    /// <summary>Runs the probe; throws <see cref="InvalidOperationException"/> when a process cannot be reached.</summary>
    public async Task<AllocationProbeResult> RunAsync(HttpLoadClient client, Action<string> progress, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(progress);

        var sources = new List<EventPipeGcSource>();
        var typeSamplers = new List<AllocationTypeSampler?>();
        try
        {
            foreach (var process in _options.Processes)
            {
                sources.Add(EventPipeGcSource.TryStart(process.Pid, out var error)
                    ?? throw new InvalidOperationException($"{process.Role} (PID {process.Pid}): runtime counters unavailable: {error}"));
                typeSamplers.Add(_options.TopTypes > 0 ? AllocationTypeSampler.TryStart(process.Pid, out _) : null);
            }

            var request = new RequestTemplate(HttpMethod.Get, _options.Url);
            if (_options.WarmUpRequests > 0)
            {
                progress($"warm-up: {_options.WarmUpRequests} requests");
                var warmUp = await FixedCountLoad.RunAsync(client, request, _options.WarmUpRequests, _options.Concurrency, cancellationToken);
                if (warmUp.Failed > 0)
                {
                    throw new InvalidOperationException($"{warmUp.Failed} of {warmUp.Requests} warm-up requests failed: {string.Join(", ", warmUp.Failures.Select(f => $"{f.Key} ×{f.Value}"))}.");
                }
            }

            // Settle: the second payload after the warm-up covers all of it.
            var settled = await WaitAllAsync(sources, sources.Select(s => s.ReadAllocation()).ToArray(), 2, cancellationToken);
            progress($"idle: {_options.IdleIntervals} counter intervals");
            var idleEnd = await WaitAllAsync(sources, settled, _options.IdleIntervals, cancellationToken);
            var gcBefore = sources.Select(s => s.Read()).ToArray();

            progress($"load: {_options.Requests} requests, {_options.Concurrency} at a time");
            foreach (var sampler in typeSamplers)
            {
                sampler?.Start();
            }

            var load = await FixedCountLoad.RunAsync(client, request, _options.Requests, _options.Concurrency, cancellationToken);
            var after = await WaitAllAsync(sources, sources.Select(s => s.ReadAllocation()).ToArray(), 2, cancellationToken);

            // Allocation ticks arrive through EventPipe's buffers with some delay: stop counting only once the counter
            // payloads after the load are in, so the load's last ticks are not lost (the idle second after adds little).
            foreach (var sampler in typeSamplers)
            {
                sampler?.Stop();
            }

            var gcAfter = sources.Select(s => s.Read()).ToArray();

            var results = new List<ProcessAllocation>();
            for (var i = 0; i < sources.Count; i++)
            {
                var idlePerInterval = (idleEnd[i].Bytes - settled[i].Bytes) / Math.Max(1, idleEnd[i].Payloads - settled[i].Payloads);
                var intervals = after[i].Payloads - idleEnd[i].Payloads;
                var loadBytes = Math.Max(0, after[i].Bytes - idleEnd[i].Bytes - (idlePerInterval * intervals));
                results.Add(new ProcessAllocation(
                    _options.Processes[i].Role,
                    _options.Processes[i].Pid,
                    Math.Round(loadBytes),
                    Math.Round(idlePerInterval),
                    load.Ok > 0 ? Math.Round(loadBytes / load.Ok, 1) : 0,
                    gcAfter[i].Gen0 - gcBefore[i].Gen0,
                    gcAfter[i].Gen1 - gcBefore[i].Gen1,
                    gcAfter[i].Gen2 - gcBefore[i].Gen2,
                    typeSamplers[i]?.Top(_options.TopTypes) ?? []));
            }

            return new AllocationProbeResult(_options.Url.AbsoluteUri, load, results);
        }
        finally
        {
            foreach (var source in sources)
            {
                source.Dispose();
            }

            foreach (var sampler in typeSamplers)
            {
                sampler?.Dispose();
            }
        }
    }

    private static async Task<AllocationReading[]> WaitAllAsync(List<EventPipeGcSource> sources, AllocationReading[] after, int count, CancellationToken cancellationToken)
    {
        var readings = new AllocationReading[sources.Count];
        for (var i = 0; i < sources.Count; i++)
        {
            readings[i] = await sources[i].WaitForPayloadsAsync(after[i], count, PayloadTimeout, cancellationToken);
        }

        return readings;
    }
}
