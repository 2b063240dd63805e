using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;

namespace Tunnel2.LoadTests.Run;

/// <summary>Decides whether a window saturated its target, and where the knee of a ramp is.</summary>
internal static class KneeDetector
{
    /// <summary>The reasons a window counts as saturated (empty when it kept up), and whether the generator was the limit.</summary>
    public static (IReadOnlyList<string> Reasons, bool GeneratorBound) Evaluate(WindowResult window, SaturationCriteria criteria)
    {
        ArgumentNullException.ThrowIfNull(window);
        ArgumentNullException.ThrowIfNull(criteria);
        var reasons = new List<string>();
        var total = window.Total;
        if (total.SuccessRate < criteria.MinSuccessRate)
        {
            reasons.Add($"success {total.SuccessRate:P2} < {criteria.MinSuccessRate:P0}");
        }

        if (window.OfferedRps is { } offered && offered > 0 && window.AchievedRps < criteria.MinAchievedRatio * offered)
        {
            reasons.Add($"achieved {window.AchievedRps:0} RPS < {criteria.MinAchievedRatio:P0} of offered {offered:0}");
        }

        if (total.Latency.P99Ms > criteria.MaxP99Ms)
        {
            reasons.Add($"p99 {total.Latency.P99Ms:0.#} ms > {criteria.MaxP99Ms:0.#} ms");
        }

        var generatorBound = false;
        if (window.OpenLoop && total.Lag.P99Ms > criteria.MaxLagP99Ms)
        {
            reasons.Add($"generator lag p99 {total.Lag.P99Ms:0.#} ms > {criteria.MaxLagP99Ms:0.#} ms");
            generatorBound = true;
        }

        if (total.FailuresOf(FailureKind.Dropped) > 0)
        {
            reasons.Add($"{total.FailuresOf(FailureKind.Dropped)} requests dropped at the generator's in-flight cap");
            generatorBound = true;
        }

        return (reasons, generatorBound);
    }

    /// <summary>
    /// Walks the open-loop windows of <paramref name="target"/> in stage order; the knee lies between the last
    /// window that kept up and the first that did not.
    /// </summary>
    public static KneeResult Find(string target, IEnumerable<WindowResult> windows, SaturationCriteria criteria)
    {
        ArgumentNullException.ThrowIfNull(windows);
        double? sustained = null;
        foreach (var window in windows.Where(w => w.Target == target && w.OpenLoop && w.OfferedRps is not null).OrderBy(w => w.Stage))
        {
            var (reasons, generatorBound) = Evaluate(window, criteria);
            if (reasons.Count > 0)
            {
                return new KneeResult(target, sustained, window.OfferedRps, reasons, generatorBound);
            }

            sustained = Math.Max(sustained ?? 0, window.OfferedRps!.Value);
        }

        return new KneeResult(target, sustained, null, [], false);
    }
}
