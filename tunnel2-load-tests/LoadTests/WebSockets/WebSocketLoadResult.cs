using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.WebSockets;

/// <summary>What one WebSocket run measured. Latencies in milliseconds (recorded in µs in HdrHistogram).</summary>
internal sealed record WebSocketLoadResult
{
    public required string Label { get; init; }

    public required string Url { get; init; }

    public int Sockets { get; init; }

    public double MessagesPerSecond { get; init; }

    public int MessageSize { get; init; }

    public double DurationSec { get; init; }

    public DateTime StartedUtc { get; init; }

    /// <summary>Sockets that completed the upgrade.</summary>
    public int Connected { get; init; }

    /// <summary>Connects that failed, by reason ("status 503", "timeout", "connection (ConnectionError)", …).</summary>
    public IReadOnlyDictionary<string, long> ConnectFailures { get; init; } = new Dictionary<string, long>();

    /// <summary>From the start of ConnectAsync to the open socket (TCP connect, upgrade request, 101).</summary>
    public LatencySummary ConnectTime { get; init; } = LatencySummary.Empty;

    /// <summary>How long connecting all sockets took.</summary>
    public double ConnectPhaseSec { get; init; }

    /// <summary>Sends the schedule asked for (connected sockets only).</summary>
    public long MessagesScheduled { get; init; }

    public long MessagesSent { get; init; }

    public long MessagesEchoed { get; init; }

    /// <summary>Sent and never echoed (socket dropped, or no echo within the echo timeout).</summary>
    public long MessagesLost { get; init; }

    /// <summary>Message-level failures, by reason ("not sent: socket closed", "lost", "out of order", …).</summary>
    public IReadOnlyDictionary<string, long> MessageFailures { get; init; } = new Dictionary<string, long>();

    /// <summary>Sockets that ended during the run without being asked to, by reason.</summary>
    public IReadOnlyDictionary<string, long> Drops { get; init; } = new Dictionary<string, long>();

    /// <summary>From the message's intended send time to its echo (coordinated-omission corrected).</summary>
    public LatencySummary Latency { get; init; } = LatencySummary.Empty;

    /// <summary>From the actual send to the echo.</summary>
    public LatencySummary ServiceTime { get; init; } = LatencySummary.Empty;

    /// <summary>Actual minus intended send time: large values mean the generator was late.</summary>
    public LatencySummary SendLag { get; init; } = LatencySummary.Empty;

    /// <summary>Sockets whose close handshake completed at the end.</summary>
    public int ClosedCleanly { get; init; }

    /// <summary>Close handshakes that failed or timed out, by reason.</summary>
    public IReadOnlyDictionary<string, long> CloseFailures { get; init; } = new Dictionary<string, long>();

    /// <summary>Per second of the message phase.</summary>
    public IReadOnlyList<WebSocketSecond> Seconds { get; init; } = [];

    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>No failure of any kind: every socket connected, stayed, echoed everything and closed cleanly.</summary>
    public bool Passed => Connected == Sockets && ConnectFailures.Count == 0 && Drops.Count == 0 && MessageFailures.Count == 0
        && MessagesLost == 0 && CloseFailures.Count == 0;
}

/// <summary>One second of the message phase.</summary>
internal sealed record WebSocketSecond(int Second, int OpenSockets, long Sent, long Echoed, long Failed, double P50Ms, double P99Ms, double MaxMs);

/// <summary>Thread-safe counts by reason.</summary>
internal sealed class ReasonCounter
{
    private readonly ConcurrentDictionary<string, StrongBox<long>> _counts = new(StringComparer.Ordinal);
    private long _total;

    public long Total => Interlocked.Read(ref _total);

    public void Add(string reason, long count = 1)
    {
        if (count <= 0)
        {
            return;
        }

        Interlocked.Add(ref _counts.GetOrAdd(reason, static _ => new StrongBox<long>()).Value, count);
        Interlocked.Add(ref _total, count);
    }

    /// <summary>The counts, largest first, then by name.</summary>
    public IReadOnlyDictionary<string, long> Snapshot()
    {
        var ordered = _counts
            .Select(pair => (pair.Key, Value: Interlocked.Read(ref pair.Value.Value)))
            .Where(pair => pair.Value > 0)
            .OrderByDescending(pair => pair.Value)
            .ThenBy(pair => pair.Key, StringComparer.Ordinal);
        var result = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (key, value) in ordered)
        {
            result[key] = value;
        }

        return result;
    }
}
