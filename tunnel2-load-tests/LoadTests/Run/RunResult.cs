using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Resources;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Run;

/// <summary>The machine the run happened on.</summary>
internal sealed record MachineInfo(string Host, int Cores, string Os, string Runtime, bool ServerGc)
{
    public static MachineInfo Current() => new(
        Environment.MachineName,
        Environment.ProcessorCount,
        System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
        System.Runtime.GCSettings.IsServerGC);
}

/// <summary>A closed-loop burst: the generator self-check or a target's throughput ceiling.</summary>
/// <param name="Target">The target name (the generator check uses the direct TestBackend).</param>
/// <param name="Rps">Successful responses per second: the ceiling.</param>
internal sealed record ClosedLoopResult(string Target, string Url, int Copies, double DurationSec, double Rps, ScenarioResult Result);

/// <summary>Where a target stops keeping up with the offered rate.</summary>
/// <param name="SustainedRps">Highest offered rate that was not saturated (null if the first one was).</param>
/// <param name="SaturatedAtRps">First offered rate that saturated the target (null if none did).</param>
/// <param name="GeneratorBound">True when the generator, not the target, was the limit at that step.</param>
internal sealed record KneeResult(string Target, double? SustainedRps, double? SaturatedAtRps, IReadOnlyList<string> Reasons, bool GeneratorBound)
{
    public string Summary => SaturatedAtRps is { } at
        ? GeneratorBound
            ? $"{Target}: the GENERATOR (or the machine it shares) saturated at {at:0} RPS ({string.Join("; ", Reasons)}); {(SustainedRps is { } clean ? $"last clean step {clean:0} RPS" : "no clean step")}. The knee of the target is at or above that."
            : $"{Target}: knee between {SustainedRps?.ToString("0", System.Globalization.CultureInfo.InvariantCulture) ?? "0"} and {at:0} RPS; saturated at {at:0} RPS because {string.Join("; ", Reasons)}."
        : $"{Target}: not saturated up to {SustainedRps?.ToString("0", System.Globalization.CultureInfo.InvariantCulture) ?? "0"} RPS (no knee within the steps).";
}

/// <summary>Everything a run produced; the reports are written from this alone.</summary>
internal sealed class RunResult
{
    public required string Profile { get; init; }

    public string Description { get; init; } = "";

    public required DateTimeOffset StartedUtc { get; init; }

    public double DurationSec { get; set; }

    public required MachineInfo Machine { get; init; }

    public required IReadOnlyList<TargetDefinition> Targets { get; init; }

    public ClosedLoopResult? GeneratorCheck { get; set; }

    /// <summary>Stages whose offered rate is above this share of the generator ceiling are flagged.</summary>
    public double GeneratorCeilingFraction { get; init; } = 0.5;

    public List<ClosedLoopResult> Ceilings { get; } = [];

    public List<WindowResult> Windows { get; } = [];

    public KneeResult? Knee { get; set; }

    public ResourceReport Resources { get; set; } = ResourceReport.Empty;

    public IReadOnlyList<ThresholdResult> Thresholds { get; set; } = [];

    public List<string> Notes { get; } = [];

    /// <summary>Cancelled (Ctrl-C) or stopped by the hard time cap: the results are partial.</summary>
    public bool Aborted { get; set; }

    public bool Passed => !Aborted && Thresholds.All(threshold => threshold.Passed);

    /// <summary>The non-exploratory windows of one target, added up (scenario filter optional).</summary>
    public ScenarioResult TargetTotal(string target, bool includeExploratory = false, string? scenario = null)
    {
        var windows = Windows.Where(window => window.Target == target && (includeExploratory || !window.Exploratory));
        var parts = scenario is null
            ? windows.Select(window => window.Total)
            : windows.SelectMany(window => window.Scenarios.Where(s => s.Name == scenario));
        return ScenarioResult.Combine(scenario ?? target, parts);
    }
}
