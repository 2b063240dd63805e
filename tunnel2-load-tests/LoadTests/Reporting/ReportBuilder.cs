using System.Globalization;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>Turns a <see cref="RunResult"/> into the report's content (rendered to Markdown and HTML).</summary>
internal static class ReportBuilder
{
    public static ReportDocument Build(RunResult run, IReadOnlyList<(string File, string Caption)> plots)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(plots);
        var blocks = new List<ReportBlock>();
        Summary(run, blocks);
        Method(blocks);
        GeneratorCheck(run, blocks);
        Targets(run, blocks);
        Stages(run, blocks);
        Overhead(run, blocks);
        Knee(run, blocks);
        Scenarios(run, blocks);
        Resources(run, blocks);
        Thresholds(run, blocks);
        if (plots.Count > 0)
        {
            blocks.Add(new HeadingBlock(1, "Plots"));
            blocks.AddRange(plots.Select(plot => new ImageBlock(plot.File, plot.Caption)));
        }

        if (run.Notes.Count > 0)
        {
            blocks.Add(new HeadingBlock(1, "Notes"));
            blocks.Add(new ListBlock(run.Notes));
        }

        blocks.Add(new HeadingBlock(1, "Files"));
        blocks.Add(new ListBlock(
        [
            "`results.json`: everything above, plus per-second samples of every scenario and the latency percentile curves.",
            "`results.csv`: per-second samples (one row per target, stage, scenario and second; scenario `*` is the whole mix).",
            "`stages.csv`: one row per stage, target and scenario. `resources.csv`: per-second process samples.",
            "`*.png`: the plots; `report.html` embeds them.",
        ]));
        return new ReportDocument($"Tunnel2 load report · {run.Profile}", blocks);
    }

    private static void Summary(RunResult run, List<ReportBlock> blocks)
    {
        var breached = run.Thresholds.Where(t => !t.Passed).ToList();
        var verdict = run.Passed ? "**Verdict: PASS**" : $"**Verdict: FAIL** ({(run.Aborted ? "run aborted; " : "")}{breached.Count} threshold(s) breached)";
        blocks.Add(new ParagraphBlock(verdict));
        if (breached.Count > 0)
        {
            blocks.Add(new ListBlock(breached.Select(t => t.Describe()).ToList()));
        }

        blocks.Add(new ParagraphBlock(string.Create(CultureInfo.InvariantCulture,
            $"Profile `{run.Profile}` · started {run.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC · {run.DurationSec:0} s · {run.Machine.Cores} cores · {run.Machine.Os} · {run.Machine.Runtime} · generator server GC {(run.Machine.ServerGc ? "on" : "off")}")));
        if (run.Description.Length > 0)
        {
            blocks.Add(new ParagraphBlock(run.Description));
        }

        blocks.Add(new TableBlock(
            ["Target", "Backend", "Path", "Base URL"],
            run.Targets.Select(t => (IReadOnlyList<string>)[t.Name, t.BackendName, t.PathName, t.BaseUri.AbsoluteUri]).ToList()));
    }

    private static void Method(List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "How to read this report"));
        blocks.Add(new ListBlock(
        [
            "**Open loop.** Inject stages start requests on a precomputed schedule whether or not earlier requests finished; a slow target cannot slow the arrivals.",
            "**Latency is CO-corrected:** measured from the INTENDED start to the last response byte, so time a request spent waiting because the generator or the target was behind is counted (wrk2's method; performance.md §3.4). *Service time* (from the actual start) is what closed-loop tools report; *lag* is actual − intended start. The scheduler sleeps with nanosleep on a thread of its own (.NET timers tick in 4 ms steps on these kernels), so its lag is normally well under a millisecond; a large lag p99 means the generator, or the machine it shares, was behind, and the stage is flagged.",
            "**Targets run one after another inside each stage** (direct, then tunnel, for the same backend), never concurrently: on 2 vCPUs they would fight for CPU. Overhead is therefore always tunnel minus direct at the SAME offered rate.",
            "**Achieved RPS** counts successful responses completed inside the stage's schedule. Below saturation it equals the offered rate.",
            "**Failures** are classified: `status N` (non-2xx/3xx), `connection (…)` (connect/reset, with .NET's HttpRequestError), `timeout` (no full response within the per-request timeout), `dropped` (not started: the in-flight cap was reached). Nothing is dropped silently.",
            "**Generator ceiling**: a closed-loop burst against a trivial endpoint of the direct TestBackend; a stage offering more than the flagged share of it may measure the generator rather than the tunnel.",
        ]));
    }

    private static void GeneratorCheck(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Generator self-check"));
        if (run.GeneratorCheck is not { } check)
        {
            blocks.Add(new ParagraphBlock("Not measured (see notes): stages could not be checked against the generator's ceiling."));
            return;
        }

        var flagged = run.Windows.Count(w => w.Flags.Any(f => f.StartsWith("generator-bound", StringComparison.Ordinal)));
        blocks.Add(new ParagraphBlock(string.Create(CultureInfo.InvariantCulture,
            $"Ceiling ≈ **{check.Rps:0} RPS** (closed loop, {check.Copies} copies for {check.DurationSec:0.#} s, GET `{check.Url}`; p50 {Format.Ms(check.Result.Latency.P50Ms)} ms, p99 {Format.Ms(check.Result.Latency.P99Ms)} ms, {check.Result.Failed} failed). " +
            $"This is the generator and the backend sharing the machine, so the generator alone can do at least this much. " +
            $"Stages offering more than {run.GeneratorCeilingFraction:P0} of it ({run.GeneratorCeilingFraction * check.Rps:0} RPS) are flagged \"generator-bound?\": {flagged} window(s).")));
    }

    private static void Targets(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Targets (whole run, saturation steps excluded)"));
        var rows = new List<IReadOnlyList<string>>();
        foreach (var target in run.Targets)
        {
            var windows = run.Windows.Where(w => w.Target == target.Name && !w.Exploratory).ToList();
            if (windows.Count == 0)
            {
                continue;
            }

            var total = run.TargetTotal(target.Name);
            var rps = total.OkInWindow / windows.Sum(w => w.DurationSec);
            rows.Add(
            [
                target.Name, Format.Count(total.Requests), Format.Count(total.Ok), Format.Count(total.Failed),
                Format.Count(total.FailuresOf(FailureKind.Status)), Format.Count(total.FailuresOf(FailureKind.Connection)),
                Format.Count(total.FailuresOf(FailureKind.Timeout)), Format.Count(total.FailuresOf(FailureKind.Dropped)),
                Format.Percent(total.SuccessRate), Format.Rate(rps),
                Format.Ms(total.Latency.MeanMs), Format.Ms(total.Latency.P50Ms), Format.Ms(total.Latency.P75Ms), Format.Ms(total.Latency.P95Ms),
                Format.Ms(total.Latency.P99Ms), Format.Ms(total.Latency.MaxMs), Format.Ms(total.Lag.P99Ms),
            ]);
        }

        blocks.Add(new TableBlock(
            ["Target", "Requests", "OK", "Failed", "Status", "Connection", "Timeout", "Dropped", "Success", "RPS", "Mean ms", "p50", "p75", "p95", "p99", "Max", "Lag p99"],
            rows));
        var failures = run.Targets
            .Select(t => (t.Name, Failures: run.TargetTotal(t.Name).Failures))
            .Where(t => t.Failures.Count > 0)
            .Select(t => $"{t.Name}: {Format.Failures(t.Failures)}")
            .ToList();
        if (failures.Count > 0)
        {
            blocks.Add(new ParagraphBlock("Failures by reason:"));
            blocks.Add(new ListBlock(failures));
        }
    }

    private static void Stages(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Stages"));
        blocks.Add(new ParagraphBlock("One row per stage and target; latencies in ms, CO-corrected. *Svc p50* is the service time (from the actual start)."));
        blocks.Add(new TableBlock(
            ["Stage", "Load", "Target", "Offered/s", "Achieved/s", "Requests", "OK", "Failed", "Mean", "p50", "p75", "p95", "p99", "Max", "Svc p50", "Lag p99", "Flags"],
            run.Windows.Select(w => (IReadOnlyList<string>)
            [
                w.Stage.ToString(CultureInfo.InvariantCulture) + (w.Exploratory ? "*" : ""), w.Simulation, w.Target,
                w.OfferedRps is { } offered ? Format.Rate(offered) : "—", Format.Rate(w.AchievedRps),
                Format.Count(w.Total.Requests), Format.Count(w.Total.Ok), Format.Count(w.Total.Failed),
                Format.Ms(w.Total.Latency.MeanMs), Format.Ms(w.Total.Latency.P50Ms), Format.Ms(w.Total.Latency.P75Ms), Format.Ms(w.Total.Latency.P95Ms),
                Format.Ms(w.Total.Latency.P99Ms), Format.Ms(w.Total.Latency.MaxMs), Format.Ms(w.Total.Service.P50Ms), Format.Ms(w.Total.Lag.P99Ms),
                w.Flags.Count == 0 ? "" : string.Join("; ", w.Flags),
            ]).ToList()));
        if (run.Windows.Any(w => w.Exploratory))
        {
            blocks.Add(new ParagraphBlock("\\* saturation step: reported, not held to thresholds."));
        }
    }

    private static void Overhead(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Tunnel overhead (tunnel − direct, same backend, same offered rate)"));
        var rows = RunAnalysis.Overhead(run);
        if (rows.Count == 0)
        {
            blocks.Add(new ParagraphBlock("No stage ran both a direct and a tunnel target of the same backend."));
        }
        else
        {
            blocks.Add(new TableBlock(
                ["Stage", "Load", "Backend", "p50 direct", "p50 tunnel", "Δp50", "p99 direct", "p99 tunnel", "Δp99", "Δmean", "Δsvc p50", "Throughput ratio"],
                rows.Select(r => (IReadOnlyList<string>)
                [
                    r.Stage.ToString(CultureInfo.InvariantCulture), r.Simulation, r.Backend,
                    Format.Ms(r.Direct.P50Ms), Format.Ms(r.Tunnel.P50Ms), Format.DeltaMs(r.DeltaP50Ms),
                    Format.Ms(r.Direct.P99Ms), Format.Ms(r.Tunnel.P99Ms), Format.DeltaMs(r.DeltaP99Ms),
                    Format.DeltaMs(r.DeltaMeanMs), Format.DeltaMs(r.DeltaServiceP50Ms), Format.Ratio(r.ThroughputRatio),
                ]).ToList()));
            blocks.Add(new ParagraphBlock("Throughput ratio = tunnel achieved RPS / direct achieved RPS at that stage: 1.00 until the tunnel saturates."));
        }

        var ceilings = RunAnalysis.CeilingRatios(run);
        if (run.Ceilings.Count > 0)
        {
            blocks.Add(new HeadingBlock(2, "Closed-loop ceilings"));
            blocks.Add(new TableBlock(
                ["Target", "Copies", "RPS", "p50", "p99", "Failed"],
                run.Ceilings.Select(c => (IReadOnlyList<string>)
                [
                    c.Target, c.Copies.ToString(CultureInfo.InvariantCulture), Format.Rate(c.Rps),
                    Format.Ms(c.Result.Latency.P50Ms), Format.Ms(c.Result.Latency.P99Ms), Format.Count(c.Result.Failed),
                ]).ToList()));
            if (ceilings.Count > 0)
            {
                blocks.Add(new ListBlock(ceilings
                    .Select(c => $"{c.Backend}: tunnel / direct ceiling = {Format.Rate(c.TunnelRps)} / {Format.Rate(c.DirectRps)} = **{Format.Ratio(c.Ratio)}** (performance.md §0.2 target 0.30, floor 0.20)")
                    .ToList()));
            }
        }
    }

    private static void Knee(RunResult run, List<ReportBlock> blocks)
    {
        if (run.Knee is not { } knee)
        {
            return;
        }

        blocks.Add(new HeadingBlock(1, "Knee"));
        blocks.Add(new ParagraphBlock(knee.Summary));
    }

    private static void Scenarios(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Scenarios (whole run)"));
        var rows = new List<IReadOnlyList<string>>();
        foreach (var target in run.Targets)
        {
            foreach (var name in run.Windows.Where(w => w.Target == target.Name).SelectMany(w => w.Scenarios).Select(s => s.Name).Distinct())
            {
                var s = run.TargetTotal(target.Name, scenario: name);
                if (s.Requests == 0)
                {
                    continue;
                }

                rows.Add(
                [
                    target.Name, name, Format.Count(s.Requests), Format.Count(s.Ok), Format.Count(s.Failed), Format.Failures(s.Failures),
                    Format.Ms(s.Latency.MeanMs), Format.Ms(s.Latency.P50Ms), Format.Ms(s.Latency.P95Ms), Format.Ms(s.Latency.P99Ms), Format.Ms(s.Latency.MaxMs),
                    Format.Ms(s.Service.P50Ms), Format.Ms(s.Service.P99Ms),
                ]);
            }
        }

        blocks.Add(new TableBlock(
            ["Target", "Scenario", "Requests", "OK", "Failed", "Reasons", "Mean", "p50", "p95", "p99", "Max", "Svc p50", "Svc p99"], rows));
    }

    private static void Resources(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Resources"));
        blocks.Add(new ListBlock(run.Resources.Processes
            .Select(p => $"{p.Role}{(p.Pid is { } pid ? $" (PID {pid})" : "")}: {(p.Sampled ? "sampled each second" : "")}{(p.Sampled ? "; " : "")}{p.Note}")
            .DefaultIfEmpty("Not sampled.")
            .ToList()));
        var rows = RunAnalysis.Resources(run.Resources);
        if (rows.Count == 0)
        {
            return;
        }

        blocks.Add(new ParagraphBlock("Per window: CPU in % of one core (200 % = both cores of a 2-vCPU machine); GC counts are collections during the window; GC pause % is the share of wall time the runtime was paused for GC."));
        blocks.Add(new TableBlock(
            ["Stage", "Target", "Process", "CPU avg %", "CPU max %", "RSS max MB", "Threads", "Gen0", "Gen1", "Gen2", "GC pause %"],
            rows.Select(r => (IReadOnlyList<string>)
            [
                r.Stage.ToString(CultureInfo.InvariantCulture), r.Target, r.Role, Format.Number(r.CpuAvgPercent, "0.#"), Format.Number(r.CpuMaxPercent, "0.#"),
                Format.Number(r.RssMaxMb, "0.#"), r.ThreadsMax.ToString(CultureInfo.InvariantCulture),
                r.Gen0?.ToString(CultureInfo.InvariantCulture) ?? "—", r.Gen1?.ToString(CultureInfo.InvariantCulture) ?? "—", r.Gen2?.ToString(CultureInfo.InvariantCulture) ?? "—",
                r.GcPausePercent is { } pause ? Format.Number(pause, "0.##") : "—",
            ]).ToList()));
    }

    private static void Thresholds(RunResult run, List<ReportBlock> blocks)
    {
        blocks.Add(new HeadingBlock(1, "Thresholds"));
        blocks.Add(new ParagraphBlock("k6 names and syntax (`p(99)<10` in ms, `rate<=0.01` as a fraction); evaluated per target over the whole run, saturation steps excluded. A threshold with no matching requests is shown as `–` and does not fail the run."));
        blocks.Add(new TableBlock(
            ["", "Metric", "Condition", "Target", "Observed", "Source"],
            run.Thresholds.Select(t => (IReadOnlyList<string>)
            [
                t.Observed is null ? "–" : t.Passed ? "✓" : "✗ FAIL", t.Key, t.Expression, t.Target,
                t.Observed is { } value ? (t.Unit == "ms" ? Format.Ms(value) + " ms" : Format.Number(value, "0.#####") + (t.Unit.Length > 0 ? " " + t.Unit : "")) : "no data",
                t.Source,
            ]).ToList()));
    }
}
