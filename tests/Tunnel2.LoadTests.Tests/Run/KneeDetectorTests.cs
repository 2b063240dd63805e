using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Run;

public class KneeDetectorTests
{
    private const string Target = "backend-tunnel";

    [Fact]
    public void Find_AchievedBelowOffered_KneeBetweenLastCleanAndFirstSaturatedStep()
    {
        var windows = new[]
        {
            Window(1, offered: 1000, ok: 10_000),
            Window(2, offered: 2000, ok: 20_000),
            Window(3, offered: 4000, ok: 30_000),
        };

        var knee = KneeDetector.Find(Target, windows, SaturationCriteria.Default);

        Assert.Equal(2000, knee.SustainedRps);
        Assert.Equal(4000, knee.SaturatedAtRps);
        Assert.Contains(knee.Reasons, r => r.StartsWith("achieved 3000 RPS", StringComparison.Ordinal));
        Assert.False(knee.GeneratorBound);
        Assert.Contains("knee between 2000 and 4000 RPS", knee.Summary, StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluate_FailuresAndTail_AreBothReasons()
    {
        var window = Recorded.Window(Target, 1, 100, 10, 0,
            [Recorded.Scenario("get", Recorded.Spread(950, 150, 300), new Dictionary<FailureReason, int> { [new FailureReason(FailureKind.Timeout)] = 50 })]);

        var (reasons, generatorBound) = KneeDetector.Evaluate(window, SaturationCriteria.Default);

        Assert.Contains(reasons, r => r.StartsWith("success 95.00 %", StringComparison.Ordinal));
        Assert.Contains(reasons, r => r.StartsWith("p99 ", StringComparison.Ordinal));
        Assert.False(generatorBound);
    }

    [Fact]
    public void Evaluate_GeneratorLagAboveTheLimit_BlamesTheGenerator()
    {
        var window = Recorded.Window(Target, 1, 100, 10, 0, [Recorded.Scenario("get", Recorded.Spread(1000, 1, 2), lagMs: 25)]);

        var (reasons, generatorBound) = KneeDetector.Evaluate(window, SaturationCriteria.Default);

        Assert.True(generatorBound);
        Assert.Contains(reasons, r => r.StartsWith("generator lag p99 25", StringComparison.Ordinal));
    }

    [Fact]
    public void Find_NeverSaturated_ReportsNoKnee()
    {
        var knee = KneeDetector.Find(Target, [Window(1, 1000, 10_000), Window(2, 2000, 20_000)], SaturationCriteria.Default);

        Assert.Null(knee.SaturatedAtRps);
        Assert.Equal(2000, knee.SustainedRps);
        Assert.Contains("not saturated up to 2000 RPS", knee.Summary, StringComparison.Ordinal);
    }

    // 10-second windows: ok / 10 s = achieved RPS.
    private static WindowResult Window(int stage, double offered, int ok) =>
        Recorded.Window(Target, stage, offered, 10, stage * 10, [Recorded.Scenario("get", Recorded.Spread(ok, 0.5, 2))]);
}
