using System.Globalization;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Run;

/// <summary>
/// Runs a profile against the selected targets: probe, generator self-check, closed-loop ceilings, then every
/// stage against every target ONE AFTER ANOTHER (stage 1: backend-direct, backend-tunnel, httpbin-direct,
/// httpbin-tunnel; stage 2: …). Targets never run concurrently: on two vCPUs they would fight for CPU and
/// distort each other; sequential windows compare tunnel and direct at the same offered rate, minutes apart at
/// most. Saturation steps follow when the profile has them, until the knee target saturates.
/// </summary>
internal sealed class RunOrchestrator
{
    private readonly LoadProfile _profile;
    private readonly IReadOnlyList<TargetDefinition> _targets;
    private readonly Uri _generatorCheckBase;
    private readonly HttpLoadClient _client;
    private readonly TimeProvider _time;
    private readonly IRunObserver _observer;
    private readonly WindowRunner _runner;
    private readonly long _origin;
    private ActiveWindow? _currentWindow;

    /// <param name="generatorCheckBase">The direct TestBackend, for the generator self-check.</param>
    public RunOrchestrator(
        LoadProfile profile,
        IReadOnlyList<TargetDefinition> targets,
        Uri generatorCheckBase,
        HttpLoadClient client,
        TimeProvider time,
        IRunObserver observer)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(targets);
        _profile = profile;
        _targets = targets;
        _generatorCheckBase = generatorCheckBase;
        _client = client;
        _time = time;
        _observer = observer;
        _runner = new WindowRunner(client, time, new EngineOptions
        {
            MaxInFlight = profile.MaxInFlight,
            Spread = profile.Spread,
            DrainTimeout = profile.RequestTimeout + TimeSpan.FromSeconds(5),
        });
        _origin = time.GetTimestamp();
    }

    /// <summary>The window running now (stage, target), for the resource sampler; null between windows.</summary>
    public (int Stage, string Target)? CurrentWindow => Volatile.Read(ref _currentWindow) is { } active ? (active.Stage, active.Target) : null;

    /// <summary>The run's start, as a <see cref="TimeProvider.GetTimestamp"/> value.</summary>
    public long Origin => _origin;

    /// <summary>
    /// Planned length of the run: checks, warm-ups, stages and the worst case of the saturation steps, plus the
    /// drains between windows.
    /// </summary>
    public static TimeSpan EstimateDuration(LoadProfile profile, IReadOnlyList<TargetDefinition> targets)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(targets);
        var drain = TimeSpan.FromSeconds(0.5);
        var total = profile.GeneratorCheck?.During ?? TimeSpan.Zero;
        total += targets.Count * (profile.Ceiling?.During ?? TimeSpan.Zero);
        total += targets.Count * ((profile.WarmUp?.During ?? TimeSpan.Zero) + drain);
        foreach (var stage in profile.Stages)
        {
            total += TargetsOf(stage.Targets, targets).Count * (stage.Simulation.During + drain);
        }

        if (profile.Saturation is { } saturation)
        {
            total += TargetsOf(saturation.Targets, targets).Count * saturation.Rates.Count * (saturation.During + drain);
        }

        return total;
    }

    /// <summary>
    /// One request per target (its first GET scenario) before any load, so that a target that is down fails the
    /// run in a second with a clear message instead of producing a report full of connection errors.
    /// </summary>
    /// <returns>One line per target that did not answer with 2xx/3xx.</returns>
    public async Task<IReadOnlyList<string>> ProbeAsync(CancellationToken cancellationToken)
    {
        var problems = new List<string>();
        foreach (var target in _targets)
        {
            var scenario = _profile.Scenarios
                .Where(s => s.Paths.ContainsKey(target.BackendName))
                .OrderBy(s => s.Method == HttpMethod.Get ? 0 : 1)
                .FirstOrDefault();
            if (scenario is null)
            {
                continue;
            }

            var template = new RequestTemplate(scenario.Method, target.Resolve(scenario.Paths[target.BackendName]), scenario.BodyBytes);
            var outcome = await _client.SendAsync(template, cancellationToken);
            if (!outcome.IsSuccess)
            {
                problems.Add($"{target.Name}: {template} → {outcome.Failure}");
            }
        }

        return problems;
    }

    public async Task<RunResult> RunAsync(CancellationToken cancellationToken)
    {
        var result = new RunResult
        {
            Profile = _profile.Name,
            Description = _profile.Description,
            StartedUtc = _time.GetUtcNow(),
            Machine = MachineInfo.Current(),
            Targets = _targets,
            GeneratorCeilingFraction = _profile.GeneratorCeilingFraction,
        };

        try
        {
            await RunPhasesAsync(result, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            result.Aborted = true;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            result.Aborted = true;
            result.Notes.Add("The run was cancelled (Ctrl-C or the hard time cap); the results are partial and the verdict is FAIL.");
        }

        if (_client.FirstError is { } error)
        {
            result.Notes.Add("Generator error (first occurrence): " + error);
        }

        var thresholds = (_profile.DefaultThresholds ? Threshold.Defaults : [])
            .Concat(Threshold.FromProfile(_profile.Thresholds, $"profile {_profile.Name}"))
            .ToList();
        result.Thresholds = ThresholdEvaluator.Evaluate(thresholds, _targets, result.Windows);
        result.DurationSec = Math.Round(_time.GetElapsedTime(_origin).TotalSeconds, 1);
        return result;
    }

    /// <summary>
    /// The scenarios of the mix that <paramref name="target"/>'s backend serves, with absolute URLs.
    /// </summary>
    public static IReadOnlyList<ScenarioPlan> PlanScenarios(LoadProfile profile, TargetDefinition target)
    {
        ArgumentNullException.ThrowIfNull(profile);
        ArgumentNullException.ThrowIfNull(target);
        return profile.Scenarios
            .Where(scenario => scenario.Paths.ContainsKey(target.BackendName))
            .Select(scenario => new ScenarioPlan(
                scenario.Name,
                new RequestTemplate(scenario.Method, target.Resolve(scenario.Paths[target.BackendName]), scenario.BodyBytes),
                scenario.Weight))
            .ToList();
    }

    private static List<TargetDefinition> TargetsOf(IReadOnlyList<string>? names, IReadOnlyList<TargetDefinition> selected) =>
        names is null ? selected.ToList() : selected.Where(target => names.Contains(target.Name)).ToList();

    private async Task RunPhasesAsync(RunResult result, CancellationToken cancellationToken)
    {
        foreach (var target in _targets.Where(target => PlanScenarios(_profile, target).Count == 0))
        {
            result.Notes.Add($"No scenario of the profile has a path for {target.BackendName}; {target.Name} gets no load.");
        }

        if (_profile.GeneratorCheck is { } check)
        {
            await RunGeneratorCheckAsync(result, check, cancellationToken);
        }

        if (_profile.Ceiling is { } ceiling)
        {
            foreach (var target in _targets.Where(target => ceiling.Paths.ContainsKey(target.BackendName)))
            {
                _observer.Phase($"ceiling · keep-constant {ceiling.Copies} copies · {target.Name}");
                var url = target.Resolve(ceiling.Paths[target.BackendName]);
                result.Ceilings.Add(await RunClosedLoopAsync(target.Name, url, ceiling, cancellationToken));
            }
        }

        var warmedUp = new HashSet<string>(StringComparer.Ordinal);
        var stageNumber = 0;
        double previousRate = 0;
        var previousCopies = 0;
        foreach (var stage in _profile.Stages)
        {
            stageNumber++;
            foreach (var target in TargetsOf(stage.Targets, _targets))
            {
                cancellationToken.ThrowIfCancellationRequested();
                await WarmUpOnceAsync(target, warmedUp, cancellationToken);
                var window = await RunWindowAsync(target, stageNumber, stage.Simulation, previousRate, previousCopies, stage.Exploratory, result, cancellationToken);
                result.Windows.Add(window);
            }

            previousRate = stage.Simulation.IsOpenLoop ? stage.Simulation.EndRatePerSecond : 0;
            previousCopies = stage.Simulation.EndCopies;
        }

        if (_profile.Saturation is { } saturation)
        {
            await RunSaturationAsync(result, saturation, stageNumber, previousRate, warmedUp, cancellationToken);
        }
    }

    private async Task RunSaturationAsync(
        RunResult result, SaturationProfile saturation, int stageNumber, double previousRate, HashSet<string> warmedUp, CancellationToken cancellationToken)
    {
        var targets = TargetsOf(saturation.Targets, _targets);
        var kneeTarget = targets.FirstOrDefault(target => target.Name == saturation.KneeTarget) ?? targets.FirstOrDefault();
        if (kneeTarget is null)
        {
            result.Notes.Add("Saturation steps skipped: none of their targets is selected.");
            return;
        }

        if (kneeTarget.Name != saturation.KneeTarget)
        {
            result.Notes.Add($"Knee target {saturation.KneeTarget} is not selected; the knee is searched on {kneeTarget.Name} instead.");
        }

        var knee = KneeDetector.Find(kneeTarget.Name, result.Windows, saturation.Criteria);
        foreach (var rate in saturation.Rates.Where(rate => knee.SaturatedAtRps is null && rate > previousRate))
        {
            stageNumber++;
            var simulation = new Inject(rate * saturation.Interval.TotalSeconds, saturation.Interval, saturation.During);
            foreach (var target in targets)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await WarmUpOnceAsync(target, warmedUp, cancellationToken);
                result.Windows.Add(await RunWindowAsync(target, stageNumber, simulation, previousRate, 0, exploratory: true, result, cancellationToken));
            }

            previousRate = rate;
            knee = KneeDetector.Find(kneeTarget.Name, result.Windows, saturation.Criteria);
        }

        result.Knee = knee;
        _observer.Note("Knee: " + knee.Summary);
    }

    private async Task RunGeneratorCheckAsync(RunResult result, ClosedLoopCheck check, CancellationToken cancellationToken)
    {
        if (!check.Paths.TryGetValue("testbackend", out var path))
        {
            result.Notes.Add("Generator check skipped: it needs a testbackend path.");
            return;
        }

        var url = new Uri(_generatorCheckBase.AbsoluteUri.TrimEnd('/') + path);
        _observer.Phase($"generator self-check · keep-constant {check.Copies} copies · GET {url}");
        var probe = await _client.SendAsync(new RequestTemplate(HttpMethod.Get, url), cancellationToken);
        if (!probe.IsSuccess)
        {
            result.Notes.Add($"Generator ceiling not measured: GET {url} failed ({probe.Failure}). Stages cannot be checked against it.");
            return;
        }

        var measured = await RunClosedLoopAsync(TargetCatalog.BackendDirect, url, check, cancellationToken);
        result.GeneratorCheck = measured;
        _observer.Note(string.Create(CultureInfo.InvariantCulture, $"Generator ceiling ≈ {measured.Rps:0} RPS (closed loop, {check.Copies} copies, {url.AbsolutePath}); stages above {_profile.GeneratorCeilingFraction:P0} of it are flagged."));
    }

    private async Task<ClosedLoopResult> RunClosedLoopAsync(string target, Uri url, ClosedLoopCheck check, CancellationToken cancellationToken)
    {
        var spec = new WindowSpec(
            target,
            0,
            new KeepConstant(check.Copies, check.During),
            0,
            0,
            [new ScenarioPlan("ping", new RequestTemplate(HttpMethod.Get, url), 1)],
            Exploratory: true,
            _time.GetElapsedTime(_origin));
        var window = await _runner.RunAsync(spec, null, cancellationToken);
        return new ClosedLoopResult(target, url.AbsoluteUri, check.Copies, window.DurationSec, window.Total.OkInWindow / window.DurationSec, window.Total);
    }

    private async Task WarmUpOnceAsync(TargetDefinition target, HashSet<string> warmedUp, CancellationToken cancellationToken)
    {
        if (_profile.WarmUp is not { } warmUp || !warmedUp.Add(target.Name))
        {
            return;
        }

        var scenarios = PlanScenarios(_profile, target);
        if (scenarios.Count == 0)
        {
            return;
        }

        _observer.Phase($"warm-up · inject {warmUp.Rate:0}/s for {Duration.Format(warmUp.During)} · {target.Name} (not recorded)");
        var spec = new WindowSpec(target.Name, 0, new Inject(warmUp.Rate, TimeSpan.FromSeconds(1), warmUp.During), 0, 0, scenarios, true, _time.GetElapsedTime(_origin));
        var window = await _runner.RunAsync(spec, null, cancellationToken);
        if (window.Total.Failed > 0)
        {
            _observer.Note($"Warm-up of {target.Name}: {window.Total.Failed} of {window.Total.Requests} requests failed ({string.Join(", ", window.Total.Failures.Select(f => $"{f.Key} ×{f.Value}"))}).");
        }
    }

    private async Task<WindowResult> RunWindowAsync(
        TargetDefinition target, int stage, LoadSimulation simulation, double startRate, int startCopies, bool exploratory, RunResult result, CancellationToken cancellationToken)
    {
        var scenarios = PlanScenarios(_profile, target);
        _observer.Phase($"stage {stage} · {simulation.Describe()} for {Duration.Format(simulation.During)} · {target.Name}{(exploratory ? " (saturation step)" : "")}");
        var spec = new WindowSpec(target.Name, stage, simulation, startRate, startCopies, scenarios, exploratory, _time.GetElapsedTime(_origin));
        Volatile.Write(ref _currentWindow, new ActiveWindow(stage, target.Name));
        WindowResult window;
        try
        {
            window = await _runner.RunAsync(spec, _observer.Tick, cancellationToken);
        }
        finally
        {
            Volatile.Write(ref _currentWindow, null);
        }

        AddFlags(window, result);
        _observer.WindowCompleted(window);
        return window;
    }

    private void AddFlags(WindowResult window, RunResult result)
    {
        if (result.GeneratorCheck is { } check && window.OfferedRps is { } offered && offered > _profile.GeneratorCeilingFraction * check.Rps)
        {
            window.Flags.Add(string.Create(CultureInfo.InvariantCulture,
                $"generator-bound? offered {offered:0}/s is {offered / check.Rps:P0} of the generator ceiling ({check.Rps:0}/s)"));
        }

        var lagLimit = (_profile.Saturation?.Criteria ?? SaturationCriteria.Default).MaxLagP99Ms;
        if (window.OpenLoop && window.Total.Lag.P99Ms > lagLimit)
        {
            window.Flags.Add(string.Create(CultureInfo.InvariantCulture,
                $"generator lagging: scheduling lag p99 {window.Total.Lag.P99Ms:0.##} ms > {lagLimit:0.##} ms (CO-corrected latencies include it)"));
        }

        if (window.Total.FailuresOf(FailureKind.Dropped) is > 0 and var dropped)
        {
            window.Flags.Add($"{dropped} requests dropped at the in-flight cap ({_profile.MaxInFlight})");
        }
    }

    private sealed record ActiveWindow(int Stage, string Target);
}
