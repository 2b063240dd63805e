using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using Spectre.Console;
using Tunnel2.LoadTests.Docker;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Reporting;
using Tunnel2.LoadTests.Resources;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Cli;

/// <summary>
/// <c>LoadTests run --profile smoke|moderate|aggressive|file.json …</c> and <c>LoadTests rate --url … --rps …</c>;
/// <c>speedtest</c>, <c>alloc</c> and <c>plot</c> are in <see cref="BenchCommands"/>.
/// Exit codes: 0 pass, 99 a threshold breached or the run was cut short (k6 uses 99 for breached thresholds),
/// 2 bad arguments, profile or unreachable target, 130 interrupted.
/// </summary>
internal static class LoadTestsCommand
{
    public const int ExitPass = 0;
    public const int ExitUsage = 2;
    public const int ExitThresholds = 99;
    public const int ExitInterrupted = 130;

    /// <summary>Parses and runs; Ctrl-C cancels the run, which still writes its (partial) report.</summary>
    public static Task<int> InvokeAsync(string[] args) => Create().Parse(args).InvokeAsync(new InvocationConfiguration
    {
        // Time for a cancelled run to drain and write its partial report.
        ProcessTerminationTimeout = TimeSpan.FromSeconds(30),
    });

    public static RootCommand Create()
    {
        var root = new RootCommand("Tunnel2 load harness: open-loop, coordinated-omission-corrected load against the tunnel and its backends, side by side, with reports.");
        root.Add(CreateRunCommand());
        root.Add(CreateRateCommand());
        root.Add(BenchCommands.CreateSpeedTestCommand());
        root.Add(BenchCommands.CreateAllocCommand());
        root.Add(BenchCommands.CreatePlotCommand());
        root.Add(WebSocketCommand.Create());
        root.Add(Soak.SoakCommand.Create());
        return root;
    }

    private static Command CreateRunCommand()
    {
        var profile = new Option<string>("--profile", "-p") { Description = "smoke, moderate, aggressive, or a profile JSON file.", Required = true };
        var directBackend = UriOption("--direct-backend", "TestBackend, direct.", TargetEndpoints.Default.DirectBackend);
        var tunnel = UriOption("--tunnel", "TunnelServer's public endpoint.", TargetEndpoints.Default.Tunnel);
        var session = new Option<string>("--session") { Description = "Tunnel session id.", DefaultValueFactory = _ => TargetEndpoints.DefaultSession };
        var httpbin = UriOption("--httpbin", "httpbin, direct.", TargetEndpoints.Default.Httpbin);
        var targets = new Option<string[]>("--targets")
        {
            Description = "Targets to run: names (backend-direct, backend-tunnel, httpbin-direct, httpbin-tunnel) or groups (all, direct, tunnel, testbackend, httpbin); comma or space separated.",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => ["all"],
        };
        var serverPid = new Option<int?>("--server-pid") { Description = "TunnelServer's PID: sample its CPU, RSS, threads and GC each second." };
        var clientPid = new Option<int?>("--client-pid") { Description = "TunnelClient's PID: sample it too." };
        var output = new Option<string?>("--out") { Description = "Report folder (default: artifacts/load/<timestamp>-<profile> under the repository root)." };
        var stageDuration = DurationOption("--stage-duration", "Override the duration of every stage and saturation step (e.g. 5s for a quick look).");
        var live = LiveOption();

        var command = new Command("run", "Run a profile's stages against every selected target, one target after another inside each stage, and write the reports.")
        {
            profile, directBackend, tunnel, session, httpbin, targets, serverPid, clientPid, output, stageDuration, live,
        };
        var docker = new DockerCliOptions();
        docker.AddTo(command);
        command.SetAction((parse, cancellationToken) => RunAsync(
            new RunArguments(
                parse.GetValue(profile)!,
                new TargetEndpoints(parse.GetValue(directBackend)!, parse.GetValue(tunnel)!, parse.GetValue(session)!, parse.GetValue(httpbin)!),
                parse.GetValue(targets) ?? ["all"],
                parse.GetValue(serverPid),
                parse.GetValue(clientPid),
                parse.GetValue(output),
                parse.GetValue(stageDuration),
                parse.GetValue(live),
                docker.Read(parse)),
            cancellationToken));
        return command;
    }

