using HdrHistogram;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Resources;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Targets;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>Tunnel minus direct for one backend at one stage (same offered rate).</summary>
internal sealed record OverheadRow(
    int Stage,
    string Simulation,
    string Backend,
    double? OfferedRps,
    LatencySummary Direct,
    LatencySummary Tunnel,
    double DirectAchievedRps,
    double TunnelAchievedRps,
    double DirectServiceP50Ms,
    double TunnelServiceP50Ms)
{
    public double DeltaP50Ms => Tunnel.P50Ms - Direct.P50Ms;

    public double DeltaP99Ms => Tunnel.P99Ms - Direct.P99Ms;

    public double DeltaMeanMs => Tunnel.MeanMs - Direct.MeanMs;

    public double DeltaServiceP50Ms => TunnelServiceP50Ms - DirectServiceP50Ms;

    /// <summary>Tunnel achieved throughput / direct achieved throughput at the same offered rate (1.00 below saturation).</summary>
    public double ThroughputRatio => DirectAchievedRps <= 0 ? 0 : TunnelAchievedRps / DirectAchievedRps;
}

/// <summary>Closed-loop ceilings of the direct and tunnel targets of one backend.</summary>
internal sealed record CeilingRatioRow(string Backend, double DirectRps, double TunnelRps)
{
    public double Ratio => DirectRps <= 0 ? 0 : TunnelRps / DirectRps;
}

/// <summary>One process's resource use during one window.</summary>
internal sealed record ResourceRow(
    string Role, int Stage, string Target, int Samples, double CpuAvgPercent, double CpuMaxPercent, double RssMaxMb, int ThreadsMax,
    long? Gen0, long? Gen1, long? Gen2, double? GcPausePercent);

/// <summary>Derived tables shared by the Markdown, HTML and JSON reports.</summary>
internal static class RunAnalysis
{
    /// <summary>For every stage and backend where both the direct and the tunnel target ran.</summary>
    public static IReadOnlyList<OverheadRow> Overhead(RunResult run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var rows = new List<OverheadRow>();
        foreach (var backend in new[] { BackendKind.TestBackend, BackendKind.Httpbin })
        {
            var direct = run.Targets.FirstOrDefault(t => t.Backend == backend && t.Path == PathKind.Direct);
            var tunnel = run.Targets.FirstOrDefault(t => t.Backend == backend && t.Path == PathKind.Tunnel);
            if (direct is null || tunnel is null)
            {
                continue;
            }

            foreach (var d in run.Windows.Where(w => w.Target == direct.Name))
            {
                var t = run.Windows.FirstOrDefault(w => w.Target == tunnel.Name && w.Stage == d.Stage);
                if (t is null)
                {
                    continue;
                }

                rows.Add(new OverheadRow(
                    d.Stage, d.Simulation, direct.BackendName, d.OfferedRps, d.Total.Latency, t.Total.Latency,
                    d.AchievedRps, t.AchievedRps, d.Total.Service.P50Ms, t.Total.Service.P50Ms));
            }
        }

        return rows.OrderBy(row => row.Stage).ThenBy(row => row.Backend == "testbackend" ? 0 : 1).ToList();
    }

    public static IReadOnlyList<CeilingRatioRow> CeilingRatios(RunResult run)
    {
        ArgumentNullException.ThrowIfNull(run);
        var rows = new List<CeilingRatioRow>();
        foreach (var backend in new[] { BackendKind.TestBackend, BackendKind.Httpbin })
        {
            var direct = run.Targets.FirstOrDefault(t => t.Backend == backend && t.Path == PathKind.Direct);
            var tunnel = run.Targets.FirstOrDefault(t => t.Backend == backend && t.Path == PathKind.Tunnel);
            var d = run.Ceilings.FirstOrDefault(c => c.Target == direct?.Name);
            var t = run.Ceilings.FirstOrDefault(c => c.Target == tunnel?.Name);
            if (d is not null && t is not null)
            {
                rows.Add(new CeilingRatioRow(direct!.BackendName, d.Rps, t.Rps));
            }
        }

        return rows;
    }

    /// <summary>Resource use per process and window, from the per-second samples tagged with that window.</summary>
    public static IReadOnlyList<ResourceRow> Resources(ResourceReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var rows = new List<ResourceRow>();
        foreach (var group in report.Samples
            .Where(sample => sample.Stage is not null && sample.Target is not null)
            .GroupBy(sample => (sample.Role, Stage: sample.Stage!.Value, Target: sample.Target!)))
        {
            var samples = group.OrderBy(sample => sample.RunTimeSec).ToList();
            var first = samples[0];
            var last = samples[^1];
            var span = (last.RunTimeSec - first.RunTimeSec) * 1000;
            rows.Add(new ResourceRow(
                group.Key.Role,
                group.Key.Stage,
                group.Key.Target,
                samples.Count,
                samples.Average(sample => sample.CpuPercent),
                samples.Max(sample => sample.CpuPercent),
                samples.Max(sample => sample.RssMb),
                samples.Max(sample => sample.Threads),
                last.Gen0 - first.Gen0,
                last.Gen1 - first.Gen1,
                last.Gen2 - first.Gen2,
                last.GcPauseMs is { } end && first.GcPauseMs is { } start && span > 0 ? (end - start) / span * 100 : null));
        }

        return rows.OrderBy(row => row.Stage).ThenBy(row => row.Target, StringComparer.Ordinal).ThenBy(row => row.Role, StringComparer.Ordinal).ToList();
    }

    /// <summary>Points of a percentile curve: x = −log10(1 − p) (0 → 0 %, 2 → 99 %, capped at 99.999 %), y = ms.</summary>
    public static IReadOnlyList<(double Percentile, double Ms)> PercentileCurve(HistogramBase histogram)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        if (histogram.TotalCount == 0)
        {
            return [];
        }

        return histogram.Percentiles(5)
            .Select(value => (Math.Min(value.PercentileLevelIteratedTo, 99.999), histogram.HighestEquivalentValue(value.ValueIteratedTo) / 1000.0))
            .DistinctBy(point => point.Item1)
            .ToList();
    }
}
