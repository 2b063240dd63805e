using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.WebSockets;
using Tunnel2.LoadTests.Reporting;

namespace Tunnel2.LoadTests.Cli;

/// <summary>
/// <c>LoadTests ws --url [label=]ws://… [--url …] --sockets 1000 --rate 1 --duration 30s</c>: N concurrent WebSockets
/// against an echo endpoint per URL, one URL after another, then a side-by-side table (Markdown with --markdown).
/// Exit 0 when no run had any failure, 99 otherwise, 2 for bad arguments, 130 interrupted.
/// </summary>
internal static class WebSocketCommand
{
    private static readonly JsonSerializerOptions JsonOptions = OutputJson.Options;

    public static Command Create()
    {
        var urls = new Option<string[]>("--url")
        {
            Description = "[label=]URL of a WebSocket echo (ws, wss, or http(s) meaning ws(s)); repeat to compare, e.g. direct=ws://127.0.0.1:12007/loadtest/ws tunnel=ws://127.0.0.1:12000/session/<id>/loadtest/ws.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var sockets = new Option<int>("--sockets") { Description = "Concurrent WebSockets per URL.", DefaultValueFactory = _ => 1000 };
        var rate = new Option<double>("--rate") { Description = "Messages per second each socket sends (random phase per socket).", DefaultValueFactory = _ => 1 };
        var size = new Option<int>("--message-size") { Description = $"Bytes per message (at least {WebSocketSchedule.HeaderSize}).", DefaultValueFactory = _ => 64 };
        var duration = DurationOption("--duration", "How long the sockets send, after connecting (default 30s).");
        var connectConcurrency = new Option<int>("--connect-concurrency") { Description = "Connects in progress at once.", DefaultValueFactory = _ => 100 };
        var connectTimeout = DurationOption("--connect-timeout", "Deadline of one connect (default 10s).");
        var connectPhase = DurationOption("--connect-phase-timeout", "Deadline of the whole connect phase (default 120s).");
        var echoTimeout = DurationOption("--echo-timeout", "After the last send, how long echoes may take (default 10s).");
        var seed = new Option<int>("--seed") { Description = "Seed of the send phases.", DefaultValueFactory = _ => 1 };
        var markdown = new Option<string?>("--markdown") { Description = "Write the Markdown table to this file." };
        var json = new Option<string?>("--json") { Description = "Write every run, with its seconds, to this JSON file." };
        var quiet = new Option<bool>("--quiet") { Description = "No per-second lines." };

        var command = new Command("ws", "N concurrent WebSockets per URL, each sending at a fixed rate (open loop), echo latency in HdrHistogram; connect times and every failure counted.")
        {
            urls, sockets, rate, size, duration, connectConcurrency, connectTimeout, connectPhase, echoTimeout, seed, markdown, json, quiet,
        };
        command.Validators.Add(result =>
        {
            foreach (var text in result.GetValue(urls) ?? [])
            {
                if (!WebSocketSchedule.TryParseTarget(text, out _, out _))
                {
                    result.AddError($"'{text}' is not [label=]ws(s)://… or http(s)://….");
                }
            }
        });
        command.SetAction(async (parse, cancellationToken) =>
        {
            var template = new WebSocketLoadOptions
            {
                Label = "",
                Url = new Uri("ws://127.0.0.1/"),
                Sockets = parse.GetValue(sockets),
                MessagesPerSecond = parse.GetValue(rate),
                MessageSize = parse.GetValue(size),
                Duration = parse.GetValue(duration) ?? TimeSpan.FromSeconds(30),
                ConnectConcurrency = parse.GetValue(connectConcurrency),
                ConnectTimeout = parse.GetValue(connectTimeout) ?? TimeSpan.FromSeconds(10),
                ConnectPhaseTimeout = parse.GetValue(connectPhase) ?? TimeSpan.FromSeconds(120),
                EchoTimeout = parse.GetValue(echoTimeout) ?? TimeSpan.FromSeconds(10),
                Seed = parse.GetValue(seed),
            };
            try
            {
                template.Validate();
            }
            catch (ArgumentException e)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return LoadTestsCommand.ExitUsage;
            }

            var targets = parse.GetValue(urls)!
                .Select(text => WebSocketSchedule.TryParseTarget(text, out var label, out var url) ? template with { Label = label, Url = url } : throw new FormatException(text))
                .ToList();
            return await RunAsync(targets, parse.GetValue(markdown), parse.GetValue(json), parse.GetValue(quiet), cancellationToken);
        });
        command.Add(CreateReportCommand());
        return command;
    }

