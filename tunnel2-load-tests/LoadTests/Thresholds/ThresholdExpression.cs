using System.Globalization;
using System.Text.RegularExpressions;

namespace Tunnel2.LoadTests.Thresholds;

/// <summary>What a threshold expression aggregates.</summary>
internal enum Aggregation
{
    Percentile,
    Average,
    Median,
    Minimum,
    Maximum,
    Rate,
    Count,
}

/// <summary>
/// One k6-style condition that must hold, e.g. <c>p(99)&lt;10</c>, <c>avg&lt;20</c>, <c>rate&lt;=0.01</c>,
/// <c>count==0</c> (grafana.com/docs/k6/latest/using-k6/thresholds/). Durations are in milliseconds.
/// </summary>
internal sealed partial record ThresholdExpression(string Text, Aggregation Aggregation, double Percentile, string Operator, double Limit)
{
    public static ThresholdExpression Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = Pattern().Match(text.Replace(" ", "", StringComparison.Ordinal));
        if (!match.Success)
        {
            throw new FormatException($"'{text}' is not a threshold (examples: p(99)<10, avg<20, med<=5, max<100, rate<0.01, count==0).");
        }

        var aggregation = match.Groups["agg"].Value switch
        {
            "avg" => Aggregation.Average,
            "med" => Aggregation.Median,
            "min" => Aggregation.Minimum,
            "max" => Aggregation.Maximum,
            "rate" => Aggregation.Rate,
            "count" => Aggregation.Count,
            _ => Aggregation.Percentile,
        };
        var percentile = aggregation == Aggregation.Percentile ? double.Parse(match.Groups["p"].Value, CultureInfo.InvariantCulture) : 0;
        if (aggregation == Aggregation.Percentile && percentile is < 0 or > 100)
        {
            throw new FormatException($"'{text}': the percentile must lie between 0 and 100.");
        }

        return new ThresholdExpression(text.Trim(), aggregation, percentile, match.Groups["op"].Value, double.Parse(match.Groups["limit"].Value, CultureInfo.InvariantCulture));
    }

    /// <summary>True when <paramref name="observed"/> satisfies the condition.</summary>
    public bool IsSatisfiedBy(double observed) => Operator switch
    {
        "<" => observed < Limit,
        "<=" => observed <= Limit,
        ">" => observed > Limit,
        ">=" => observed >= Limit,
        "==" => observed == Limit,
        _ => observed != Limit,
    };

    public override string ToString() => Text;

    [GeneratedRegex(@"^(?:(?<agg>avg|med|min|max|rate|count)|p\((?<p>\d+(?:\.\d+)?)\))(?<op><=|>=|==|!=|<|>)(?<limit>-?\d+(?:\.\d+)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}

/// <summary>A metric name with optional tag filters, e.g. <c>http_req_duration{target:backend-tunnel,scenario:get}</c>.</summary>
internal sealed partial record ThresholdKey(string Text, string Metric, IReadOnlyDictionary<string, string> Tags)
{
    /// <summary>Metrics the harness knows (k6 names where k6 has one).</summary>
    public static readonly IReadOnlyList<string> Metrics = ["http_req_duration", "http_req_failed", "http_reqs", "generator_lag", "dropped_iterations"];

    /// <summary>Tags a key may filter on.</summary>
    public static readonly IReadOnlyList<string> TagNames = ["target", "kind", "backend", "scenario", "stage"];

    public static ThresholdKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var match = Pattern().Match(text.Replace(" ", "", StringComparison.Ordinal));
        if (!match.Success)
        {
            throw new FormatException($"'{text}' is not a threshold key (example: http_req_duration{{scenario:get,kind:tunnel}}).");
        }

        var metric = match.Groups["metric"].Value;
        if (!Metrics.Contains(metric))
        {
            throw new FormatException($"'{text}': unknown metric '{metric}' (known: {string.Join(", ", Metrics)}).");
        }

        var tags = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (Capture capture in match.Groups["tag"].Captures)
        {
            var parts = capture.Value.Split(':', 2);
            if (!TagNames.Contains(parts[0]))
            {
                throw new FormatException($"'{text}': unknown tag '{parts[0]}' (known: {string.Join(", ", TagNames)}).");
            }

            tags[parts[0]] = parts[1];
        }

        return new ThresholdKey(text.Trim(), metric, tags);
    }

    public override string ToString() => Text;

    [GeneratedRegex(@"^(?<metric>[a-z_]+)(?:\{(?<tag>[a-z]+:[A-Za-z0-9_.\-]+)(?:,(?<tag>[a-z]+:[A-Za-z0-9_.\-]+))*\})?$", RegexOptions.CultureInvariant)]
    private static partial Regex Pattern();
}

/// <summary>A key with its expression and where it came from.</summary>
internal sealed record Threshold(ThresholdKey Key, ThresholdExpression Expression, string Source)
{
    /// <summary>The original report's acceptance lines: p99 &gt; 50 ms, success &lt; 99 % or mean &gt; 20 ms fail the run.</summary>
    public static IReadOnlyList<Threshold> Defaults { get; } =
    [
        new(ThresholdKey.Parse("http_req_duration"), ThresholdExpression.Parse("p(99)<50"), "original report"),
        new(ThresholdKey.Parse("http_req_failed"), ThresholdExpression.Parse("rate<=0.01"), "original report"),
        new(ThresholdKey.Parse("http_req_duration"), ThresholdExpression.Parse("avg<20"), "original report"),
    ];

    /// <summary>Parses a profile's threshold map.</summary>
    public static IReadOnlyList<Threshold> FromProfile(IReadOnlyDictionary<string, IReadOnlyList<string>> thresholds, string source)
    {
        ArgumentNullException.ThrowIfNull(thresholds);
        return thresholds
            .SelectMany(pair => pair.Value.Select(expression => Create(ThresholdKey.Parse(pair.Key), ThresholdExpression.Parse(expression), source)))
            .ToList();
    }

    /// <summary>A threshold whose aggregation makes sense for its metric (checked when the profile loads, not at the end of a run).</summary>
    public static Threshold Create(ThresholdKey key, ThresholdExpression expression, string source)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(expression);
        var valid = key.Metric switch
        {
            "http_req_duration" or "generator_lag" => expression.Aggregation is not (Aggregation.Rate or Aggregation.Count),
            "http_req_failed" or "http_reqs" => expression.Aggregation is Aggregation.Rate or Aggregation.Count,
            _ => expression.Aggregation is Aggregation.Count,
        };
        return valid
            ? new Threshold(key, expression, source)
            : throw new FormatException($"'{expression}' does not apply to {key.Metric} (durations take p(N), avg, med, min, max; failures take rate or count).");
    }
}
