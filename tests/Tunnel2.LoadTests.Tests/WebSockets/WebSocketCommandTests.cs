using Tunnel2.LoadTests.Cli;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Tests.Infrastructure;
using Tunnel2.LoadTests.WebSockets;

namespace Tunnel2.LoadTests.Tests.WebSockets;

public sealed class WebSocketCommandTests
{
    [Theory]
    [InlineData("ws --url direct=ws://127.0.0.1:12007/loadtest/ws --url tunnel=http://127.0.0.1:12000/session/x/loadtest/ws --sockets 1000 --rate 1 --message-size 64 --duration 30s --connect-concurrency 50 --connect-timeout 5s --connect-phase-timeout 2m --echo-timeout 5s --seed 3 --markdown /tmp/w.md --json /tmp/w.json --quiet")]
    [InlineData("ws report --json a.json --json b.json --markdown out.md")]
    public void AllOptions_Parse(string commandLine)
    {
        Assert.Empty(LoadTestsCommand.Create().Parse(commandLine).Errors);
    }

    [Theory]
    [InlineData("ws")]
    [InlineData("ws --url ftp://127.0.0.1/")]
    [InlineData("ws --url ws://127.0.0.1/ --duration soon")]
    [InlineData("ws report")]
    public void BadArguments_AreParseErrors(string commandLine)
    {
        Assert.NotEmpty(LoadTestsCommand.Create().Parse(commandLine).Errors);
    }

    [Fact]
    public async Task ImpossibleSettings_ExitWithTheUsageCode()
    {
        var code = await LoadTestsCommand.Create().Parse("ws --url ws://127.0.0.1:1/ --message-size 8").InvokeAsync().DefaultTimeout();

        Assert.Equal(LoadTestsCommand.ExitUsage, code);
    }

    [Fact]
    public async Task Report_JoinsTheRunsOfSeveralJsonFiles_IntoOneTable()
    {
        var directory = Directory.CreateTempSubdirectory("tunnel2-ws-").FullName;
        try
        {
            var direct = Run("direct") with { Latency = new LatencySummary(10, 0.1, 0.3, 0.25, 0.3, 0.4, 0.45, 0.9, 1.1, 2.5) };
            var tunnel = Run("tunnel (client limit 512)") with { Connected = 512, ConnectFailures = new Dictionary<string, long> { ["timeout"] = 488 } };
            await File.WriteAllTextAsync(Path.Combine(directory, "a.json"), WebSocketCommand.WriteJson([direct]));
            await File.WriteAllTextAsync(Path.Combine(directory, "b.json"), WebSocketCommand.WriteJson([tunnel]));
            var output = Path.Combine(directory, "out.md");

            var code = await LoadTestsCommand.Create()
                .Parse($"ws report --json {Path.Combine(directory, "a.json")} --json {Path.Combine(directory, "b.json")} --markdown {output}")
                .InvokeAsync().DefaultTimeout();

            Assert.Equal(LoadTestsCommand.ExitPass, code);
            Assert.Equal(WebSocketReport.ToMarkdown([direct, tunnel]), await File.ReadAllTextAsync(output));
            var roundTripped = WebSocketCommand.ReadJson(WebSocketCommand.WriteJson([tunnel])).Single();
            Assert.Equal(488, roundTripped.ConnectFailures["timeout"]);
            Assert.Equal(tunnel.Latency, roundTripped.Latency);
            Assert.False(roundTripped.Passed);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static WebSocketLoadResult Run(string label) => new()
    {
        Label = label,
        Url = "ws://127.0.0.1/ws",
        Sockets = 1000,
        Connected = 1000,
        MessagesPerSecond = 1,
        MessageSize = 64,
        DurationSec = 30,
        MessagesSent = 30_000,
        MessagesEchoed = 30_000,
        ClosedCleanly = 1000,
        Seconds = [new WebSocketSecond(1, 1000, 1000, 1000, 0, 0.3, 0.9, 2.5)],
    };
}