    private static Command CreateRateCommand()
    {
        var url = new Option<Uri>("--url") { Description = "Absolute URL to load.", Required = true, CustomParser = ParseUri };
        var rps = new Option<double>("--rps") { Description = "Open-loop arrival rate per second.", Required = true };
        var duration = DurationOption("--duration", "How long (default 10s).");
        var warmUp = DurationOption("--warm-up", "Unrecorded warm-up at the same rate first (default none).");
        var method = new Option<string>("--method") { Description = "HTTP method.", DefaultValueFactory = _ => "GET" };
        var bodySize = new Option<int>("--body-size") { Description = "Request body bytes (POST/PUT).", DefaultValueFactory = _ => 0 };
        var timeout = DurationOption("--timeout", "Per-request timeout (default 10s).");
        var connections = new Option<int>("--max-connections") { Description = "Connection cap per server.", DefaultValueFactory = _ => 1000 };
        var thresholds = new Option<string[]>("--threshold")
        {
            Description = "k6-style condition, e.g. 'p(99)<5' (http_req_duration) or 'http_req_failed:rate<0.001'. Repeatable. Without any, the original report's defaults apply (p(99)<50, avg<20, rate<=0.01).",
            AllowMultipleArgumentsPerToken = false,
        };
        var output = new Option<string?>("--out") { Description = "Also write the full report to this folder." };
        var json = new Option<string?>("--json") { Description = "Also write results.json (no plots, no HTML) to this file: what scripts read." };
        var live = LiveOption();

        var command = new Command("rate", "One ad-hoc open-loop rate against one URL (for benchmarking).")
        {
            url, rps, duration, warmUp, method, bodySize, timeout, connections, thresholds, output, json, live,
        };
        command.SetAction((parse, cancellationToken) => RateAsync(
            parse.GetValue(url)!,
            parse.GetValue(rps),
            parse.GetValue(duration) ?? TimeSpan.FromSeconds(10),
            parse.GetValue(warmUp),
            parse.GetValue(method)!,
            parse.GetValue(bodySize),
            parse.GetValue(timeout) ?? TimeSpan.FromSeconds(10),
            parse.GetValue(connections),
            parse.GetValue(thresholds) ?? [],
            parse.GetValue(output),
            parse.GetValue(json),
            parse.GetValue(live),
            cancellationToken));
        return command;
    }

    private static IAnsiConsole CreateConsole()
    {
        var console = AnsiConsole.Console;
        if (Console.IsOutputRedirected)
        {
            // Piped into a log or `tee`: one record per line, never wrapped at an assumed 80 columns.
            console.Profile.Width = 1000;
        }

        return console;
    }

    private static async Task<int> RunAsync(RunArguments arguments, CancellationToken cancellationToken)
    {
        var console = CreateConsole();
        LoadProfile profile;
        IReadOnlyList<TargetDefinition> targets;
        try
        {
            profile = ProfileLoader.Load(arguments.Profile);
            if (arguments.StageDuration is { } stageDuration)
            {
                profile = WithStageDuration(profile, stageDuration);
            }

            Threshold.FromProfile(profile.Thresholds, profile.Name);
            targets = TargetCatalog.Select(TargetCatalog.All(arguments.Endpoints), arguments.Targets);
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or ArgumentException)
        {
            console.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return ExitUsage;
        }

        return await ExecuteAsync(profile, targets, arguments.Endpoints.DirectBackend, arguments.ServerPid, arguments.ClientPid, arguments.Output, arguments.Live, console, cancellationToken, docker: arguments.Docker);
    }

