using System.Globalization;
using ScottPlot;
using ScottPlot.TickGenerators;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>One bar: its group on the x axis (e.g. "1000 RPS p99"), its series (e.g. "nginx") and value.</summary>
internal sealed record BarPoint(string Group, string Series, double Value);

/// <summary>
/// Grouped bar charts for comparisons (scripts/compare.sh: one group per metric, one bar per path), from a
/// tab-separated file <c>group⇥series⇥value</c>; blank lines and lines starting with '#' are skipped.
/// </summary>
internal static class ComparisonChart
{
    private const int Width = 1200;
    private const int Height = 560;

    public static IReadOnlyList<BarPoint> ReadTsv(string path)
    {
        var points = new List<BarPoint>();
        var number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split('\t');
            if (fields.Length != 3 || !double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
            {
                throw new FormatException($"{path}:{number}: expected 'group<TAB>series<TAB>number', got '{line}'.");
            }

            points.Add(new BarPoint(fields[0], fields[1], value));
        }

        return points;
    }

    /// <summary>Writes a PNG: groups in order of first appearance, series likewise, each bar labelled with its value.</summary>
    /// <param name="logScale">
    /// A log10 y axis, for latencies where one path's tail is 100× another's; bars then rise from the decade below the
    /// smallest value, and labels keep the real values.
    /// </param>
    public static void Write(IReadOnlyList<BarPoint> points, string path, string title, string yLabel, bool logScale = false)
    {
        ArgumentNullException.ThrowIfNull(points);
        var positive = points.Where(p => p.Value > 0).Select(p => p.Value).DefaultIfEmpty(1).Min();
        var logBase = Math.Floor(Math.Log10(positive));
        var groups = points.Select(p => p.Group).Distinct().ToList();
        var series = points.Select(p => p.Series).Distinct().ToList();
        var slot = 0.8 / Math.Max(1, series.Count);

        var plot = new Plot();
        plot.Font.Set("DejaVu Sans");
        plot.Title(title);
        plot.YLabel(yLabel);

        var bars = new List<Bar>();
        for (var s = 0; s < series.Count; s++)
        {
            var color = Colors.Category10[s % Colors.Category10.Length];
            foreach (var point in points.Where(p => p.Series == series[s]))
            {
                var g = groups.IndexOf(point.Group);
                bars.Add(new Bar
                {
                    Position = g + ((s - ((series.Count - 1) / 2.0)) * slot),
                    // On a log axis bars are drawn in decades above logBase (all positive), so labels sit above them.
                    Value = logScale ? Math.Log10(Math.Max(point.Value, Math.Pow(10, logBase))) - logBase : point.Value,
                    Size = slot * 0.9,
                    FillColor = color,
                    Label = FormatValue(point.Value),
                });
            }

            plot.Legend.ManualItems.Add(new LegendItem { LabelText = series[s], FillColor = color });
        }

        var barPlot = plot.Add.Bars(bars);
        barPlot.ValueLabelStyle.FontSize = 10;

        var ticks = new NumericManual();
        for (var g = 0; g < groups.Count; g++)
        {
            ticks.AddMajor(g, groups[g]);
        }

        plot.Axes.Bottom.TickGenerator = ticks;
        if (logScale)
        {
            plot.Axes.Left.TickGenerator = new NumericAutomatic
            {
                MinorTickGenerator = new LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = value => FormatValue(Math.Pow(10, value + logBase)),
            };
        }

        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        // Outside the data area: inside, it would cover the first group's bars and labels.
        plot.ShowLegend(Edge.Right);
        plot.Axes.Margins(bottom: 0, top: 0.15);
        if (logScale)
        {
            plot.Axes.AutoScale();
            var limits = plot.Axes.GetLimits();
            plot.Axes.SetLimitsY(0, limits.Top + 0.3);
        }

        plot.SavePng(path, Width, Height);
    }

    private static string FormatValue(double value) => value switch
    {
        >= 1000 => value.ToString("#,0", CultureInfo.InvariantCulture),
        >= 10 => value.ToString("0.#", CultureInfo.InvariantCulture),
        _ => value.ToString("0.###", CultureInfo.InvariantCulture),
    };
}
