using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tunnel2.LoadTests.Cli;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Reporting;

namespace Tunnel2.LoadTests.Soak;

/// <summary>
/// <c>LoadTests soak --url http://…/session/&lt;id&gt;/ --rps 50 --duration 30m [--kill-log F] [--samples F] --out DIR</c>:
/// the load of <c>scripts/soak.sh</c>. Runs the checked mix (<see cref="SoakRequest"/>), then reads the script's
/// kill log and resource samples, attributes errors to kills, compares the server's resources at the start and the
/// end, writes <c>summary.md</c>/<c>summary.json</c>/<c>errors.tsv</c>/<c>seconds.tsv</c>, prints the verdict.
/// Exit codes: 0 pass, 99 fail (a BAD response, an error away from any kill, resource drift), 2 bad arguments or an
/// unreachable URL, 130 interrupted.
/// </summary>
internal static class SoakCommand
{
    private static readonly JsonSerializerOptions JsonOptions = OutputJson.Options;

    public static Command Create()
    {
        var url = new Option<Uri>("--url") { Description = "Base URL the mix's paths (loadtest/…) are appended to, e.g. http://127.0.0.1:12000/session/<id>/.", Required = true, CustomParser = ParseBaseUri };
        var rps = new Option<double>("--rps") { Description = "Open-loop arrivals per second.", DefaultValueFactory = _ => 50 };
        var duration = DurationOption("--duration", "How long the load runs (default 1m).");
        var timeout = DurationOption("--timeout", "Per-request deadline, head and body (default 30s).");
        var seed = new Option<int>("--seed") { Description = "Seed of the mix.", DefaultValueFactory = _ => 1 };
        var killLog = new Option<string?>("--kill-log") { Description = "The script's kill log (kill|ready<TAB>unix_ms<TAB>pid), read at the end." };
        var samples = new Option<string?>("--samples") { Description = "The script's resource samples of the server (TSV with a header naming its columns: unix_ms, rss_kb, fds_other, tcp_unpaired, and the breakdown columns), read at the end." };
        var warmUp = DurationOption("--warm-up", "Samples in the first part of the run are not compared (default 30s).");
        var window = DurationOption("--compare-window", "Seconds of samples whose medians are compared, at the start and at the end (default 60s).");
        var grace = DurationOption("--grace", "An error belongs to a kill if its request overlaps [kill, ready + grace] (default 5s).");
        var tolerance = new Option<double>("--tolerance") { Description = "Allowed resource change start → end, in percent.", DefaultValueFactory = _ => 10 };
        var output = new Option<string>("--out") { Description = "Folder for summary.md, summary.json, errors.tsv, seconds.tsv.", Required = true };

        var command = new Command("soak", "Steady open-loop mixed load with every response checked (ok, clear error, BAD); with the soak script's kill log and samples: error windows per kill and resource drift.")
        {
            url, rps, duration, timeout, seed, killLog, samples, warmUp, window, grace, tolerance, output,
        };
        rps.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<double>() is <= 0 or > 10_000)
            {
                result.AddError("--rps must be in (0, 10000].");
            }
        });
        command.SetAction((parse, cancellationToken) => RunAsync(
            new SoakOptions
            {
                BaseUrl = parse.GetValue(url)!,
                Rps = parse.GetValue(rps),
                Duration = parse.GetValue(duration) ?? TimeSpan.FromMinutes(1),
                RequestTimeout = parse.GetValue(timeout) ?? TimeSpan.FromSeconds(30),
                Seed = parse.GetValue(seed),
            },
            new SoakAnalysisOptions
            {
                WarmUp = parse.GetValue(warmUp) ?? TimeSpan.FromSeconds(30),
                CompareWindow = parse.GetValue(window) ?? TimeSpan.FromSeconds(60),
                Grace = parse.GetValue(grace) ?? TimeSpan.FromSeconds(5),
                TolerancePercent = parse.GetValue(tolerance),
            },
            parse.GetValue(killLog),
            parse.GetValue(samples),
            parse.GetValue(output)!,
            cancellationToken));
        return command;
    }

    /// <summary>The Markdown summary of a finished soak.</summary>
    public static string FormatSummary(SoakOptions options, SoakLoadResult load, SoakAnalysisResult analysis)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(load);
        ArgumentNullException.ThrowIfNull(analysis);
        var md = new StringBuilder();
        var seconds = (load.EndMs - load.StartMs) / 1000.0;
        md.AppendLine(CultureInfo.InvariantCulture, $"## Soak: {(analysis.Pass ? "PASS" : "FAIL")}{(load.Interrupted ? " (interrupted)" : "")}");
        md.AppendLine();
        md.AppendLine(CultureInfo.InvariantCulture, $"{options.Rps:0.##} requests/s open loop for {seconds:0} s against `{options.BaseUrl}` (mix: get 40 %, bytes 0 B–1 MiB 20 %, echo ≤ 64 KiB 15 %, chunked stream 64 KiB over ~300 ms 15 %, delay 200 ms 10 %; every body checked).");
        md.AppendLine();
        md.AppendLine("| Requests | ok | clear error | BAD | dropped (generator) |");
        md.AppendLine("|---:|---:|---:|---:|---:|");
        md.AppendLine(CultureInfo.InvariantCulture, $"| {load.Sent} | {load.Ok} | {load.Error} | {load.Bad} | {load.Dropped} |");
        md.AppendLine();
        md.AppendLine("By kind: " + string.Join(", ", load.ByKind.Select(static p => string.Create(CultureInfo.InvariantCulture, $"{p.Key} {p.Value}"))) + ".");
        md.AppendLine();

        if (analysis.Kills.Count > 0)
        {
            md.AppendLine("### Client kills (SIGKILL, then a new client process)");
            md.AppendLine();
            md.AppendLine("| # | at (s) | tunnel answers again after (s) | errors | error window (s) | reasons |");
            md.AppendLine("|---:|---:|---:|---:|---:|---|");
            foreach (var kill in analysis.Kills)
            {
                md.AppendLine(CultureInfo.InvariantCulture,
                    $"| {kill.Number} | {kill.AtSec:0.0} | {(kill.ReadySec is { } ready ? ready.ToString("0.00", CultureInfo.InvariantCulture) : "never")} | {kill.Errors} | {kill.WindowSec:0.00} | {kill.Reasons} |");
            }

            var withErrors = analysis.Kills.Where(static k => k.Errors > 0).ToList();
            md.AppendLine();
            md.AppendLine(CultureInfo.InvariantCulture,
                $"{analysis.Kills.Count} kills; errors per kill: median {Median(analysis.Kills.Select(static k => (double)k.Errors))}, max {analysis.Kills.Max(static k => k.Errors)}; error window: median {Median(analysis.Kills.Select(static k => k.WindowSec)):0.00} s, max {analysis.Kills.Max(static k => k.WindowSec):0.00} s; restart to first answer: median {Median(analysis.Kills.Where(static k => k.ReadySec is not null).Select(static k => k.ReadySec!.Value)):0.00} s. {withErrors.Count} kill(s) cost at least one request.");
            md.AppendLine();
        }

        md.AppendLine(CultureInfo.InvariantCulture, $"Errors away from any kill: {analysis.UnexplainedErrors}.");
        foreach (var record in analysis.UnexplainedSamples)
        {
            md.AppendLine(CultureInfo.InvariantCulture, $"- at {(record.EndMs - load.StartMs) / 1000.0:0.0} s: {record.Kind} `{record.PathAndQuery}`: {record.Reason}");
        }

        md.AppendLine();
        var bad = load.Records.Where(static r => r.Class == SoakClass.Bad).ToList();
        if (bad.Count > 0)
        {
            md.AppendLine("### BAD responses");
            md.AppendLine();
            foreach (var record in bad.Take(50))
            {
                md.AppendLine(CultureInfo.InvariantCulture, $"- at {(record.EndMs - load.StartMs) / 1000.0:0.0} s: {record.Kind} `{record.PathAndQuery}`: {record.Reason}");
            }

            md.AppendLine();
        }

        if (analysis.Resources.Count > 0)
        {
            md.AppendLine("### TunnelServer resources, start (after the warm-up) vs end (medians of the compare windows)");
            md.AppendLine();
            md.AppendLine("| Metric | start | end | change | allowed | |");
            md.AppendLine("|---|---:|---:|---:|---:|---|");
            foreach (var r in analysis.Resources)
            {
                var (start, end, allowed) = r.Metric.EndsWith("_kb", StringComparison.Ordinal) ? (r.Start / 1024, r.End / 1024, r.Allowed / 1024) : (r.Start, r.End, r.Allowed);
                var name = r.Metric switch
                {
                    "rss_kb" => "RSS (MiB)",
                    "rss_anon_kb" => "of which anonymous (heaps, stacks)",
                    "rss_file_kb" => "of which file-backed (mapped code)",
                    "rss_shmem_kb" => "of which shared (JIT code, double-mapped)",
                    "gc_committed_kb" => "GC committed (MiB, part of anonymous)",
                    "gc_heap_kb" => "GC heap after the last collection (MiB)",
                    "fds" => "open file descriptors",
                    "fds_other" => "descriptors other than sockets",
                    "tcp_unpaired" => "TCP sockets without a live peer",
                    "tcp_estab" => "TCP sockets, established",
                    "tcp_all" => "TCP sockets, any state",
                    "threads" => "threads",
                    var other => other,
                };
                md.AppendLine(CultureInfo.InvariantCulture, $"| {name} | {start:0.#} | {end:0.#} | {r.DeltaPercent:+0.0;-0.0;0.0} % | ±{allowed:0.#} | {(r.Breakdown ? "breakdown" : r.Pass ? "ok" : "**drift**")} |");
            }

            md.AppendLine();
        }

        md.AppendLine(analysis.Pass ? "Verdict: **PASS**" : "Verdict: **FAIL**: " + string.Join("; ", analysis.Failures));
        return md.ToString();
    }

    private static async Task<int> RunAsync(SoakOptions options, SoakAnalysisOptions analysisOptions, string? killLog, string? samplesFile, string output, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(output);

        // A URL that does not answer is a set-up problem, not a soak result.
        using (var probe = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) })
        {
            try
            {
                using var response = await probe.GetAsync(new Uri(options.BaseUrl, "loadtest/get"), cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    Console.Error.WriteLine($"soak: {options.BaseUrl}loadtest/get answered {(int)response.StatusCode}; is the tunnel up?");
                    return LoadTestsCommand.ExitUsage;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                Console.Error.WriteLine($"soak: {options.BaseUrl}loadtest/get failed: {e.Message}");
                return LoadTestsCommand.ExitUsage;
            }
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"soak: {options.Rps:0.##} RPS for {Duration.Format(options.Duration)} against {options.BaseUrl}"));
        var load = await new SoakRunner(options).RunAsync(Console.WriteLine, cancellationToken);
        var kills = killLog is not null && File.Exists(killLog) ? SoakAnalysis.ParseKills(await File.ReadAllLinesAsync(killLog, CancellationToken.None)) : [];
        var samples = samplesFile is not null && File.Exists(samplesFile) ? SoakAnalysis.ParseSamples(await File.ReadAllLinesAsync(samplesFile, CancellationToken.None)) : [];
        var analysis = SoakAnalysis.Analyze(load, kills, samples, analysisOptions);

        var summary = FormatSummary(options, load, analysis);
        await File.WriteAllTextAsync(Path.Combine(output, "summary.md"), summary, CancellationToken.None);
        await File.WriteAllTextAsync(
            Path.Combine(output, "summary.json"),
            JsonSerializer.Serialize(new { Options = options, Load = load with { Records = [], Seconds = [] }, Analysis = analysis, analysis.Pass }, JsonOptions),
            CancellationToken.None);
        await File.WriteAllLinesAsync(
            Path.Combine(output, "errors.tsv"),
            ["start_ms\tend_ms\tkind\tclass\treason\ttarget", .. load.Records.Select(static r => string.Create(CultureInfo.InvariantCulture, $"{r.StartMs}\t{r.EndMs}\t{r.Kind}\t{r.Class}\t{r.Reason}\t{r.PathAndQuery}"))],
            CancellationToken.None);
        await File.WriteAllLinesAsync(
            Path.Combine(output, "seconds.tsv"),
            ["unix_s\tok\terror\tbad", .. load.Seconds.Select(static s => string.Create(CultureInfo.InvariantCulture, $"{s.UnixSecond}\t{s.Ok}\t{s.Error}\t{s.Bad}"))],
            CancellationToken.None);

        Console.WriteLine();
        Console.Write(summary);
        if (load.Interrupted)
        {
            return LoadTestsCommand.ExitInterrupted;
        }

        return analysis.Pass ? LoadTestsCommand.ExitPass : LoadTestsCommand.ExitThresholds;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static Uri? ParseBaseUri(System.CommandLine.Parsing.ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            return uri;
        }

        result.AddError($"'{text}' is not an absolute http(s) URL.");
        return null;
    }

    private static Option<TimeSpan?> DurationOption(string name, string description) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (Duration.TryParse(text, out var value))
            {
                return value;
            }

            result.AddError($"'{text}' is not a duration (e.g. 500ms, 10s, 2m).");
            return null;
        },
    };
}
