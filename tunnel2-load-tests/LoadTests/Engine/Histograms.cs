using HdrHistogram;

namespace Tunnel2.LoadTests.Engine;

/// <summary>One histogram shape for every latency of the harness: microseconds, 1 µs to 1 h, 3 significant digits.</summary>
internal static class Histograms
{
    /// <summary>One hour in microseconds: anything slower is clamped (requests time out long before).</summary>
    public const long HighestMicroseconds = 3_600_000_000;

    private const int SignificantDigits = 3;

    /// <summary>A single-threaded histogram for totals that only the stats reader touches.</summary>
    public static HistogramBase Create() => new LongHistogram(1, HighestMicroseconds, SignificantDigits);

    /// <summary>An interval recorder safe for any number of concurrent writers (HdrHistogram's WriterReaderPhaser).</summary>
    public static Recorder CreateRecorder() => HistogramFactory.With64BitBucketSize()
        .WithValuesFrom(1)
        .WithValuesUpTo(HighestMicroseconds)
        .WithPrecisionOf(SignificantDigits)
        .WithThreadSafeWrites()
        .WithThreadSafeReads()
        .Create();

    /// <summary>Microseconds, clamped into the trackable range.</summary>
    public static long ToMicroseconds(TimeSpan value) => Math.Clamp(value.Ticks / TimeSpan.TicksPerMicrosecond, 0, HighestMicroseconds);

    /// <summary>The sum of several histograms.</summary>
    public static HistogramBase Sum(IEnumerable<HistogramBase> histograms)
    {
        var sum = Create();
        foreach (var histogram in histograms)
        {
            sum.Add(histogram);
        }

        return sum;
    }
}

/// <summary>Latency statistics in milliseconds, from an HdrHistogram recorded in microseconds.</summary>
internal sealed record LatencySummary(
    long Count, double MinMs, double MeanMs, double P50Ms, double P75Ms, double P90Ms, double P95Ms, double P99Ms, double P999Ms, double MaxMs)
{
    public static readonly LatencySummary Empty = new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public static LatencySummary From(HistogramBase histogram)
    {
        ArgumentNullException.ThrowIfNull(histogram);
        if (histogram.TotalCount == 0)
        {
            return Empty;
        }

        return new LatencySummary(
            histogram.TotalCount,
            Ms(histogram.LowestEquivalentValue(MinValue(histogram))),
            histogram.GetMean() / 1000.0,
            Ms(histogram.GetValueAtPercentile(50)),
            Ms(histogram.GetValueAtPercentile(75)),
            Ms(histogram.GetValueAtPercentile(90)),
            Ms(histogram.GetValueAtPercentile(95)),
            Ms(histogram.GetValueAtPercentile(99)),
            Ms(histogram.GetValueAtPercentile(99.9)),
            Ms(histogram.GetMaxValue()));
    }

    /// <summary>The value of one percentile (0–100), or the mean for <see cref="double.NaN"/>.</summary>
    public double Percentile(double percentile) => percentile switch
    {
        50 => P50Ms,
        75 => P75Ms,
        90 => P90Ms,
        95 => P95Ms,
        99 => P99Ms,
        99.9 => P999Ms,
        100 => MaxMs,
        0 => MinMs,
        _ => throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "Only 0, 50, 75, 90, 95, 99, 99.9 and 100 are summarised."),
    };

    private static double Ms(long microseconds) => microseconds / 1000.0;

    private static long MinValue(HistogramBase histogram)
    {
        foreach (var value in histogram.RecordedValues())
        {
            return value.ValueIteratedTo;
        }

        return 0;
    }
}