    private static async Task<int> RateAsync(
        Uri url, double rps, TimeSpan duration, TimeSpan? warmUp, string method, int bodySize, TimeSpan timeout, int connections,
        string[] thresholdTexts, string? output, string? json, LiveDetail live, CancellationToken cancellationToken)
    {
        var console = CreateConsole();
        LoadProfile profile;
        try
        {
            var thresholds = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
            foreach (var text in thresholdTexts)
            {
                var split = text.LastIndexOf(':');
                var key = split < 0 ? "http_req_duration" : text[..split];
                thresholds[key] = [.. thresholds.GetValueOrDefault(key) ?? [], text[(split + 1)..]];
            }

            profile = new LoadProfile
            {
                Name = "rate",
                Description = string.Create(CultureInfo.InvariantCulture, $"Ad-hoc open-loop run: {method} {url} at {rps} RPS for {Duration.Format(duration)}."),
                RequestTimeout = timeout,
                MaxConnectionsPerServer = connections,
                WarmUp = warmUp is { } w && w > TimeSpan.Zero ? new WarmUp(rps, w) : null,
                Scenarios = [new ScenarioProfile("request", 1, HttpMethod.Parse(method), bodySize, new Dictionary<string, string> { ["testbackend"] = url.PathAndQuery })],
                Stages = [new StageProfile(new Inject(rps, TimeSpan.FromSeconds(1), duration), null, false)],
                // Without --threshold the original report's lines apply, so failures never pass unnoticed.
                DefaultThresholds = thresholds.Count == 0,
                Thresholds = thresholds,
            };
            Threshold.FromProfile(profile.Thresholds, profile.Name);
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            console.MarkupLine($"[red]error:[/] {Markup.Escape(e.Message)}");
            return ExitUsage;
        }

        var target = new TargetDefinition("url", BackendKind.TestBackend, PathKind.Direct, new Uri(url.GetLeftPart(UriPartial.Authority)));
        return await ExecuteAsync(profile, [target], target.BaseUri, null, null, output, live, console, cancellationToken, writeReport: output is not null, jsonPath: json);
    }

