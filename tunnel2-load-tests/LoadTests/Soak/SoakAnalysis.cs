using System.Globalization;

namespace Tunnel2.LoadTests.Soak;

/// <summary>One kill of the client (Unix ms) and when the tunnel answered through the new client again (null: never).</summary>
internal sealed record SoakKill(int Number, long KillMs, long? ReadyMs);

/// <summary>One resource sample of the server process (Unix ms; values by column name, e.g. rss_kb, fds).</summary>
internal sealed record SoakSample(long UnixMs, IReadOnlyDictionary<string, double> Values);

/// <summary>The errors attributed to one kill.</summary>
/// <param name="WindowSec">From the kill to the end of the last request that failed because of it (0: none failed).</param>
internal sealed record SoakKillWindow(int Number, double AtSec, double? ReadySec, long Errors, double WindowSec, string Reasons);

/// <summary>A resource at the start (after the warm-up) and at the end of the run: medians of a window of samples.</summary>
/// <param name="Breakdown">A part of another metric (RSS: anonymous, file-backed, shared), reported to explain drift, never a verdict by itself.</param>
internal sealed record SoakResourceDelta(string Metric, double Start, double End, int StartSamples, int EndSamples, double DeltaPercent, double Allowed, bool Pass, bool Breakdown = false);

/// <summary>The soak's verdict inputs and result.</summary>
internal sealed record SoakAnalysisResult(
    IReadOnlyList<SoakKillWindow> Kills,
    long UnexplainedErrors,
    IReadOnlyList<SoakRecord> UnexplainedSamples,
    IReadOnlyList<SoakResourceDelta> Resources,
    IReadOnlyList<string> Failures)
{
    public bool Pass => Failures.Count == 0;
}

