namespace Tunnel2.LoadTests.Engine;

/// <summary>One scenario of a mix: a name, what it sends, and its share of the stage's load.</summary>
internal sealed record ScenarioPlan(string Name, RequestTemplate Request, double Weight);

/// <summary>
/// One window: one stage's load simulation against one target, shared by the scenarios of the mix in proportion
/// to their weights.
/// </summary>
/// <param name="Target">Target name, e.g. <c>backend-tunnel</c>.</param>
/// <param name="Stage">1-based stage number (0 for warm-up and checks).</param>
/// <param name="Simulation">The stage's load simulation, for the whole mix.</param>
/// <param name="StartRatePerSecond">Arrival rate before this stage; RampingInject ramps from it.</param>
/// <param name="StartCopies">Copies before this stage; RampingConstant ramps from it.</param>
/// <param name="Scenarios">The mix.</param>
/// <param name="Exploratory">Saturation steps: reported, but not held to thresholds.</param>
/// <param name="RunOffset">When the window starts, relative to the run, for time-series plots.</param>
internal sealed record WindowSpec(
    string Target,
    int Stage,
    LoadSimulation Simulation,
    double StartRatePerSecond,
    int StartCopies,
    IReadOnlyList<ScenarioPlan> Scenarios,
    bool Exploratory,
    TimeSpan RunOffset);

/// <summary>Generator limits and scheduling choices.</summary>
internal sealed record EngineOptions
{
    /// <summary>Requests in flight at most; a due request beyond it is counted as dropped. Default 10,000.</summary>
    public int MaxInFlight { get; init; } = 10_000;

    /// <summary>Placement of arrivals inside an injection interval. Default even.</summary>
    public ArrivalSpread Spread { get; init; } = ArrivalSpread.Even;

    /// <summary>Seed for random spread.</summary>
    public int Seed { get; init; } = 20_250_101;

    /// <summary>How long a window waits for its in-flight requests after the schedule ends. Default 15 s.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Live statistics period. Default 1 s.</summary>
    public TimeSpan TickInterval { get; init; } = TimeSpan.FromSeconds(1);
}
