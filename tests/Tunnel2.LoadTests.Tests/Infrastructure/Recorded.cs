using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Tests.Infrastructure;

/// <summary>Builds results as a run would have recorded them, without running anything.</summary>
internal static class Recorded
{
    /// <summary>A scenario result with the given latencies (ms), all successful, plus failures by reason.</summary>
    public static ScenarioResult Scenario(string name, IEnumerable<double> latenciesMs, IReadOnlyDictionary<FailureReason, int>? failures = null, double lagMs = 0.5)
    {
        var stats = new ScenarioStats(name);
        foreach (var ms in latenciesMs)
        {
            stats.OnStarted(TimeSpan.FromMilliseconds(lagMs));
            stats.OnCompleted(RequestOutcome.FromStatus(200, 100), TimeSpan.FromMilliseconds(ms), TimeSpan.FromMilliseconds(Math.Max(0, ms - lagMs)));
        }

        foreach (var (reason, count) in failures ?? new Dictionary<FailureReason, int>())
        {
            for (var i = 0; i < count; i++)
            {
                if (reason.Kind == FailureKind.Dropped)
                {
                    stats.OnDropped();
                    continue;
                }

                stats.OnStarted(TimeSpan.FromMilliseconds(lagMs));
                stats.OnCompleted(RequestOutcome.Failed(reason), TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(10));
            }
        }

        stats.TakeInterval();
        return ScenarioResult.From(stats);
    }

    /// <summary>A window of one or more scenarios, with one per-second sample of the mix per second of duration.</summary>
    public static WindowResult Window(string target, int stage, double? offeredRps, double durationSec, double startSec, ScenarioResult[] scenarios, bool exploratory = false)
    {
        var total = ScenarioResult.Combine(SecondSample.AllScenarios, scenarios);
        var seconds = Enumerable.Range(1, (int)Math.Ceiling(durationSec))
            .Select(s => new SecondSample(
                target, stage, SecondSample.AllScenarios, startSec + s, s, total.Ok / (long)Math.Ceiling(durationSec), 0, 0,
                total.Ok / durationSec, total.Latency.MeanMs, total.Latency.P50Ms, total.Latency.P99Ms, total.Latency.MaxMs, 0, total.Lag.P99Ms))
            .ToList();
        return new WindowResult
        {
            Target = target,
            Stage = stage,
            Simulation = offeredRps is { } rate ? $"inject {rate}/s" : "keep-constant 10 copies",
            OpenLoop = offeredRps is not null,
            OfferedRps = offeredRps,
            Exploratory = exploratory,
            StartSec = startSec,
            DurationSec = durationSec,
            Scenarios = scenarios,
            Total = total,
            Seconds = seconds,
        };
    }

    /// <summary>n latencies spread evenly between min and max (ms).</summary>
    public static IEnumerable<double> Spread(int n, double minMs, double maxMs) =>
        Enumerable.Range(0, n).Select(i => minMs + ((maxMs - minMs) * i / Math.Max(1, n - 1)));
}