    /// <summary><c>ws report --json a.json --json b.json [--markdown out.md]</c>: one table from the runs of several invocations.</summary>
    private static Command CreateReportCommand()
    {
        var inputs = new Option<string[]>("--json") { Description = "A JSON file written by 'ws --json' (repeatable; columns in this order).", Required = true, AllowMultipleArgumentsPerToken = false };
        var markdown = new Option<string?>("--markdown") { Description = "Write the table to this file (it is printed either way)." };
        var command = new Command("report", "One Markdown table from the JSON of several 'ws' runs (e.g. direct, then the tunnel under two client settings).") { inputs, markdown };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var runs = new List<WebSocketLoadResult>();
            try
            {
                foreach (var path in parse.GetValue(inputs)!)
                {
                    await using var file = File.OpenRead(path);
                    runs.AddRange(await JsonSerializer.DeserializeAsync<List<WebSocketLoadResult>>(file, JsonOptions, cancellationToken) ?? []);
                }
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync("error: " + e.Message);
                return LoadTestsCommand.ExitUsage;
            }

            var table = WebSocketReport.ToMarkdown(runs);
            Console.WriteLine(table);
            if (parse.GetValue(markdown) is { } output)
            {
                await File.WriteAllTextAsync(output, table, CancellationToken.None);
            }

            return LoadTestsCommand.ExitPass;
        });
        return command;
    }

    /// <summary>Reads what <c>ws --json</c> wrote.</summary>
    internal static List<WebSocketLoadResult> ReadJson(string json) => JsonSerializer.Deserialize<List<WebSocketLoadResult>>(json, JsonOptions) ?? [];

    /// <summary>What <c>ws --json</c> writes.</summary>
    internal static string WriteJson(IReadOnlyList<WebSocketLoadResult> runs) => JsonSerializer.Serialize(runs, JsonOptions);

    private static async Task<int> RunAsync(List<WebSocketLoadOptions> targets, string? markdown, string? json, bool quiet, CancellationToken cancellationToken)
    {
        var runs = new List<WebSocketLoadResult>();
        foreach (var target in targets)
        {
            Console.WriteLine(Invariant($"── {target.Label}: {target.Sockets} sockets → {target.Url}, {target.MessagesPerSecond} msg/s each, {target.MessageSize} B, {Duration.Format(target.Duration)}"));
            var result = await new WebSocketLoadRunner(target).RunAsync(
                quiet ? null : second => Console.WriteLine(Invariant(
                    $"  {second.Second,3}s open {second.OpenSockets,6} sent {second.Sent,7} echoed {second.Echoed,7} p50 {second.P50Ms,8:0.###} ms p99 {second.P99Ms,8:0.###} ms max {second.MaxMs,8:0.###} ms{(second.Failed > 0 ? $" failed {second.Failed}" : "")}")),
                cancellationToken);
            runs.Add(result);
            Console.WriteLine(Invariant(
                $"  = {result.Connected}/{result.Sockets} connected (connect p50 {result.ConnectTime.P50Ms:0.###} ms, p99 {result.ConnectTime.P99Ms:0.###} ms, {result.ConnectPhaseSec:0.##} s in all); {result.MessagesEchoed}/{result.MessagesSent} echoed; latency p50 {result.Latency.P50Ms:0.###} p90 {result.Latency.P90Ms:0.###} p99 {result.Latency.P99Ms:0.###} max {result.Latency.MaxMs:0.###} ms; {(result.Passed ? "no failure" : "FAILURES")}"));
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }
        }

        var table = WebSocketReport.ToMarkdown(runs);
        Console.WriteLine();
        Console.WriteLine(table);
        if (markdown is not null)
        {
            await File.WriteAllTextAsync(markdown, table, CancellationToken.None);
        }

        if (json is not null)
        {
            await File.WriteAllTextAsync(json, WriteJson(runs), CancellationToken.None);
        }

        return cancellationToken.IsCancellationRequested ? LoadTestsCommand.ExitInterrupted
            : runs.All(run => run.Passed) ? LoadTestsCommand.ExitPass
            : LoadTestsCommand.ExitThresholds;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

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
