using System.Globalization;
using System.Text;
using System.Text.Json;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>The raw data: results.json, results.csv (per second), stages.csv, resources.csv.</summary>
internal static class DataFiles
{
    private static readonly JsonSerializerOptions JsonOptions = OutputJson.Options;

    public static void WriteJson(RunResult run, string path)
    {
        ArgumentNullException.ThrowIfNull(run);
        var document = new
        {
            run.Profile,
            run.Description,
            run.StartedUtc,
            run.DurationSec,
            Verdict = run.Passed ? "PASS" : "FAIL",
            run.Aborted,
            run.Machine,
            Targets = run.Targets.Select(t => new { t.Name, Backend = t.BackendName, Path = t.PathName, BaseUrl = t.BaseUri.AbsoluteUri }),
            run.GeneratorCheck,
            run.GeneratorCeilingFraction,
            run.Ceilings,
            TargetTotals = run.Targets.Select(t => run.TargetTotal(t.Name)).Where(total => total.Requests > 0),
            Overhead = RunAnalysis.Overhead(run),
            CeilingRatios = RunAnalysis.CeilingRatios(run),
            run.Knee,
            run.Thresholds,
            Windows = run.Windows,
            Resources = new { run.Resources.Processes, PerWindow = RunAnalysis.Resources(run.Resources), run.Resources.Samples },
            LatencyDistributions = run.Targets.Select(t => new
            {
                Target = t.Name,
                Points = RunAnalysis.PercentileCurve(run.TargetTotal(t.Name).LatencyHistogram).Select(p => new { p.Percentile, p.Ms }),
            }),
            run.Notes,
        };
        File.WriteAllText(path, JsonSerializer.Serialize(document, JsonOptions));
    }

    /// <summary>Per-second samples of every scenario and of the mix (<c>*</c>).</summary>
    public static void WriteSecondsCsv(RunResult run, string path)
    {
        ArgumentNullException.ThrowIfNull(run);
        var csv = new StringBuilder("run_time_s,window_time_s,stage,target,scenario,ok,failed,dropped,rps,mean_ms,p50_ms,p99_ms,max_ms,in_flight,lag_p99_ms\n");
        foreach (var s in run.Windows.SelectMany(w => w.Seconds))
        {
            Row(csv, s.RunTimeSec, s.WindowTimeSec, s.Stage, s.Target, s.Scenario, s.Ok, s.Failed, s.Dropped, s.Rps, s.MeanMs, s.P50Ms, s.P99Ms, s.MaxMs, s.InFlight, s.LagP99Ms);
        }

        File.WriteAllText(path, csv.ToString());
    }

    /// <summary>One row per stage, target and scenario (scenario <c>*</c> = the mix).</summary>
    public static void WriteStagesCsv(RunResult run, string path)
    {
        ArgumentNullException.ThrowIfNull(run);
        var csv = new StringBuilder(
            "stage,simulation,exploratory,target,scenario,offered_rps,achieved_rps,requests,ok,failed,failures,mean_ms,p50_ms,p75_ms,p90_ms,p95_ms,p99_ms,p999_ms,max_ms,service_p50_ms,service_p99_ms,lag_p50_ms,lag_p99_ms,flags\n");
        foreach (var w in run.Windows)
        {
            foreach (var s in w.Scenarios.Append(w.Total))
            {
                var mix = s.Name == SecondSample.AllScenarios;
                Row(csv, w.Stage, w.Simulation, w.Exploratory, w.Target, s.Name,
                    mix || w.OfferedRps is null ? w.OfferedRps : s.Requests / w.DurationSec,
                    mix ? w.AchievedRps : s.OkInWindow / w.DurationSec,
                    s.Requests, s.Ok, s.Failed, string.Join(";", s.Failures.Select(f => $"{f.Key}={f.Value}")),
                    s.Latency.MeanMs, s.Latency.P50Ms, s.Latency.P75Ms, s.Latency.P90Ms, s.Latency.P95Ms, s.Latency.P99Ms, s.Latency.P999Ms, s.Latency.MaxMs,
                    s.Service.P50Ms, s.Service.P99Ms, s.Lag.P50Ms, s.Lag.P99Ms, string.Join("; ", w.Flags));
            }
        }

        File.WriteAllText(path, csv.ToString());
    }

    public static void WriteResourcesCsv(RunResult run, string path)
    {
        ArgumentNullException.ThrowIfNull(run);
        var csv = new StringBuilder("run_time_s,process,stage,target,cpu_percent,rss_mb,threads,gen0,gen1,gen2,gc_pause_ms,heap_mb\n");
        foreach (var s in run.Resources.Samples)
        {
            Row(csv, s.RunTimeSec, s.Role, s.Stage, s.Target, s.CpuPercent, s.RssMb, s.Threads, s.Gen0, s.Gen1, s.Gen2, s.GcPauseMs, s.HeapMb);
        }

        File.WriteAllText(path, csv.ToString());
    }

    private static void Row(StringBuilder csv, params object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            if (i > 0)
            {
                csv.Append(',');
            }

            csv.Append(values[i] switch
            {
                null => "",
                double d => d.ToString("0.####", CultureInfo.InvariantCulture),
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                var other => Quote(other.ToString() ?? ""),
            });
        }

        csv.Append('\n');
    }

    private static string Quote(string value) =>
        value.IndexOfAny([',', '"', '\n']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
}
