using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace Tunnel2.LoadTests.Resources;

/// <summary>Cumulative GC figures of a .NET process.</summary>
/// <param name="AllocatedBytes">Managed bytes allocated by every thread, from an arbitrary origin: only differences mean something.</param>
internal readonly record struct GcSnapshot(long Gen0, long Gen1, long Gen2, double PauseMs, double HeapMb, double AllocatedBytes);

/// <summary>Bytes allocated since the session started, as of the <paramref name="Payloads"/>-th counter payload.</summary>
internal readonly record struct AllocationReading(double Bytes, int Payloads);

/// <summary>Where GC figures come from.</summary>
internal interface IGcSource : IDisposable
{
    GcSnapshot Read();
}

/// <summary>The generator's own GC, read in-process.</summary>
internal sealed class InProcessGcSource : IGcSource
{
    public GcSnapshot Read() => new(
        GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
        GC.GetTotalPauseDuration().TotalMilliseconds, GC.GetTotalMemory(false) / (1024.0 * 1024.0), GC.GetTotalAllocatedBytes());

    public void Dispose()
    {
    }
}

/// <summary>
/// Another process's GC, from the runtime's "System.Runtime" EventCounters streamed over EventPipe (the same
/// source dotnet-counters reads), one payload per second. "alloc-rate" is the per-interval difference of the
/// target's <see cref="GC.GetTotalAllocatedBytes"/>, so its sum is the bytes allocated since the session started.
/// </summary>
internal sealed class EventPipeGcSource : IGcSource
{
    private readonly EventPipeSession _session;
    private readonly EventPipeEventSource _source;
    private readonly Thread _reader;
    private readonly ConcurrentDictionary<string, double> _sums = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, double> _means = new(StringComparer.Ordinal);
    private readonly Lock _allocationGate = new();
    private double _allocatedBytes;
    private int _allocationPayloads;

    private EventPipeGcSource(EventPipeSession session)
    {
        _session = session;
        _source = new EventPipeEventSource(session.EventStream);
        _source.Dynamic.All += OnEvent;
        _reader = EventPipeReader.Start(_source, "eventpipe-counters");
    }

    /// <summary>Connects to <paramref name="pid"/>'s diagnostic port; null with the reason when that is impossible.</summary>
    public static EventPipeGcSource? TryStart(int pid, out string? error)
    {
        try
        {
            var client = new DiagnosticsClient(pid);
            var provider = new EventPipeProvider(
                "System.Runtime",
                EventLevel.Informational,
                (long)EventKeywords.None,
                new Dictionary<string, string> { ["EventCounterIntervalSec"] = "1" });
            var session = client.StartEventPipeSession(provider, requestRundown: false);
            error = null;
            return new EventPipeGcSource(session);
        }
        catch (Exception e) when (e is ServerNotAvailableException or UnsupportedCommandException or IOException or TimeoutException or UnauthorizedAccessException or ArgumentException)
        {
            error = $"{e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    /// <summary>True once at least one counter payload has arrived.</summary>
    public bool HasData => !_sums.IsEmpty || !_means.IsEmpty;

    public GcSnapshot Read() => new(
        (long)_sums.GetValueOrDefault("gen-0-gc-count"),
        (long)_sums.GetValueOrDefault("gen-1-gc-count"),
        (long)_sums.GetValueOrDefault("gen-2-gc-count"),
        _sums.GetValueOrDefault("total-pause-time-by-gc"),
        _means.GetValueOrDefault("gc-heap-size"),
        ReadAllocation().Bytes);

    /// <summary>The allocation total and how many "alloc-rate" payloads it is made of, read together.</summary>
    public AllocationReading ReadAllocation()
    {
        lock (_allocationGate)
        {
            return new AllocationReading(_allocatedBytes, _allocationPayloads);
        }
    }

    /// <summary>
    /// Waits until <paramref name="count"/> more "alloc-rate" payloads have arrived than <paramref name="after"/>
    /// had, and returns the reading then. A payload covers allocations up to the moment the target sampled it, so
    /// the second payload that arrives after an event certainly includes everything allocated before that event.
    /// </summary>
    public async Task<AllocationReading> WaitForPayloadsAsync(AllocationReading after, int count, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            var reading = ReadAllocation();
            if (reading.Payloads >= after.Payloads + count)
            {
                return reading;
            }

            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(20), deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"No runtime counter payload from the target within {timeout.TotalSeconds:0} s (did it exit?).");
            }
        }
    }

    public void Dispose()
    {
        try
        {
            _session.Stop();
        }
        catch (Exception e) when (e is ServerNotAvailableException or IOException or TimeoutException or ObjectDisposedException)
        {
            // The target is already gone.
        }

        _reader.Join(TimeSpan.FromSeconds(5));
        _source.Dispose();
        _session.Dispose();
    }

    private void OnEvent(TraceEvent traceEvent)
    {
        if (traceEvent.EventName != "EventCounters"
            || traceEvent.PayloadValue(0) is not IDictionary<string, object> outer
            || outer.TryGetValue("Payload", out var inner) is false
            || inner is not IDictionary<string, object> payload
            || payload.TryGetValue("Name", out var nameValue) is false
            || nameValue is not string name)
        {
            return;
        }

        // Incrementing counters carry "Increment" (per interval), the others "Mean".
        if (payload.TryGetValue("Increment", out var increment))
        {
            if (name == "alloc-rate")
            {
                lock (_allocationGate)
                {
                    _allocatedBytes += Convert.ToDouble(increment, System.Globalization.CultureInfo.InvariantCulture);
                    _allocationPayloads++;
                }
            }

            _sums.AddOrUpdate(name, Convert.ToDouble(increment, System.Globalization.CultureInfo.InvariantCulture), (_, sum) => sum + Convert.ToDouble(increment, System.Globalization.CultureInfo.InvariantCulture));
        }
        else if (payload.TryGetValue("Mean", out var mean))
        {
            _means[name] = Convert.ToDouble(mean, System.Globalization.CultureInfo.InvariantCulture);
        }
    }
}