/// <summary>Settings of the analysis.</summary>
internal sealed record SoakAnalysisOptions
{
    /// <summary>Samples before load start + this are ignored (JIT, pools, heap growth to its working size).</summary>
    public TimeSpan WarmUp { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How many seconds of samples make the start and the end medians.</summary>
    public TimeSpan CompareWindow { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>An error belongs to a kill if its request overlaps [kill, ready + grace].</summary>
    public TimeSpan Grace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest change allowed between the start and the end, in percent of the start.</summary>
    public double TolerancePercent { get; init; } = 10;

    /// <summary>
    /// For counts (descriptors, sockets) the allowed change is at least this many: one pooled connection more or
    /// less is not a leak, but ±10 % of 20 sockets would call it one. A leak per kill still shows (60 kills in 30 min).
    /// </summary>
    public double CountSlack { get; init; } = 5;
}

/// <summary>Error windows per kill, unexplained errors, and resource drift: the numbers behind the soak's verdict.</summary>
internal static class SoakAnalysis
{
    /// <summary>
    /// Metrics compared start vs end; counts get <see cref="SoakAnalysisOptions.CountSlack"/>. The verdict's: RSS, the
    /// descriptors that are not sockets, and the sockets without a live peer (a leaked connection). The breakdown
    /// explains drift and is never a verdict: the parts of RSS, the GC's share of it, and the raw descriptor and
    /// socket counts, which follow how many connections the load generator keeps open.
    /// </summary>
    public static readonly IReadOnlyList<(string Column, bool IsCount, bool Breakdown)> ComparedMetrics =
    [
        ("rss_kb", false, false), ("fds_other", true, false), ("tcp_unpaired", true, false),
        ("rss_anon_kb", false, true), ("rss_file_kb", false, true), ("rss_shmem_kb", false, true),
        ("gc_committed_kb", false, true), ("gc_heap_kb", false, true),
        ("fds", true, true), ("tcp_estab", true, true), ("tcp_all", true, true), ("threads", true, true),
    ];

    public static SoakAnalysisResult Analyze(SoakLoadResult load, IReadOnlyList<SoakKill> kills, IReadOnlyList<SoakSample> samples, SoakAnalysisOptions options)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(kills);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (load.Bad > 0)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"{load.Bad} BAD response(s): a body that looked complete but was not, wrong content, or an unexpected status"));
        }

        var errors = load.Records.Where(static r => r.Class == SoakClass.Error).ToList();
        var attributed = new HashSet<SoakRecord>(ReferenceEqualityComparer.Instance);
        var windows = new List<SoakKillWindow>();
        foreach (var kill in kills.OrderBy(static k => k.KillMs))
        {
            var until = (kill.ReadyMs ?? load.EndMs) + (long)options.Grace.TotalMilliseconds;
            var mine = errors.Where(r => r.EndMs >= kill.KillMs && r.StartMs <= until).ToList();
            attributed.UnionWith(mine);
            var reasons = string.Join(", ", mine.GroupBy(static r => r.Reason).OrderByDescending(static g => g.Count()).Select(static g => string.Create(CultureInfo.InvariantCulture, $"{g.Key} ×{g.Count()}")));
            windows.Add(new SoakKillWindow(
                kill.Number,
                (kill.KillMs - load.StartMs) / 1000.0,
                kill.ReadyMs is { } ready ? (ready - kill.KillMs) / 1000.0 : null,
                mine.Count,
                mine.Count == 0 ? 0 : (mine.Max(static r => r.EndMs) - kill.KillMs) / 1000.0,
                reasons));
            if (kill.ReadyMs is null)
            {
                failures.Add(string.Create(CultureInfo.InvariantCulture, $"after kill {kill.Number} the tunnel never answered again"));
            }
        }

        // Records are capped; the error count is not. Errors beyond the cap cannot be attributed, so count them as unexplained.
        var unrecorded = Math.Max(0, load.Error - errors.Count);
        var unexplained = errors.Where(r => !attributed.Contains(r)).ToList();
        var unexplainedCount = unexplained.Count + unrecorded;
        if (unexplainedCount > 0)
        {
            failures.Add(string.Create(CultureInfo.InvariantCulture, $"{unexplainedCount} error(s) away from any kill"));
        }

        var resources = CompareResources(load, samples, options);
        failures.AddRange(resources.Where(static r => !r.Pass && !r.Breakdown).Select(r => string.Create(CultureInfo.InvariantCulture,
            $"{r.Metric} changed {r.DeltaPercent:+0.0;-0.0} % ({r.Start:0.#} → {r.End:0.#}; allowed ±{r.Allowed:0.#})")));
        if (resources.Count == 0 && samples.Count > 0)
        {
            failures.Add("not enough resource samples after the warm-up to compare the start with the end");
        }

        return new SoakAnalysisResult(windows, unexplainedCount, [.. unexplained.Take(20)], resources, failures);
    }

    /// <summary>Median of each metric over the first window after the warm-up and over the last window of the load.</summary>
    public static IReadOnlyList<SoakResourceDelta> CompareResources(SoakLoadResult load, IReadOnlyList<SoakSample> samples, SoakAnalysisOptions options)
    {
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(options);
        var from = load.StartMs + (long)options.WarmUp.TotalMilliseconds;
        var to = load.EndMs;
        var span = to - from;
        if (span <= 0)
        {
            return [];
        }

        // Never let the two windows overlap: at most a third of what is left after the warm-up each.
        var window = (long)Math.Min(options.CompareWindow.TotalMilliseconds, span / 3.0);
        var first = samples.Where(s => s.UnixMs >= from && s.UnixMs < from + window).ToList();
        var last = samples.Where(s => s.UnixMs > to - window && s.UnixMs <= to).ToList();
        var result = new List<SoakResourceDelta>();
        foreach (var (column, isCount, breakdown) in ComparedMetrics)
        {
            var a = Values(first, column);
            var b = Values(last, column);
            if (a.Count == 0 || b.Count == 0)
            {
                continue;
            }

            var start = Median(a);
            var end = Median(b);
            var delta = start == 0 ? (end == 0 ? 0 : 100) : (end - start) / start * 100;
            var allowed = start * options.TolerancePercent / 100;
            if (isCount)
            {
                allowed = Math.Max(allowed, options.CountSlack);
            }

            result.Add(new SoakResourceDelta(column, start, end, a.Count, b.Count, delta, allowed, Math.Abs(end - start) <= allowed, breakdown));
        }

        return result;
    }

    /// <summary>Reads the kill log the soak script writes: <c>kill|ready &lt;TAB&gt; unix_ms &lt;TAB&gt; pid</c> per line, '#' comments.</summary>
    public static IReadOnlyList<SoakKill> ParseKills(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var kills = new List<SoakKill>();
        foreach (var line in lines)
        {
            var fields = line.Split('\t', StringSplitOptions.TrimEntries);
            if (line.StartsWith('#') || fields.Length < 2 || !long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
            {
                continue;
            }

            if (fields[0] == "kill")
            {
                kills.Add(new SoakKill(kills.Count + 1, ms, null));
            }
            else if (fields[0] == "ready" && kills.Count > 0 && kills[^1].ReadyMs is null)
            {
                kills[^1] = kills[^1] with { ReadyMs = ms };
            }
        }

        return kills;
    }

    /// <summary>Reads the sampler's TSV: a header line naming the columns (the first is unix_ms), then one line per sample.</summary>
    public static IReadOnlyList<SoakSample> ParseSamples(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        string[]? header = null;
        var samples = new List<SoakSample>();
        foreach (var line in lines)
        {
            var fields = line.Split('\t', StringSplitOptions.TrimEntries);
            if (header is null)
            {
                header = fields;
                continue;
            }

            if (fields.Length != header.Length || !long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
            {
                continue;
            }

            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            for (var i = 1; i < fields.Length; i++)
            {
                if (double.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var value))
                {
                    values[header[i]] = value;
                }
            }

            samples.Add(new SoakSample(ms, values));
        }

        return samples;
    }

    private static List<double> Values(List<SoakSample> samples, string column)
        => [.. samples.Where(s => s.Values.ContainsKey(column)).Select(s => s.Values[column]).Order()];

    private static double Median(List<double> sorted)
        => sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
}
