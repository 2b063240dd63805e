using System.Text.Json.Serialization;
using HdrHistogram;

namespace Tunnel2.LoadTests.Engine;

/// <summary>Counts and latencies of one scenario (or of a whole mix) over a window or a run.</summary>
internal sealed class ScenarioResult
{
    public required string Name { get; init; }

    /// <summary>Requests due: started plus dropped.</summary>
    public long Requests { get; init; }

    public long Ok { get; init; }

    public long Failed { get; init; }

    /// <summary>Successes completed before the schedule ended: the numerator of achieved throughput.</summary>
    public long OkInWindow { get; init; }

    public long BytesReceived { get; init; }

    /// <summary>Failure counts by reason text (<c>status 503</c>, <c>connection (…)</c>, <c>timeout</c>, <c>dropped</c>).</summary>
    public required IReadOnlyDictionary<string, long> Failures { get; init; }

    /// <summary>CO-corrected latency (from the intended start).</summary>
    public required LatencySummary Latency { get; init; }

    /// <summary>Service time (from the actual start).</summary>
    public required LatencySummary Service { get; init; }

    /// <summary>Scheduling lag of open-loop arrivals.</summary>
    public required LatencySummary Lag { get; init; }

    [JsonIgnore]
    public HistogramBase LatencyHistogram { get; init; } = null!;

    [JsonIgnore]
    public HistogramBase ServiceHistogram { get; init; } = null!;

    [JsonIgnore]
    public HistogramBase LagHistogram { get; init; } = null!;

    /// <summary>Ok / requests; 1 when nothing was due.</summary>
    public double SuccessRate => Requests == 0 ? 1 : (double)Ok / Requests;

    public long FailuresOf(FailureKind kind) => Failures
        .Where(pair => ReasonKind(pair.Key) == kind)
        .Sum(pair => pair.Value);

    public static ScenarioResult From(ScenarioStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        var dropped = stats.Dropped;
        return new ScenarioResult
        {
            Name = stats.Name,
            Requests = stats.Started + dropped,
            Ok = stats.Ok,
            Failed = stats.Failed,
            OkInWindow = stats.OkInWindow,
            BytesReceived = stats.BytesReceived,
            Failures = stats.Failures.OrderBy(pair => pair.Key.Kind).ThenBy(pair => pair.Key.Detail)
                .ToDictionary(pair => pair.Key.ToString(), pair => pair.Value),
            Latency = LatencySummary.From(stats.LatencyTotal),
            Service = LatencySummary.From(stats.ServiceTotal),
            Lag = LatencySummary.From(stats.LagTotal),
            LatencyHistogram = stats.LatencyTotal,
            ServiceHistogram = stats.ServiceTotal,
            LagHistogram = stats.LagTotal,
        };
    }

    /// <summary>Adds several results up (scenarios of a window, or windows of a run).</summary>
    public static ScenarioResult Combine(string name, IEnumerable<ScenarioResult> parts)
    {
        var list = parts.ToList();
        var latency = Histograms.Sum(list.Select(part => part.LatencyHistogram));
        var service = Histograms.Sum(list.Select(part => part.ServiceHistogram));
        var lag = Histograms.Sum(list.Select(part => part.LagHistogram));
        var failures = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var (reason, count) in list.SelectMany(part => part.Failures))
        {
            failures[reason] = failures.GetValueOrDefault(reason) + count;
        }

        return new ScenarioResult
        {
            Name = name,
            Requests = list.Sum(part => part.Requests),
            Ok = list.Sum(part => part.Ok),
            Failed = list.Sum(part => part.Failed),
            OkInWindow = list.Sum(part => part.OkInWindow),
            BytesReceived = list.Sum(part => part.BytesReceived),
            Failures = failures,
            Latency = LatencySummary.From(latency),
            Service = LatencySummary.From(service),
            Lag = LatencySummary.From(lag),
            LatencyHistogram = latency,
            ServiceHistogram = service,
            LagHistogram = lag,
        };
    }

    private static FailureKind? ReasonKind(string reason) => reason switch
    {
        _ when reason.StartsWith("status", StringComparison.Ordinal) => FailureKind.Status,
        _ when reason.StartsWith("connection", StringComparison.Ordinal) => FailureKind.Connection,
        "timeout" => FailureKind.Timeout,
        "dropped" => FailureKind.Dropped,
        "aborted" => FailureKind.Aborted,
        "generator error" => FailureKind.Error,
        _ => null,
    };
}

/// <summary>One second (or the final partial interval) of one scenario, or of the whole mix (<c>Scenario = "*"</c>).</summary>
internal sealed record SecondSample(
    string Target,
    int Stage,
    string Scenario,
    double RunTimeSec,
    double WindowTimeSec,
    long Ok,
    long Failed,
    long Dropped,
    double Rps,
    double MeanMs,
    double P50Ms,
    double P99Ms,
    double MaxMs,
    long InFlight,
    double LagP99Ms)
{
    /// <summary>The scenario name of the mix-wide sample.</summary>
    public const string AllScenarios = "*";
}

/// <summary>One stage against one target.</summary>
internal sealed class WindowResult
{
    public required string Target { get; init; }

    /// <summary>1-based stage number.</summary>
    public int Stage { get; init; }

    /// <summary>The stage's simulation, e.g. <c>inject 100/s</c>.</summary>
    public required string Simulation { get; init; }

    public bool OpenLoop { get; init; }

    /// <summary>Arrivals scheduled per second on average (open loop); null for closed loop.</summary>
    public double? OfferedRps { get; init; }

    public bool Exploratory { get; init; }

    /// <summary>Start of the window relative to the start of the run.</summary>
    public double StartSec { get; init; }

    /// <summary>Length of the schedule (the drain afterwards is not included).</summary>
    public double DurationSec { get; init; }

    public required IReadOnlyList<ScenarioResult> Scenarios { get; init; }

    public required ScenarioResult Total { get; init; }

    public required IReadOnlyList<SecondSample> Seconds { get; init; }

    /// <summary>Warnings attached by the engine or the run (generator-bound, lagging, not drained …).</summary>
    public List<string> Flags { get; } = [];

    /// <summary>Successful responses completed inside the schedule, per second.</summary>
    public double AchievedRps => DurationSec <= 0 ? 0 : Total.OkInWindow / DurationSec;
}
