using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Tests.Infrastructure;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Tests.Thresholds;

public class ThresholdEvaluatorTests
{
    private static readonly IReadOnlyList<TargetDefinition> Targets =
        TargetCatalog.Select(TargetCatalog.All(TargetEndpoints.Default), ["testbackend"]);

    [Fact]
    public void Defaults_BreachedOnlyByTheTargetThatBreachesThem()
    {
        var windows = new List<WindowResult>
        {
            // Direct: 1–2 ms, no failures.
            Recorded.Window(TargetCatalog.BackendDirect, 1, 100, 10, 0, [Recorded.Scenario("get", Recorded.Spread(1000, 1, 2))]),
            // Tunnel: 1 % of requests at 80 ms pushes p99 above 50 ms, and 2 % failed.
            Recorded.Window(TargetCatalog.BackendTunnel, 1, 100, 10, 10,
                [Recorded.Scenario("get", Recorded.Spread(970, 1, 2).Concat(Recorded.Spread(20, 80, 80)), new Dictionary<FailureReason, int> { [FailureReason.ForStatus(502)] = 20 })]),
        };

        var results = ThresholdEvaluator.Evaluate(Threshold.Defaults, Targets, windows);

        Assert.All(results.Where(r => r.Target == TargetCatalog.BackendDirect), r => Assert.True(r.Passed, r.Describe()));
        var breached = results.Where(r => !r.Passed).ToList();
        Assert.Equal(["p(99)<50", "rate<=0.01"], breached.Select(r => r.Expression));
        Assert.All(breached, r => Assert.Equal(TargetCatalog.BackendTunnel, r.Target));
        Assert.Equal(0.02, breached.Single(r => r.Expression == "rate<=0.01").Observed!.Value, 3);
        Assert.StartsWith("✗ http_req_duration p(99)<50 on backend-tunnel: 80", breached[0].Describe(), StringComparison.Ordinal);
    }

    [Fact]
    public void ScenarioTag_LooksAtThatScenarioOnly()
    {
        var windows = new List<WindowResult>
        {
            Recorded.Window(TargetCatalog.BackendDirect, 1, 100, 10, 0,
                [Recorded.Scenario("get", Recorded.Spread(100, 1, 2)), Recorded.Scenario("delay-5ms", Recorded.Spread(100, 6, 7))]),
        };
        var thresholds = Threshold.FromProfile(new Dictionary<string, IReadOnlyList<string>>
        {
            ["http_req_duration{scenario:get}"] = ["p(99)<3"],
            ["http_req_duration"] = ["p(99)<3"],
        }, "test");

        var results = ThresholdEvaluator.Evaluate(thresholds, Targets, windows);

        Assert.True(results.Single(r => r.Key == "http_req_duration{scenario:get}" && r.Target == TargetCatalog.BackendDirect).Passed);
        Assert.False(results.Single(r => r.Key == "http_req_duration" && r.Target == TargetCatalog.BackendDirect).Passed);
    }

    [Fact]
    public void ExploratoryWindows_AreNotHeldToThresholds()
    {
        var windows = new List<WindowResult>
        {
            Recorded.Window(TargetCatalog.BackendDirect, 1, 100, 10, 0, [Recorded.Scenario("get", Recorded.Spread(100, 1, 2))]),
            Recorded.Window(TargetCatalog.BackendDirect, 2, 9000, 10, 10, [Recorded.Scenario("get", Recorded.Spread(100, 500, 900))], exploratory: true),
        };

        var results = ThresholdEvaluator.Evaluate(Threshold.Defaults, Targets, windows);

        Assert.All(results.Where(r => r.Target == TargetCatalog.BackendDirect), r => Assert.True(r.Passed));
    }

    [Fact]
    public void NoMatchingRequests_IsReportedAsNoDataAndDoesNotFail()
    {
        var results = ThresholdEvaluator.Evaluate(Threshold.Defaults, Targets, []);

        Assert.All(results, r =>
        {
            Assert.True(r.Passed);
            Assert.Null(r.Observed);
        });
        Assert.Equal(6, results.Count);
    }

    [Fact]
    public void KindAndBackendTags_SelectTargets()
    {
        var all = TargetCatalog.All(TargetEndpoints.Default);
        var windows = all.Select((t, i) => Recorded.Window(t.Name, 1, 100, 10, i * 10, [Recorded.Scenario("get", Recorded.Spread(10, 1, 2))])).ToList();
        var thresholds = Threshold.FromProfile(new Dictionary<string, IReadOnlyList<string>>
        {
            ["http_req_duration{kind:tunnel,backend:httpbin}"] = ["p(99)<100"],
        }, "test");

        var results = ThresholdEvaluator.Evaluate(thresholds, all, windows);

        Assert.Equal([TargetCatalog.HttpbinTunnel], results.Select(r => r.Target));
    }

    [Fact]
    public void DroppedIterations_CountsDroppedRequests()
    {
        var windows = new List<WindowResult>
        {
            Recorded.Window(TargetCatalog.BackendDirect, 1, 100, 10, 0,
                [Recorded.Scenario("get", Recorded.Spread(10, 1, 2), new Dictionary<FailureReason, int> { [new FailureReason(FailureKind.Dropped)] = 4 })]),
        };
        var thresholds = Threshold.FromProfile(new Dictionary<string, IReadOnlyList<string>> { ["dropped_iterations"] = ["count==0"] }, "test");

        var result = ThresholdEvaluator.Evaluate(thresholds, Targets, windows).Single(r => r.Target == TargetCatalog.BackendDirect);

        Assert.False(result.Passed);
        Assert.Equal(4, result.Observed);
    }
}
