using System.Net;
using System.Net.Sockets;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Profiles;
using Tunnel2.LoadTests.Reporting;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Functional;

/// <summary>Short real runs (real time, real sockets, loopback only) against an in-process backend.</summary>
public sealed class InProcessRunTests
{
    [Fact]
    public async Task Run_SmallProfile_AllRequestsSucceedAndTheReportsAreWritten()
    {
        await using var backend = await InProcessBackend.StartAsync();
        var profile = new LoadProfile
        {
            Name = "functional",
            DefaultThresholds = false,
            Thresholds = new Dictionary<string, IReadOnlyList<string>> { ["http_req_failed"] = ["rate==0"] },
            GeneratorCheck = new ClosedLoopCheck(4, TimeSpan.FromMilliseconds(300), new Dictionary<string, string> { ["testbackend"] = "/loadtest/ping" }),
            WarmUp = new WarmUp(20, TimeSpan.FromMilliseconds(500)),
            Scenarios =
            [
                new ScenarioProfile("get", 2, HttpMethod.Get, 0, new Dictionary<string, string> { ["testbackend"] = "/loadtest/get" }),
                new ScenarioProfile("echo-1k", 1, HttpMethod.Post, 1024, new Dictionary<string, string> { ["testbackend"] = "/loadtest/echo" }),
                new ScenarioProfile("delay-5ms", 1, HttpMethod.Get, 0, new Dictionary<string, string> { ["testbackend"] = "/loadtest/delay/5" }),
            ],
            Stages =
            [
                new StageProfile(new Inject(40, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)), null, false),
                new StageProfile(new Inject(80, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)), null, false),
            ],
        };
        var targets = TargetCatalog.Select(TargetCatalog.All(TargetEndpoints.Default with { DirectBackend = backend.BaseUri }), [TargetCatalog.BackendDirect]);
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);
        var orchestrator = new RunOrchestrator(profile, targets, backend.BaseUri, client, TimeProvider.System, NullRunObserver.Instance);

        Assert.Empty(await orchestrator.ProbeAsync(CancellationToken.None).DefaultTimeout());
        var run = await orchestrator.RunAsync(CancellationToken.None).DefaultTimeout();

        Assert.Equal([40L, 80L], run.Windows.Select(w => w.Total.Requests));
        Assert.All(run.Windows, w => Assert.Equal(w.Total.Requests, w.Total.Ok));
        Assert.Equal(20, run.Windows[0].Scenarios.Single(s => s.Name == "get").Requests);
        Assert.Equal(10 * 1024, run.Windows[0].Scenarios.Single(s => s.Name == "echo-1k").BytesReceived);
        Assert.True(run.GeneratorCheck!.Result.Ok > 0);
        Assert.Equal(0, run.GeneratorCheck.Result.Failed);
        // Speed is not asserted (2 shared vCPUs); the verdict here rests on the failure threshold only.
        Assert.Equal(["http_req_failed rate==0"], run.Thresholds.Select(t => $"{t.Key} {t.Expression}"));
        Assert.True(run.Passed, string.Join("; ", run.Thresholds.Select(t => t.Describe())));

        var directory = Path.Combine(Path.GetTempPath(), "tunnel2-functional-" + Guid.NewGuid().ToString("N"));
        try
        {
            ReportWriter.Write(run, directory);
            Assert.Contains("**Verdict: PASS**", await File.ReadAllTextAsync(Path.Combine(directory, "report.md")).DefaultTimeout(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task OpenLoop_KeepsStartingRequestsWhileEarlierOnesAreStuck()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);
        var runner = new WindowRunner(client, TimeProvider.System, new EngineOptions());
        var spec = Spec(new Inject(20, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500)), ("block", new Uri(backend.BaseUri, "/block"), 1));

        var window = runner.RunAsync(spec, null, CancellationToken.None);
        // Ten arrivals in 500 ms: all ten must reach the backend while none has been answered.
        var concurrent = 0;
        while (concurrent < 10)
        {
            concurrent = await backend.Blocked.Reader.ReadAsync().DefaultTimeout();
        }

        backend.OpenGate();
        var result = await window.DefaultTimeout();

        Assert.Equal(10, result.Total.Ok);
        Assert.Equal(10, result.Total.Requests);
    }

    [Fact]
    public async Task Failures_AreCountedByReason()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions { RequestTimeout = TimeSpan.FromSeconds(2) }, TimeProvider.System);
        var runner = new WindowRunner(client, TimeProvider.System, new EngineOptions());
        var spec = Spec(
            new Inject(30, TimeSpan.FromSeconds(1), TimeSpan.FromMilliseconds(500)),
            ("fail", new Uri(backend.BaseUri, "/fail"), 1),
            ("hang", new Uri(backend.BaseUri, "/hang"), 1),
            ("closed-port", new Uri($"http://127.0.0.1:{ClosedPort()}/"), 1));

        var result = await runner.RunAsync(spec, null, CancellationToken.None).DefaultTimeout();

        Assert.Equal(15, result.Total.Requests);
        Assert.Equal(0, result.Total.Ok);
        Assert.Equal(5, result.Scenarios.Single(s => s.Name == "fail").Failures["status 503"]);
        Assert.Equal(5, result.Scenarios.Single(s => s.Name == "hang").Failures["timeout"]);
        Assert.Equal(5, result.Scenarios.Single(s => s.Name == "closed-port").Failures["connection (ConnectionError)"]);
        Assert.Equal(5, result.Total.FailuresOf(FailureKind.Timeout));
    }

    [Fact]
    public async Task KeepConstant_NeverHasMoreRequestsInFlightThanCopies()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);
        var runner = new WindowRunner(client, TimeProvider.System, new EngineOptions());
        var spec = Spec(new KeepConstant(3, TimeSpan.FromMilliseconds(300)), ("delay", new Uri(backend.BaseUri, "/loadtest/delay/2"), 1));

        var result = await runner.RunAsync(spec, null, CancellationToken.None).DefaultTimeout();

        // Closed loop: a copy sends its next request only when the previous one has ended.
        Assert.InRange(backend.MaxConcurrent, 1, 3);
        Assert.True(result.Total.Requests >= 3, $"{result.Total.Requests} requests: every copy should have run");
        Assert.Equal(result.Total.Requests, result.Total.Ok);
        Assert.Null(result.OfferedRps);
        Assert.Equal(0, result.Total.LagHistogram.TotalCount);
    }

    private static WindowSpec Spec(LoadSimulation simulation, params (string Name, Uri Url, double Weight)[] scenarios) => new(
        TargetCatalog.BackendDirect,
        1,
        simulation,
        0,
        0,
        scenarios.Select(s => new ScenarioPlan(s.Name, new RequestTemplate(HttpMethod.Get, s.Url), s.Weight)).ToList(),
        false,
        TimeSpan.Zero);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
