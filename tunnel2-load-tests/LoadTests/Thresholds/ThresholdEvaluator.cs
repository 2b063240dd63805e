using System.Globalization;
using HdrHistogram;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Targets;

namespace Tunnel2.LoadTests.Thresholds;

/// <summary>The verdict of one threshold on one target.</summary>
/// <param name="Observed">The measured value; null when no request matched (not a breach).</param>
internal sealed record ThresholdResult(string Key, string Expression, string Target, double? Observed, string Unit, bool Passed, string Source)
{
    /// <summary>One line for the console and the reports, e.g. <c>✗ http_req_duration p(99)&lt;50 on backend-tunnel: 63.2 ms</c>.</summary>
    public string Describe()
    {
        var value = Observed is { } observed
            ? observed.ToString(Unit == "ms" ? "0.###" : "0.#####", CultureInfo.InvariantCulture) + (Unit.Length > 0 ? " " + Unit : "")
            : "no data";
        return $"{(Observed is null ? "–" : Passed ? "✓" : "✗")} {Key} {Expression} on {Target}: {value} ({Source})";
    }
}

/// <summary>
/// Evaluates thresholds per target over the whole run (warm-up, checks and exploratory saturation steps excluded).
/// A key without a <c>target</c> tag is evaluated separately for every target it matches, so a breach names the
/// target; numbers of different targets are never mixed.
/// </summary>
internal static class ThresholdEvaluator
{
    public static IReadOnlyList<ThresholdResult> Evaluate(
        IEnumerable<Threshold> thresholds, IReadOnlyList<TargetDefinition> targets, IReadOnlyList<WindowResult> windows)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(windows);
        var results = new List<ThresholdResult>();
        foreach (var threshold in thresholds)
        {
            var tags = threshold.Key.Tags;
            foreach (var target in targets.Where(target => Matches(target, tags)))
            {
                var selected = windows
                    .Where(window => window.Target == target.Name && !window.Exploratory)
                    .Where(window => !tags.TryGetValue("stage", out var stage) || window.Stage.ToString(CultureInfo.InvariantCulture) == stage)
                    .ToList();
                var parts = tags.TryGetValue("scenario", out var scenario)
                    ? selected.SelectMany(window => window.Scenarios.Where(s => s.Name == scenario)).ToList()
                    : selected.Select(window => window.Total).ToList();
                var combined = ScenarioResult.Combine(scenario ?? SecondSample.AllScenarios, parts);
                if (combined.Requests == 0)
                {
                    results.Add(new ThresholdResult(threshold.Key.Text, threshold.Expression.Text, target.Name, null, "", true, threshold.Source));
                    continue;
                }

                var (value, unit) = Measure(threshold, combined, selected.Sum(window => window.DurationSec));
                results.Add(new ThresholdResult(
                    threshold.Key.Text, threshold.Expression.Text, target.Name, value, unit, threshold.Expression.IsSatisfiedBy(value), threshold.Source));
            }
        }

        return results;
    }

    private static bool Matches(TargetDefinition target, IReadOnlyDictionary<string, string> tags) =>
        (!tags.TryGetValue("target", out var name) || name == target.Name)
        && (!tags.TryGetValue("kind", out var kind) || kind == target.PathName)
        && (!tags.TryGetValue("backend", out var backend) || backend == target.BackendName);

    private static (double Value, string Unit) Measure(Threshold threshold, ScenarioResult result, double durationSec)
    {
        var expression = threshold.Expression;
        return threshold.Key.Metric switch
        {
            "http_req_duration" => (Distribution(result.LatencyHistogram, expression), "ms"),
            "generator_lag" => (Distribution(result.LagHistogram, expression), "ms"),
            "http_req_failed" => expression.Aggregation switch
            {
                Aggregation.Rate => ((double)result.Failed / result.Requests, ""),
                Aggregation.Count => (result.Failed, ""),
                _ => throw Unsupported(threshold),
            },
            "http_reqs" => expression.Aggregation switch
            {
                Aggregation.Rate => (durationSec <= 0 ? 0 : result.OkInWindow / durationSec, "/s"),
                Aggregation.Count => (result.Requests, ""),
                _ => throw Unsupported(threshold),
            },
            "dropped_iterations" => expression.Aggregation == Aggregation.Count ? (result.FailuresOf(FailureKind.Dropped), "") : throw Unsupported(threshold),
            _ => throw Unsupported(threshold),
        };
    }

    private static double Distribution(HistogramBase histogram, ThresholdExpression expression) => expression.Aggregation switch
    {
        Aggregation.Percentile => histogram.GetValueAtPercentile(expression.Percentile) / 1000.0,
        Aggregation.Average => histogram.GetMean() / 1000.0,
        Aggregation.Median => histogram.GetValueAtPercentile(50) / 1000.0,
        Aggregation.Minimum => LatencySummary.From(histogram).MinMs,
        Aggregation.Maximum => histogram.GetMaxValue() / 1000.0,
        _ => throw new FormatException($"'{expression}' does not apply to a latency; use p(N), avg, med, min or max."),
    };

    private static FormatException Unsupported(Threshold threshold) =>
        new($"'{threshold.Expression}' does not apply to {threshold.Key.Metric}.");
}