    private static async Task<int> ExecuteAsync(
        LoadProfile profile,
        IReadOnlyList<TargetDefinition> targets,
        Uri generatorCheckBase,
        int? serverPid,
        int? clientPid,
        string? output,
        LiveDetail live,
        IAnsiConsole console,
        CancellationToken cancellationToken,
        bool writeReport = true,
        string? jsonPath = null,
        DockerRunSettings? docker = null)
    {
        var time = TimeProvider.System;
        var planned = RunOrchestrator.EstimateDuration(profile, targets);
        var hardCap = profile.MaxDuration ?? (planned * 1.5) + TimeSpan.FromMinutes(2);
        console.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"[bold]Tunnel2 load harness[/] · profile [bold]{Markup.Escape(profile.Name)}[/] · targets {Markup.Escape(string.Join(", ", targets.Select(t => t.Name)))} · planned ≈ {planned.TotalSeconds:0} s (hard cap {hardCap.TotalSeconds:0} s)"));

        using var client = new HttpLoadClient(new HttpLoadClientOptions { RequestTimeout = profile.RequestTimeout, MaxConnectionsPerServer = profile.MaxConnectionsPerServer }, time);
        var observer = new ConsoleObserver(console, live);
        var orchestrator = new RunOrchestrator(profile, targets, generatorCheckBase, client, time, observer);
        await using var containers = docker is null ? null : await DockerRunSession.TryStartAsync(docker, time, console, cancellationToken);
        if (docker is not null && containers is null)
        {
            return ExitUsage;
        }

        var problems = await orchestrator.ProbeAsync(cancellationToken);
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
            {
                console.MarkupLine($"[red]unreachable:[/] {Markup.Escape(problem)}");
            }

            console.MarkupLine("[red]error:[/] every selected target must answer before the run starts (use --targets to leave some out).");
            return ExitUsage;
        }

        await using var sampler = new ResourceSampler(
            [("TunnelServer", serverPid), ("TunnelClient", clientPid), ("generator", Environment.ProcessId)],
            time,
            orchestrator.Origin,
            () => orchestrator.CurrentWindow);
        foreach (var process in sampler.Processes)
        {
            console.MarkupLine($"  [grey]resources: {Markup.Escape(process.Role)} {(process.Pid is { } pid ? pid.ToString(CultureInfo.InvariantCulture) : "")} {Markup.Escape(process.Note)}[/]");
        }

        sampler.Start();
        containers?.Start(orchestrator.Origin, () => orchestrator.CurrentWindow);
        using var capped = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        capped.CancelAfter(hardCap);
        var result = await orchestrator.RunAsync(capped.Token);
        result.Resources = await sampler.StopAsync();
        if (containers is not null)
        {
            await containers.FinishAsync(result);
        }
        if (result.Aborted && !cancellationToken.IsCancellationRequested)
        {
            result.Notes.Add(string.Create(CultureInfo.InvariantCulture, $"Stopped by the hard time cap ({hardCap.TotalSeconds:0} s)."));
        }

        if (writeReport)
        {
            var directory = output ?? ReportWriter.DefaultDirectory(profile.Name, result.StartedUtc);
            var html = ReportWriter.Write(result, directory);
            console.MarkupLine($"Report: [link]{Markup.Escape(Path.GetFullPath(html))}[/]");
            console.MarkupLine($"        {Markup.Escape(Path.GetFullPath(Path.Combine(directory, "report.md")))}");
        }

        if (jsonPath is not null)
        {
            DataFiles.WriteJson(result, jsonPath);
        }

        PrintVerdict(result, console);
        return result.Passed ? ExitPass : cancellationToken.IsCancellationRequested ? ExitInterrupted : ExitThresholds;
    }

    private static void PrintVerdict(RunResult result, IAnsiConsole console)
    {
        foreach (var threshold in result.Thresholds)
        {
            var colour = threshold.Observed is null ? "grey" : threshold.Passed ? "green" : "red";
            console.MarkupLine($"  [{colour}]{Markup.Escape(threshold.Describe())}[/]");
        }

        if (result.Knee is { } knee)
        {
            console.MarkupLine($"Knee: {Markup.Escape(knee.Summary)}");
        }

        foreach (var note in result.Notes)
        {
            console.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        }

        var breached = result.Thresholds.Where(t => !t.Passed).ToList();
        if (result.Passed)
        {
            console.MarkupLine($"[green bold]VERDICT: PASS[/] ({result.Thresholds.Count(t => t.Observed is not null)} thresholds held)");
            return;
        }

        console.MarkupLine($"[red bold]VERDICT: FAIL[/]{(result.Aborted ? " (run aborted)" : "")}");
        foreach (var threshold in breached)
        {
            console.MarkupLine($"[red]BREACHED[/] {Markup.Escape(threshold.Describe())}");
        }
    }

    private static LoadProfile WithStageDuration(LoadProfile profile, TimeSpan during) => profile with
    {
        Stages = profile.Stages.Select(stage => stage with
        {
            Simulation = stage.Simulation switch
            {
                Inject i => i with { During = during },
                RampingInject r => r with { During = during },
                KeepConstant k => k with { During = during },
                RampingConstant c => c with { During = during },
                var other => other,
            },
        }).ToList(),
        Saturation = profile.Saturation is { } saturation ? saturation with { During = during } : null,
    };

    private static Option<Uri> UriOption(string name, string description, Uri defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = ParseUri,
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

    private static Option<LiveDetail> LiveOption() => new("--live")
    {
        Description = "Per-second console lines: scenarios (default), mix, or off.",
        DefaultValueFactory = _ => LiveDetail.Scenarios,
    };

    private static Uri? ParseUri(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : "";
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            return uri;
        }

        result.AddError($"'{text}' is not an absolute http(s) URL.");
        return null;
    }

    private sealed record RunArguments(
        string Profile,
        TargetEndpoints Endpoints,
        string[] Targets,
        int? ServerPid,
        int? ClientPid,
        string? Output,
        TimeSpan? StageDuration,
        LiveDetail Live,
        DockerRunSettings? Docker);
}
