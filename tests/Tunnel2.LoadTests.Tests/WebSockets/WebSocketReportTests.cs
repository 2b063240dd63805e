using System.Net;
using System.Net.WebSockets;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.WebSockets;

namespace Tunnel2.LoadTests.Tests.WebSockets;

public sealed class WebSocketReportTests
{
    [Fact]
    public void Markdown_OneColumnPerRun_WithConnectLatencyAndFailureRows()
    {
        var direct = Result("direct", connected: 1000) with
        {
            ConnectTime = Summary(p50: 1.2, p90: 2.5, p99: 4.75, max: 12),
            Latency = Summary(p50: 0.412, p90: 0.6, p99: 1.35, max: 20.5),
            MessagesSent = 30_000,
            MessagesEchoed = 30_000,
            ClosedCleanly = 1000,
        };
        var tunnel = Result("tunnel", connected: 512) with
        {
            ConnectFailures = new Dictionary<string, long> { ["timeout"] = 488 },
            MessagesSent = 15_360,
            MessagesEchoed = 15_359,
            MessagesLost = 1,
            MessageFailures = new Dictionary<string, long> { [WebSocketFailures.Lost] = 1 },
            Drops = new Dictionary<string, long> { ["aborted (ConnectionClosedPrematurely)"] = 1 },
            ClosedCleanly = 511,
            Notes = ["a | pipe"],
        };

        var markdown = WebSocketReport.ToMarkdown([direct, tunnel]);
        var lines = markdown.Split('\n').Select(line => line.TrimEnd('\r')).ToList();

        Assert.StartsWith("### WebSockets", lines[0], StringComparison.Ordinal);
        Assert.Contains("| | direct | tunnel |", lines);
        Assert.Contains("|---|---|---|", lines);
        Assert.Contains("| Sockets connected | 1,000 / 1,000 | 512 / 1,000 |", lines);
        Assert.Contains("| Connect failures | — | timeout ×488 |", lines);
        Assert.Contains("| Connect time p50 / p90 / p99 / max (ms) | 1.2 / 2.5 / 4.75 / 12 | — |", lines);
        Assert.Contains("| Messages sent / echoed / lost | 30,000 / 30,000 / 0 | 15,360 / 15,359 / 1 |", lines);
        Assert.Contains("| Echo latency p50 / p90 / p99 / max (ms) | 0.412 / 0.6 / 1.35 / 20.5 | — |", lines);
        Assert.Contains("| Sockets dropped during the run | — | aborted (ConnectionClosedPrematurely) ×1 |", lines);
        Assert.Contains("| Verdict | no failure | **failures** |", lines);
        Assert.Contains("* tunnel: a \\| pipe", lines);
        Assert.Contains("1,000 WebSockets per run, each sending one 64-byte binary message every 1000 ms", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public void Passed_OnlyWithoutAnyFailure()
    {
        var clean = Result("direct", connected: 10) with { MessagesSent = 5, MessagesEchoed = 5, ClosedCleanly = 10 };

        Assert.True(clean.Passed);
        Assert.False((clean with { Connected = 9 }).Passed);
        Assert.False((clean with { MessagesLost = 1 }).Passed);
        Assert.False((clean with { Drops = new Dictionary<string, long> { ["x"] = 1 } }).Passed);
        Assert.False((clean with { CloseFailures = new Dictionary<string, long> { [WebSocketFailures.CloseTimeout] = 1 } }).Passed);
    }

    [Fact]
    public void ConnectFailures_AreClassifiedByStatusTimeoutAndConnection()
    {
        var refused = new WebSocketException(WebSocketError.Faulted, "x", new HttpRequestException(HttpRequestError.ConnectionError, "refused"));

        Assert.Equal("status 503", WebSocketFailures.ForConnect(new WebSocketException("503"), HttpStatusCode.ServiceUnavailable, timedOut: false, phaseOver: false));
        Assert.Equal("status 503", WebSocketFailures.ForConnect(new OperationCanceledException(), HttpStatusCode.ServiceUnavailable, timedOut: true, phaseOver: false));
        Assert.Equal(WebSocketFailures.ConnectTimeout, WebSocketFailures.ForConnect(new OperationCanceledException(), 0, timedOut: true, phaseOver: false));
        Assert.Equal(WebSocketFailures.ConnectPhaseTimeout, WebSocketFailures.ForConnect(new OperationCanceledException(), 0, timedOut: true, phaseOver: true));
        Assert.Equal("connection (ConnectionError)", WebSocketFailures.ForConnect(refused, 0, timedOut: false, phaseOver: false));
        Assert.Equal("websocket (NotAWebSocket)", WebSocketFailures.ForConnect(new WebSocketException(WebSocketError.NotAWebSocket), HttpStatusCode.SwitchingProtocols, timedOut: false, phaseOver: false));
        Assert.Equal("aborted (ConnectionClosedPrematurely)", WebSocketFailures.ForDrop(new WebSocketException(WebSocketError.ConnectionClosedPrematurely)));
        Assert.Equal("closed by the server (PolicyViolation)", WebSocketFailures.ForPeerClose(WebSocketCloseStatus.PolicyViolation));
    }

    [Fact]
    public void ReasonCounter_CountsByReason_LargestFirst()
    {
        var counter = new ReasonCounter();
        counter.Add("b");
        counter.Add("a", 3);
        counter.Add("c", 3);
        counter.Add("ignored", 0);

        Assert.Equal(7, counter.Total);
        Assert.Equal(["a", "c", "b"], counter.Snapshot().Keys);
        Assert.Equal(3, counter.Snapshot()["c"]);
    }

    private static WebSocketLoadResult Result(string label, int connected) => new()
    {
        Label = label,
        Url = "ws://127.0.0.1/" + label,
        Sockets = connected == 512 ? 1000 : connected,
        MessagesPerSecond = 1,
        MessageSize = 64,
        DurationSec = 30,
        Connected = connected,
    };

    private static LatencySummary Summary(double p50, double p90, double p99, double max) =>
        new(100, p50 / 2, p50, p50, p90, p90, p99, p99, max, max);
}
