using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using Tunnel2.LoadTests.Bench;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Reporting;

namespace Tunnel2.LoadTests.Cli;

/// <summary>
/// The benchmarking commands used by <c>scripts/compare.sh</c>: <c>speedtest</c> (multi-stream throughput),
/// <c>alloc</c> (managed bytes per request in other processes) and <c>plot</c> (grouped bar charts).
/// </summary>
internal static class BenchCommands
{
    private static readonly JsonSerializerOptions JsonOptions = OutputJson.Options;

    public static Command CreateSpeedTestCommand()
    {
        var urls = new Option<string[]>("--url")
        {
            Description = "[label=]URL; repeat to compare paths (the first is the reference). '{size}' in the URL becomes the payload size, e.g. http://127.0.0.1:12007/loadtest/bytes/{size}.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var mode = new Option<SpeedTestMode>("--mode") { Description = "download (GET, read the body) or upload (send a body).", DefaultValueFactory = _ => SpeedTestMode.Download };
        var streams = new Option<int>("--streams") { Description = "Parallel transfers, one connection each.", DefaultValueFactory = _ => 4 };
        var payloadSize = SizeOption("--payload-size", "Bytes per request (upload body; {size} of a download URL), e.g. 64MiB.", 64 * ByteSize.MiB);
        var duration = DurationOption("--duration", "Measured time per URL (default 10s).");
        var warmUp = DurationOption("--warm-up", "Unmeasured time first (default 1s).");
        var repeat = new Option<int>("--repeat") { Description = "Runs per URL, alternating the URLs; the comparison uses medians.", DefaultValueFactory = _ => 1 };
        var method = new Option<string>("--method") { Description = "Upload method (TestBackend /loadtest/info takes any).", DefaultValueFactory = _ => "PUT" };
        var json = new Option<string?>("--json") { Description = "Write every run (with its seconds) to this JSON file." };

        var command = new Command("speedtest", "Multi-stream throughput test (Mbit/s and requests/s per second, then a summary), comparing URLs side by side.")
        {
            urls, mode, streams, payloadSize, duration, warmUp, repeat, method, json,
        };
        command.Validators.Add(result =>
        {
            foreach (var text in result.GetValue(urls) ?? [])
            {
                if (!TryParseLabelledUrl(text, out _, out _))
                {
                    result.AddError($"'{text}' is not [label=]http(s)://… URL.");
                }
            }
        });
        AtLeast(streams, 1);
        AtLeast(repeat, 1);
        command.SetAction((parse, cancellationToken) => SpeedTestAsync(
            parse.GetValue(urls)!,
            new SpeedTestOptions
            {
                Label = "",
                Url = "",
                Mode = parse.GetValue(mode),
                Streams = parse.GetValue(streams),
                PayloadSize = parse.GetValue(payloadSize),
                Duration = parse.GetValue(duration) ?? TimeSpan.FromSeconds(10),
                WarmUp = parse.GetValue(warmUp) ?? TimeSpan.FromSeconds(1),
                UploadMethod = HttpMethod.Parse(parse.GetValue(method)),
            },
            parse.GetValue(repeat),
            parse.GetValue(json),
            cancellationToken));
        return command;
    }

    public static Command CreateAllocCommand()
    {
        var url = new Option<string>("--url") { Description = "URL to GET (e.g. the tunnel's /session/<id>/loadtest/get).", Required = true };
        var pids = new Option<string[]>("--pid")
        {
            Description = "role=PID of a .NET process to measure (repeatable), e.g. TunnelServer=1234.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var requests = new Option<long>("--requests") { Description = "Measured requests.", DefaultValueFactory = _ => 100_000 };
        var concurrency = new Option<int>("--concurrency") { Description = "Requests in flight (closed loop).", DefaultValueFactory = _ => 50 };
        var warmUp = new Option<long>("--warm-up-requests") { Description = "Unmeasured requests first.", DefaultValueFactory = _ => 5_000 };
        var idle = new Option<int>("--idle-intervals") { Description = "Seconds of idle allocation measured before the load and subtracted.", DefaultValueFactory = _ => 2 };
        var types = new Option<int>("--types") { Description = "Name the N types each process allocates most (allocation-tick sampling); 0 = off.", DefaultValueFactory = _ => 8 };
        var json = new Option<string?>("--json") { Description = "Write the result to this JSON file." };

        var command = new Command("alloc", "Managed bytes allocated per request by other .NET processes (runtime alloc-rate counter over EventPipe) during a fixed number of GETs.")
        {
            url, pids, requests, concurrency, warmUp, idle, types, json,
        };
        command.Validators.Add(result =>
        {
            if (!Uri.TryCreate(result.GetValue(url), UriKind.Absolute, out _))
            {
                result.AddError("--url must be an absolute URL.");
            }

            foreach (var text in result.GetValue(pids) ?? [])
            {
                if (!TryParseProcess(text, out _))
                {
                    result.AddError($"'{text}' is not role=PID.");
                }
            }
        });
        AtLeast(requests, 1);
        AtLeast(concurrency, 1);
        AtLeast(warmUp, 0);
        AtLeast(idle, 1);
        AtLeast(types, 0);
        command.SetAction((parse, cancellationToken) => AllocAsync(
            new AllocationProbeOptions
            {
                Url = new Uri(parse.GetValue(url)!),
                Processes = parse.GetValue(pids)!.Select(text => TryParseProcess(text, out var process) ? process : throw new FormatException(text)).ToList(),
                Requests = parse.GetValue(requests),
                Concurrency = parse.GetValue(concurrency),
                WarmUpRequests = parse.GetValue(warmUp),
                IdleIntervals = parse.GetValue(idle),
                TopTypes = parse.GetValue(types),
            },
            parse.GetValue(json),
            cancellationToken));
        return command;
    }

    public static Command CreatePlotCommand()
    {
        var tsv = new Option<string>("--tsv") { Description = "Input: lines of group<TAB>series<TAB>value.", Required = true };
        var output = new Option<string>("--out") { Description = "PNG to write.", Required = true };
        var title = new Option<string>("--title") { Description = "Chart title.", DefaultValueFactory = _ => "" };
        var yLabel = new Option<string>("--ylabel") { Description = "Y axis label.", DefaultValueFactory = _ => "" };
        var log = new Option<bool>("--log") { Description = "Log10 y axis (latencies whose tails differ 100×)." };

        var command = new Command("plot", "Grouped bar chart (PNG) from a TSV of group, series, value.") { tsv, output, title, yLabel, log };
        command.SetAction(parse =>
        {
            try
            {
                var points = ComparisonChart.ReadTsv(parse.GetValue(tsv)!);
                ComparisonChart.Write(points, parse.GetValue(output)!, parse.GetValue(title)!, parse.GetValue(yLabel)!, parse.GetValue(log));
                return LoadTestsCommand.ExitPass;
            }
            catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return LoadTestsCommand.ExitUsage;
            }
        });
        return command;
    }

    /// <summary><c>label=http://…</c> or a bare URL (labelled host:port).</summary>
    public static bool TryParseLabelledUrl(string text, out string label, out string url)
    {
        ArgumentNullException.ThrowIfNull(text);
        var split = text.IndexOf('=', StringComparison.Ordinal);
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        if (split > 0 && (scheme < 0 || split < scheme))
        {
            label = text[..split];
            url = text[(split + 1)..];
        }
        else
        {
            label = "";
            url = text;
        }

        var probe = url.Replace(SpeedTestOptions.SizePlaceholder, "1", StringComparison.Ordinal);
        if (!Uri.TryCreate(probe, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            return false;
        }

        if (label.Length == 0)
        {
            label = uri.Authority;
        }

        return true;
    }

    public static bool TryParseProcess(string text, out ProbedProcess process)
    {
        ArgumentNullException.ThrowIfNull(text);
        var split = text.IndexOf('=', StringComparison.Ordinal);
        var role = split > 0 ? text[..split] : "pid";
        var pidText = split > 0 ? text[(split + 1)..] : text;
        var ok = int.TryParse(pidText, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 0;
        process = new ProbedProcess(role == "pid" && ok ? $"pid {pid}" : role, pid);
        return ok;
    }

    private static async Task<int> SpeedTestAsync(string[] urls, SpeedTestOptions template, int repeat, string? json, CancellationToken cancellationToken)
    {
        var targets = urls.Select(text => TryParseLabelledUrl(text, out var label, out var url) ? template with { Label = label, Url = url } : throw new FormatException(text)).ToList();
        var runs = new List<SpeedTestResult>();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"speedtest: {(template.Mode == SpeedTestMode.Download ? "download" : "upload")}, {template.Streams} stream(s), {ByteSize.Format(template.PayloadSize)} per request, {Duration.Format(template.Duration)} per run (+{Duration.Format(template.WarmUp)} warm-up), {repeat} run(s) per URL, alternating"));
        try
        {
            for (var r = 1; r <= repeat; r++)
            {
                foreach (var target in targets)
                {
                    Console.WriteLine($"── {target.Label} (run {r}/{repeat}) {target.ResolvedUri}");
                    var result = await new SpeedTestRunner(target).RunAsync(
                        second => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"  {second.Second,3}s {second.Mbps,10:#,0.0} Mbit/s {second.Bytes / 1048576.0,9:#,0.0} MiB {second.Requests,6} req/s{(second.Failures > 0 ? $" {second.Failures} failed" : "")}")),
                        cancellationToken);
                    runs.Add(result);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  = {result.MeanMbps:#,0.0} Mbit/s mean, {result.MedianMbps:#,0.0} median of seconds (min {result.MinMbps:#,0.0}, max {result.MaxMbps:#,0.0}), {result.Requests} requests ({result.RequestsPerSec:0.##}/s), {result.Failures} failed{(result.FirstError is { } e ? " — first: " + e : "")}"));
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Console.WriteLine("interrupted");
            return LoadTestsCommand.ExitInterrupted;
        }

        var summary = targets.Select(target =>
        {
            var mine = runs.Where(run => run.Label == target.Label).ToList();
            return (target.Label,
                Mbps: SpeedTestRunner.Median(mine.Select(run => run.MeanMbps).Order().ToList()),
                Rps: SpeedTestRunner.Median(mine.Select(run => run.RequestsPerSec).Order().ToList()),
                Failures: mine.Sum(run => run.Failures));
        }).ToList();

        Console.WriteLine();
        Console.WriteLine($"{"path",-16} {"Mbit/s",12} {"req/s",9} {"× first",8} {"failed",7}");
        foreach (var row in summary)
        {
            var ratio = summary[0].Mbps > 0 ? row.Mbps / summary[0].Mbps : 0;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{row.Label,-16} {row.Mbps,12:#,0.0} {row.Rps,9:0.##} {ratio,8:0.00} {row.Failures,7}"));
        }

        if (json is not null)
        {
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(new { Runs = runs, Summary = summary.Select(s => new { s.Label, s.Mbps, s.Rps, s.Failures }) }, JsonOptions), CancellationToken.None);
        }

        return summary.Any(row => row.Failures > 0) ? LoadTestsCommand.ExitThresholds : LoadTestsCommand.ExitPass;
    }

    private static async Task<int> AllocAsync(AllocationProbeOptions options, string? json, CancellationToken cancellationToken)
    {
        using var client = new HttpLoadClient(new HttpLoadClientOptions { MaxConnectionsPerServer = options.Concurrency }, TimeProvider.System);
        AllocationProbeResult result;
        try
        {
            result = await new AllocationProbe(options).RunAsync(client, text => Console.WriteLine("alloc: " + text), cancellationToken);
        }
        catch (InvalidOperationException e)
        {
            Console.WriteLine("error: " + e.Message);
            return LoadTestsCommand.ExitUsage;
        }
        catch (TimeoutException e)
        {
            Console.WriteLine("error: " + e.Message);
            return LoadTestsCommand.ExitUsage;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return LoadTestsCommand.ExitInterrupted;
        }

        var load = result.Load;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"alloc: {load.Ok} ok, {load.Failed} failed in {load.DurationSec:0.00} s ({load.Rps:0} RPS) — {result.Url}"));
        foreach (var process in result.Processes)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {process.Role,-14} PID {process.Pid,-7} {process.BytesPerRequest,9:#,0.0} B/request  ({process.LoadBytes / 1048576.0:#,0.0} MiB in the load, idle {process.IdleBytesPerSec / 1024.0:#,0.0} KiB/s, GCs gen0 {process.Gen0} gen1 {process.Gen1} gen2 {process.Gen2})"));
            foreach (var type in process.TopTypes)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"      {type.Share * 100,5:0.0} %  ≈{type.Share * process.BytesPerRequest,8:#,0} B/request  {type.Type}"));
            }
        }

        if (json is not null)
        {
            await File.WriteAllTextAsync(json, JsonSerializer.Serialize(result, JsonOptions), CancellationToken.None);
        }

        return load.Failed > 0 ? LoadTestsCommand.ExitThresholds : LoadTestsCommand.ExitPass;
    }

    private static void AtLeast<T>(Option<T> option, T minimum)
        where T : System.Numerics.INumber<T>
    {
        option.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<T>() < minimum)
            {
                result.AddError($"{option.Name} must be at least {minimum}.");
            }
        });
    }

    private static Option<long> SizeOption(string name, string description, long defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
            if (ByteSize.TryParse(text, out var value) && value > 0)
            {
                return value;
            }

            result.AddError($"'{text}' is not a size (e.g. 65536, 64KiB, 1MiB, 1GiB).");
            return 0;
        },
    };

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
