using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Tests.Profiles;

public class ProfileLoaderTests
{
    private static readonly IReadOnlyList<TargetDefinition> AllTargets = TargetCatalog.All(TargetEndpoints.Default);

    [Theory]
    [InlineData("smoke")]
    [InlineData("moderate")]
    [InlineData("aggressive")]
    public void ShippedProfile_LoadsWithTheFullMixAndValidThresholds(string name)
    {
        var profile = ProfileLoader.Load(name);

        Assert.Equal(name, profile.Name);
        Assert.Equal(["get", "echo-1k", "echo-64k", "delay-5ms"], profile.Scenarios.Select(s => s.Name));
        Assert.Equal([0, 1024, 65536, 0], profile.Scenarios.Select(s => s.BodyBytes));
        Assert.All(profile.Scenarios, s => Assert.Equal(["httpbin", "testbackend"], s.Paths.Keys.Order(StringComparer.Ordinal)));
        Assert.NotNull(profile.GeneratorCheck);
        Assert.NotEmpty(Threshold.FromProfile(profile.Thresholds, name));
    }

    [Fact]
    public void Smoke_TakesAboutAMinuteOnAllFourTargets()
    {
        var planned = RunOrchestrator.EstimateDuration(ProfileLoader.Load("smoke"), AllTargets);

        Assert.InRange(planned.TotalSeconds, 45, 75);
    }

    [Fact]
    public void Aggressive_IsTheOriginalRampThenStepsBeyond1000UntilTheTunnelSaturates()
    {
        var profile = ProfileLoader.Load("aggressive");

        Assert.Equal([20, 50, 100, 200, 500, 1000], profile.Stages.Select(s => s.Simulation.EndRatePerSecond));
        Assert.All(profile.Stages, s => Assert.Equal(TimeSpan.FromSeconds(30), s.Simulation.During));
        var saturation = Assert.IsType<SaturationProfile>(profile.Saturation);
        Assert.Equal(TargetCatalog.BackendTunnel, saturation.KneeTarget);
        Assert.True(saturation.Rates[0] > 1000);
        Assert.Equal(saturation.Rates.Order(), saturation.Rates);
    }

    [Fact]
    public void Parse_AllFourSimulations()
    {
        var profile = ProfileLoader.Parse("""
            {
              "scenarios": [ { "name": "get", "paths": { "testbackend": "/loadtest/get" } } ],
              "loadSimulations": [
                { "inject": { "rate": 10, "interval": "500ms", "during": "2s" } },
                { "rampingInject": { "rate": 50, "during": "1m30s" } },
                { "keepConstant": { "copies": 8, "during": "5s" }, "targets": ["backend-direct"] },
                { "rampingConstant": { "copies": 2, "during": "00:00:05" }, "exploratory": true }
              ]
            }
            """, "custom");

        Assert.Equal("custom", profile.Name);
        Assert.Equal(new Inject(10, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2)), profile.Stages[0].Simulation);
        Assert.Equal(new RampingInject(50, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(90)), profile.Stages[1].Simulation);
        Assert.Equal(new KeepConstant(8, TimeSpan.FromSeconds(5)), profile.Stages[2].Simulation);
        Assert.Equal(["backend-direct"], profile.Stages[2].Targets);
        Assert.True(profile.Stages[3].Exploratory);
        Assert.True(profile.DefaultThresholds);
    }

    [Theory]
    [InlineData("""{ "scenarios": [ { "name": "get", "paths": { "testbackend": "/x" } } ], "loadSimulations": [ { "inject": { "rate": 10 } } ] }""", "loadSimulations[0].inject.during")]
    [InlineData("""{ "scenarios": [ { "name": "get", "paths": { "testbackend": "/x" } } ], "loadSimulations": [ { "inject": { "rate": 1, "during": "1s" }, "keepConstant": { "copies": 1, "during": "1s" } } ] }""", "exactly one of")]
    [InlineData("""{ "scenarios": [ { "name": "get", "paths": { "nginx": "/x" } } ], "loadSimulations": [ { "inject": { "rate": 1, "during": "1s" } } ] }""", "unknown backend 'nginx'")]
    [InlineData("""{ "scenarios": [ { "name": "get", "paths": { "testbackend": "/x" } } ], "loadSimulations": [ { "inject": { "rate": 1, "during": "soon" } } ] }""", "'soon' is not a duration")]
    [InlineData("""{ "scenarios": [ { "name": "get", "paths": { "testbackend": "/x" } } ], "loadSimulations": [ { "inject": { "rate": 1, "during": "1s" } } ], "rampUp": 3 }""", "rampUp")]
    public void Parse_Mistake_IsReportedWithWhereItIs(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => ProfileLoader.Parse(json, "bad"));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_UnknownName_ListsTheShippedProfiles()
    {
        var e = Assert.Throws<InvalidDataException>(() => ProfileLoader.Load("nonexistent"));

        Assert.Contains("aggressive, moderate, smoke", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m", 120_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("00:00:10", 10_000)]
    public void Duration_ParsesWhatPeopleWrite(string text, double milliseconds)
    {
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), Duration.Parse(text));
    }

    [Theory]
    [InlineData("10")]
    [InlineData("10 s")]
    [InlineData("s")]
    [InlineData("-1s")]
    public void Duration_RejectsAmbiguousText(string text)
    {
        Assert.False(Duration.TryParse(text, out _));
    }
}
