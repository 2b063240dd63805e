using System.Text.Json;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Reporting;
using Tunnel2.LoadTests.Resources;
using Tunnel2.LoadTests.Run;
using Tunnel2.LoadTests.Targets;
using Tunnel2.LoadTests.Tests.Infrastructure;
using Tunnel2.LoadTests.Thresholds;

namespace Tunnel2.LoadTests.Tests.Reporting;

/// <summary>Report generation from a recorded run: two stages on all four targets, one threshold breached.</summary>
public sealed class ReportWriterTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "tunnel2-report-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public void Write_ProducesEveryFileWithTheRunsNumbers()
    {
        var run = RecordedRun();

        var html = ReportWriter.Write(run, _directory);

        Assert.Equal(Path.Combine(_directory, "report.html"), html);
        foreach (var file in new[] { "report.md", "report.html", "results.json", "results.csv", "stages.csv", "resources.csv" })
        {
            Assert.True(File.Exists(Path.Combine(_directory, file)), file);
        }

        foreach (var png in new[] { "latency_over_time.png", "rps_over_time.png", "latency_distribution.png", "latency_distribution_stage1.png", "latency_distribution_stage2.png", "resources_cpu.png" })
        {
            var bytes = File.ReadAllBytes(Path.Combine(_directory, png));
            Assert.True(bytes.Length > 10_000, $"{png} is {bytes.Length} bytes");
            Assert.Equal(PngSignature, bytes[..8]);
        }
    }

    [Fact]
    public void Markdown_HasVerdictBreachOverheadAndPerTargetTables()
    {
        ReportWriter.Write(RecordedRun(), _directory);
        var md = File.ReadAllText(Path.Combine(_directory, "report.md"));

        Assert.Contains("**Verdict: FAIL** (1 threshold(s) breached)", md, StringComparison.Ordinal);
        Assert.Contains("- ✗ http_req_duration{scenario:get,target:backend-tunnel} p(99)<0.85 on backend-tunnel: ", md, StringComparison.Ordinal);
        // Stage 1, testbackend: direct p50 0.5 ms (0.4–0.6), tunnel p50 0.8 ms (0.7–0.9): Δ +0.3 ms.
        Assert.Matches(@"\| 1 \| inject 100/s \| testbackend \| 0\.(49\d|5) \| 0\.(79\d|8) \| \+0\.30?\d? \|", md);
        Assert.Contains("| backend-tunnel | 6,010 | 6,000 | 10 | 10 | 0 | 0 | 0 |", md, StringComparison.Ordinal);
        Assert.Contains("backend-tunnel: status 502 ×10", md, StringComparison.Ordinal);
        Assert.Contains("testbackend: tunnel / direct ceiling = 3000 / 10000 = **0.30**", md, StringComparison.Ordinal);
        Assert.Contains("TunnelServer (PID 4242): sampled each second", md, StringComparison.Ordinal);
        Assert.Contains("TunnelClient: not sampled (no PID given)", md, StringComparison.Ordinal);
        Assert.Contains("![Latency over time", md, StringComparison.Ordinal);
        Assert.Contains("Ceiling ≈ **20000 RPS**", md, StringComparison.Ordinal);
    }

    [Fact]
    public void Html_IsSelfContained()
    {
        ReportWriter.Write(RecordedRun(), _directory);
        var html = File.ReadAllText(Path.Combine(_directory, "report.html"));

        Assert.Contains("<img src=\"data:image/png;base64,iVBORw0KGgo", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<img src=\"latency", html, StringComparison.Ordinal);
        Assert.Contains("<span class=\"fail\">FAIL</span>", html, StringComparison.Ordinal);
    }

    [Fact]
    public void DataFiles_HoldTheRawNumbers()
    {
        var run = RecordedRun();
        ReportWriter.Write(run, _directory);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_directory, "results.json")));
        Assert.Equal("FAIL", json.RootElement.GetProperty("verdict").GetString());
        Assert.Equal(8, json.RootElement.GetProperty("windows").GetArrayLength());
        Assert.Equal(4, json.RootElement.GetProperty("overhead").GetArrayLength());
        var firstWindow = json.RootElement.GetProperty("windows")[0];
        Assert.Equal(1000, firstWindow.GetProperty("total").GetProperty("latency").GetProperty("count").GetInt64());

        var seconds = File.ReadAllLines(Path.Combine(_directory, "results.csv"));
        Assert.StartsWith("run_time_s,window_time_s,stage,target,scenario,", seconds[0], StringComparison.Ordinal);
        Assert.Equal(run.Windows.Sum(w => w.Seconds.Count) + 1, seconds.Length);

        var stages = File.ReadAllLines(Path.Combine(_directory, "stages.csv"));
        Assert.Equal(1 + (8 * 2), stages.Length);
        Assert.Contains(stages, line => line.StartsWith("1,inject 100/s,false,backend-tunnel,get,101,", StringComparison.Ordinal) && line.Contains("status 502=10", StringComparison.Ordinal));
    }

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private static RunResult RecordedRun()
    {
        var targets = TargetCatalog.All(TargetEndpoints.Default);
        var run = new RunResult
        {
            Profile = "recorded",
            StartedUtc = new DateTimeOffset(2025, 1, 2, 3, 4, 5, TimeSpan.Zero),
            DurationSec = 80,
            Machine = new MachineInfo("test", 2, "Linux", ".NET 10", true),
            Targets = targets,
        };
        var start = 0.0;
        foreach (var (stage, rate) in new[] { (1, 100.0), (2, 500.0) })
        {
            foreach (var target in targets)
            {
                var slow = target.Path == PathKind.Tunnel ? 0.3 : 0;
                var failures = target.Name == TargetCatalog.BackendTunnel && stage == 1
                    ? new Dictionary<FailureReason, int> { [FailureReason.ForStatus(502)] = 10 }
                    : null;
                var get = Recorded.Scenario("get", Recorded.Spread((int)(rate * 10), 0.4 + slow, 0.6 + slow), failures);
                run.Windows.Add(Recorded.Window(target.Name, stage, rate, 10, start, [get]));
                start += 10;
            }
        }

        run.GeneratorCheck = new ClosedLoopResult(TargetCatalog.BackendDirect, "http://127.0.0.1:12007/loadtest/ping", 32, 3, 20_000, Recorded.Scenario("ping", Recorded.Spread(100, 0.1, 2)));
        run.Ceilings.Add(new ClosedLoopResult(TargetCatalog.BackendDirect, "http://127.0.0.1:12007/loadtest/ping", 50, 5, 10_000, Recorded.Scenario("ping", Recorded.Spread(100, 1, 5))));
        run.Ceilings.Add(new ClosedLoopResult(TargetCatalog.BackendTunnel, "http://127.0.0.1:12000/session/x/loadtest/ping", 50, 5, 3_000, Recorded.Scenario("ping", Recorded.Spread(100, 5, 20))));
        run.Resources = new ResourceReport(
            [new SampledProcess("TunnelServer", 4242, true, true, "GC from System.Runtime EventCounters over EventPipe"), new SampledProcess("TunnelClient", null, false, false, "not sampled (no PID given)")],
            Enumerable.Range(0, 80).Select(s => new ResourceSample("TunnelServer", s, s / 40 + 1, TargetCatalog.BackendTunnel, 30 + (s % 7), 80, 31, s, s / 10, 0, s * 0.5, 20)).ToList());
        run.Thresholds = ThresholdEvaluator.Evaluate(
            Threshold.Defaults.Concat(Threshold.FromProfile(new Dictionary<string, IReadOnlyList<string>> { ["http_req_duration{scenario:get,target:backend-tunnel}"] = ["p(99)<0.85"] }, "profile recorded")),
            targets,
            run.Windows);
        return run;
    }
}
