using ScottPlot;
using ScottPlot.TickGenerators;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Run;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>
/// PNG plots with ScottPlot 5 (SkiaSharp, headless; the Linux native assets come with the NoDependencies package,
/// so no X server or system Skia is needed).
/// </summary>
internal static class PlotRenderer
{
    private const int Width = 1200;
    private const int Height = 520;

    // The y axes are log10(ms): a 0.2 ms median and a 200 ms tail fit one chart.
    private const double FloorMs = 0.01;

    /// <summary>Writes every plot the run has data for; returns (file name, caption) in report order.</summary>
    public static IReadOnlyList<(string File, string Caption)> WriteAll(RunResult run, string directory)
    {
        ArgumentNullException.ThrowIfNull(run);
        var written = new List<(string, string)>();
        var targets = run.Targets.Select(target => target.Name).Where(name => run.Windows.Any(w => w.Target == name)).ToList();
        if (targets.Count == 0)
        {
            return written;
        }

        Save(LatencyOverTime(run, targets), directory, "latency_over_time.png", "Latency over time: p50 (solid) and p99 (dashed) per second, CO-corrected", written);
        Save(RpsOverTime(run, targets), directory, "rps_over_time.png", "Throughput over time: completed responses per second (dots: offered rate of the stage)", written);
        Save(
            Distribution("Latency distribution, whole run (saturation steps excluded)", targets.Select(t => (t, run.TargetTotal(t).LatencyHistogram))),
            directory, "latency_distribution.png", "Latency distribution per target over the whole run (percentile curve)", written);
        foreach (var stage in run.Windows.Select(w => w.Stage).Distinct().Order())
        {
            var windows = run.Windows.Where(w => w.Stage == stage).ToList();
            var title = $"Stage {stage} · {windows[0].Simulation}";
            Save(
                Distribution("Latency distribution · " + title, windows.Select(w => (w.Target, w.Total.LatencyHistogram))),
                directory, $"latency_distribution_stage{stage}.png", $"Latency distribution at stage {stage} ({windows[0].Simulation}), every target at the same offered rate", written);
        }

        if (run.Resources.Samples.Count > 0)
        {
            Save(Cpu(run), directory, "resources_cpu.png", "CPU use per process (% of one core) over time", written);
        }

        return written;
    }

    private static void Save(Plot plot, string directory, string file, string caption, List<(string, string)> written)
    {
        plot.SavePng(Path.Combine(directory, file), Width, Height);
        written.Add((file, caption));
    }

    private static Plot NewPlot(string title, string xLabel, string yLabel)
    {
        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        plot.Title(title);
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        plot.ShowLegend(Alignment.UpperLeft);
        return plot;
    }

    private static Plot LatencyOverTime(RunResult run, IReadOnlyList<string> targets)
    {
        var plot = NewPlot("Latency per second (log scale)", "run time (s)", "latency (ms)");
        for (var i = 0; i < targets.Count; i++)
        {
            var color = Colors.Category10[i % Colors.Category10.Length];
            var first = true;
            foreach (var window in run.Windows.Where(w => w.Target == targets[i]))
            {
                var seconds = MixSeconds(window);
                if (seconds.Count == 0)
                {
                    continue;
                }

                var xs = seconds.Select(s => s.RunTimeSec).ToArray();
                var p50 = plot.Add.Scatter(xs, seconds.Select(s => Log(s.P50Ms)).ToArray(), color);
                var p99 = plot.Add.Scatter(xs, seconds.Select(s => Log(s.P99Ms)).ToArray(), color);
                p50.MarkerSize = 3;
                p99.MarkerSize = 3;
                p99.LinePattern = LinePattern.Dashed;
                if (first)
                {
                    p50.LegendText = targets[i] + " p50";
                    p99.LegendText = targets[i] + " p99";
                    first = false;
                }
            }
        }

        AddStageLines(plot, run);
        LogAxis(plot);
        return plot;
    }

