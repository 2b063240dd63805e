using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Profiles;

/// <summary>
/// A load profile (profiles/*.json): the scenario mix, the stages in NBomber's vocabulary, checks, saturation
/// steps and thresholds. Rates and durations live here, not in code (STYLE.md §4.12).
/// </summary>
internal sealed record LoadProfile
{
    public required string Name { get; init; }

    public string Description { get; init; } = "";

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    public int MaxInFlight { get; init; } = 10_000;

    public int MaxConnectionsPerServer { get; init; } = 1000;

    public ArrivalSpread Spread { get; init; } = ArrivalSpread.Even;

    /// <summary>Closed-loop burst against a trivial endpoint of the direct TestBackend: the generator's ceiling.</summary>
    public ClosedLoopCheck? GeneratorCheck { get; init; }

    /// <summary>Stages whose offered rate exceeds this share of the generator ceiling are flagged. Default 0.5.</summary>
    public double GeneratorCeilingFraction { get; init; } = 0.5;

    /// <summary>Closed-loop throughput ceiling of every target (the "N connections" view, for the throughput ratio).</summary>
    public ClosedLoopCheck? Ceiling { get; init; }

    /// <summary>Open-loop warm-up of every target before its first stage; not recorded.</summary>
    public WarmUp? WarmUp { get; init; }

    public required IReadOnlyList<ScenarioProfile> Scenarios { get; init; }

    public required IReadOnlyList<StageProfile> Stages { get; init; }

    public SaturationProfile? Saturation { get; init; }

    /// <summary>Whether the original report's thresholds (p99 &lt; 50 ms, success ≥ 99 %, mean &lt; 20 ms) apply.</summary>
    public bool DefaultThresholds { get; init; } = true;

    /// <summary>k6-style thresholds: metric{tag:value,…} → expressions such as <c>p(99)&lt;10</c>.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Thresholds { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary>Hard cap on the whole run; null means the planned length × 1.5 + 2 min.</summary>
    public TimeSpan? MaxDuration { get; init; }
}

/// <summary>One request type of the mix and its share.</summary>
/// <param name="Paths">Path per backend name (<c>testbackend</c>, <c>httpbin</c>); a backend without a path skips this scenario.</param>
internal sealed record ScenarioProfile(string Name, double Weight, HttpMethod Method, int BodyBytes, IReadOnlyDictionary<string, string> Paths);

/// <summary>One stage: a load simulation, optionally limited to some targets.</summary>
internal sealed record StageProfile(LoadSimulation Simulation, IReadOnlyList<string>? Targets, bool Exploratory);

/// <summary>A closed-loop measurement: copies, duration, and the path per backend.</summary>
internal sealed record ClosedLoopCheck(int Copies, TimeSpan During, IReadOnlyDictionary<string, string> Paths);

/// <summary>Warm-up rate per second and duration.</summary>
internal sealed record WarmUp(double Rate, TimeSpan During);

/// <summary>
/// Steps beyond the ramp, run until the knee target saturates (aggressive profile).
/// </summary>
internal sealed record SaturationProfile(
    string KneeTarget,
    IReadOnlyList<string> Targets,
    IReadOnlyList<double> Rates,
    TimeSpan Interval,
    TimeSpan During,
    SaturationCriteria Criteria);

/// <summary>When a window counts as saturated.</summary>
/// <param name="MinSuccessRate">Below this success rate.</param>
/// <param name="MinAchievedRatio">Achieved throughput below this share of the offered rate.</param>
/// <param name="MaxP99Ms">CO-corrected p99 above this.</param>
/// <param name="MaxLagP99Ms">Scheduling lag p99 above this means the GENERATOR is saturated, not the target.</param>
internal sealed record SaturationCriteria(double MinSuccessRate, double MinAchievedRatio, double MaxP99Ms, double MaxLagP99Ms)
{
    public static readonly SaturationCriteria Default = new(0.99, 0.9, 100, 10);
}
