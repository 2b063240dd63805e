using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Microsoft.Diagnostics.Tracing.Parsers;

namespace Tunnel2.LoadTests.Resources;

/// <summary>A type's share of the sampled allocation volume.</summary>
internal sealed record AllocatedType(string Type, double Share, long SampledBytes, int Ticks);

/// <summary>
/// Which types another process allocates, from the runtime's GCAllocationTick events over EventPipe (GC keyword,
/// verbose level): the runtime raises one about every 100 KB allocated, naming the type of the object that crossed
/// the threshold and the bytes since the previous tick, so the bytes summed per type estimate each type's share of
/// the allocation volume (the sampling dotnet-trace's gc-verbose profile and PerfView's "GC Heap Alloc Stacks" use).
/// </summary>
internal sealed class AllocationTypeSampler : IDisposable
{
    private readonly EventPipeSession _session;
    private readonly EventPipeEventSource _source;
    private readonly Thread _reader;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (long Bytes, int Ticks)> _types = new(StringComparer.Ordinal);
    private bool _recording;

    private AllocationTypeSampler(EventPipeSession session)
    {
        _session = session;
        _source = new EventPipeEventSource(session.EventStream);
        _source.Clr.GCAllocationTick += OnAllocationTick;
        _reader = EventPipeReader.Start(_source, "eventpipe-alloc-ticks");
    }

    /// <summary>Connects to <paramref name="pid"/>'s diagnostic port; null with the reason when that is impossible.</summary>
    public static AllocationTypeSampler? TryStart(int pid, out string? error)
    {
        try
        {
            var provider = new EventPipeProvider("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GC);
            var session = new DiagnosticsClient(pid).StartEventPipeSession(provider, requestRundown: false);
            error = null;
            return new AllocationTypeSampler(session);
        }
        catch (Exception e) when (e is ServerNotAvailableException or UnsupportedCommandException or IOException or TimeoutException or UnauthorizedAccessException or ArgumentException)
        {
            error = $"{e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    /// <summary>Forgets what was sampled so far and starts counting.</summary>
    public void Start()
    {
        lock (_gate)
        {
            _types.Clear();
            _recording = true;
        }
    }

    /// <summary>Stops counting; events still in flight are ignored.</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _recording = false;
        }
    }

    /// <summary>The <paramref name="count"/> types with the largest sampled volume, largest first.</summary>
    public IReadOnlyList<AllocatedType> Top(int count)
    {
        lock (_gate)
        {
            var total = _types.Values.Sum(t => t.Bytes);
            return _types
                .OrderByDescending(pair => pair.Value.Bytes)
                .Take(count)
                .Select(pair => new AllocatedType(pair.Key, total > 0 ? Math.Round((double)pair.Value.Bytes / total, 4) : 0, pair.Value.Bytes, pair.Value.Ticks))
                .ToList();
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

    private void OnAllocationTick(Microsoft.Diagnostics.Tracing.Parsers.Clr.GCAllocationTickTraceData data)
    {
        var type = string.IsNullOrEmpty(data.TypeName) ? "(unknown type)" : data.TypeName;

        // Arrays are told apart by size: a 16 KiB buffer and a 64-byte array are different findings.
        if (type.EndsWith("[]", StringComparison.Ordinal) && data.ObjectSize > 0)
        {
            type = string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{type} ({data.ObjectSize:#,0} B)");
        }

        lock (_gate)
        {
            if (_recording)
            {
                var (bytes, ticks) = _types.GetValueOrDefault(type);
                _types[type] = (bytes + data.AllocationAmount64, ticks + 1);
            }
        }
    }
}