    private static Plot RpsOverTime(RunResult run, IReadOnlyList<string> targets)
    {
        var plot = NewPlot("Throughput per second", "run time (s)", "responses / s");
        for (var i = 0; i < targets.Count; i++)
        {
            var color = Colors.Category10[i % Colors.Category10.Length];
            var first = true;
            foreach (var window in run.Windows.Where(w => w.Target == targets[i]))
            {
                var seconds = MixSeconds(window);
                if (seconds.Count == 0)
                {
                    continue;
                }

                var line = plot.Add.Scatter(seconds.Select(s => s.RunTimeSec).ToArray(), seconds.Select(s => s.Rps).ToArray(), color);
                line.MarkerSize = 3;
                if (window.OfferedRps is { } offered)
                {
                    var marker = plot.Add.Scatter(
                        new[] { window.StartSec, window.StartSec + window.DurationSec }, new[] { offered, offered }, color.WithAlpha(0.5));
                    marker.LinePattern = LinePattern.Dotted;
                    marker.MarkerSize = 0;
                }

                if (first)
                {
                    line.LegendText = targets[i];
                    first = false;
                }
            }
        }

        AddStageLines(plot, run);
        FromZero(plot);
        return plot;
    }

    private static Plot Distribution(string title, IEnumerable<(string Target, HdrHistogram.HistogramBase Histogram)> series)
    {
        var plot = NewPlot(title, "percentile", "latency (ms)");
        var i = 0;
        foreach (var (target, histogram) in series)
        {
            var curve = RunAnalysis.PercentileCurve(histogram);
            if (curve.Count > 0)
            {
                var line = plot.Add.Scatter(
                    curve.Select(point => -Math.Log10(1 - (point.Percentile / 100))).ToArray(),
                    curve.Select(point => Log(point.Ms)).ToArray(),
                    Colors.Category10[i % Colors.Category10.Length]);
                line.MarkerSize = 0;
                line.LineWidth = 2;
                line.LegendText = target;
            }

            i++;
        }

        var ticks = new NumericManual();
        string[] labels = ["0 %", "90 %", "99 %", "99.9 %", "99.99 %", "99.999 %"];
        for (var k = 0; k < labels.Length; k++)
        {
            ticks.AddMajor(k, labels[k]);
        }

        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.SetLimitsX(0, 5);
        LogAxis(plot);
        return plot;
    }

    private static Plot Cpu(RunResult run)
    {
        var plot = NewPlot("CPU per process", "run time (s)", "% of one core");
        var i = 0;
        foreach (var group in run.Resources.Samples.GroupBy(sample => sample.Role))
        {
            var samples = group.OrderBy(sample => sample.RunTimeSec).ToList();
            var line = plot.Add.Scatter(
                samples.Select(s => s.RunTimeSec).ToArray(), samples.Select(s => s.CpuPercent).ToArray(), Colors.Category10[i++ % Colors.Category10.Length]);
            line.MarkerSize = 2;
            line.LegendText = group.Key;
        }

        AddStageLines(plot, run);
        FromZero(plot);
        return plot;
    }

    private static List<SecondSample> MixSeconds(WindowResult window) =>
        window.Seconds.Where(s => s.Scenario == SecondSample.AllScenarios && s.Ok + s.Failed > 0).ToList();

    private static void AddStageLines(Plot plot, RunResult run)
    {
        foreach (var start in run.Windows.GroupBy(w => w.Stage).Select(g => g.Min(w => w.StartSec)))
        {
            var line = plot.Add.VerticalLine(start, 1, Colors.Gray.WithAlpha(0.4));
            line.LinePattern = LinePattern.Dotted;
        }
    }

    private static void FromZero(Plot plot)
    {
        plot.Axes.AutoScale();
        plot.Axes.SetLimitsY(0, plot.Axes.GetLimits().Top);
    }

    private static double Log(double ms) => Math.Log10(Math.Max(ms, FloorMs));

    private static void LogAxis(Plot plot)
    {
        plot.Axes.Left.TickGenerator = new NumericAutomatic
        {
            MinorTickGenerator = new LogMinorTickGenerator(),
            IntegerTicksOnly = true,
            LabelFormatter = value => Format.Ms(Math.Pow(10, value)),
        };
    }
}
