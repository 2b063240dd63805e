using Tunnel2.LoadTests.Cli;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Cli;

public class LoadTestsCommandTests
{
    [Fact]
    public void Run_AllOptions_Parse()
    {
        var result = LoadTestsCommand.Create().Parse(
            "run --profile smoke --direct-backend http://127.0.0.1:12007 --tunnel http://127.0.0.1:12000 --session 22222222-2222-2222-2222-222222222222 " +
            "--httpbin http://127.0.0.1:12005 --targets backend-direct httpbin-direct --server-pid 10 --client-pid 11 --out /tmp/x --stage-duration 5s --live mix");

        Assert.Empty(result.Errors);
    }

    [Theory]
    [InlineData("speedtest --url http://127.0.0.1:12007/loadtest/bytes/{size} --url tunnel=http://127.0.0.1:12000/session/x/loadtest/bytes/{size} --mode upload --streams 8 --payload-size 1GiB --duration 5s --warm-up 500ms --repeat 3 --json /tmp/s.json")]
    [InlineData("alloc --url http://127.0.0.1:12000/x --pid TunnelServer=10 --pid 11 --requests 1000 --concurrency 8 --warm-up-requests 0 --idle-intervals 1 --types 0 --json /tmp/a.json")]
    [InlineData("plot --tsv in.tsv --out out.png --title t --ylabel ms --log")]
    [InlineData("rate --url http://127.0.0.1:12007/loadtest/get --rps 100 --json /tmp/r.json")]
    public void BenchCommands_AllOptions_Parse(string commandLine)
    {
        Assert.Empty(LoadTestsCommand.Create().Parse(commandLine).Errors);
    }

    [Theory]
    [InlineData("speedtest --url not-a-url")]
    [InlineData("speedtest --url http://x/ --streams 0")]
    [InlineData("speedtest --url http://x/ --payload-size lots")]
    [InlineData("speedtest --url http://x/ --mode sideways")]
    [InlineData("alloc --url http://x/ --pid TunnelServer=abc")]
    [InlineData("alloc --url http://x/ --pid 1 --requests 0")]
    [InlineData("alloc --pid 1")]
    [InlineData("plot --tsv in.tsv")]
    public void BenchCommands_BadArguments_AreParseErrors(string commandLine)
    {
        Assert.NotEmpty(LoadTestsCommand.Create().Parse(commandLine).Errors);
    }

    [Theory]
    [InlineData("tunnel=http://127.0.0.1:12000/s/x?a=b", "tunnel", "http://127.0.0.1:12000/s/x?a=b")]
    [InlineData("http://127.0.0.1:12007/loadtest/bytes/{size}?seed=2", "127.0.0.1:12007", "http://127.0.0.1:12007/loadtest/bytes/{size}?seed=2")]
    public void TryParseLabelledUrl_LabelIsOptional(string text, string label, string url)
    {
        Assert.True(BenchCommands.TryParseLabelledUrl(text, out var parsedLabel, out var parsedUrl));
        Assert.Equal((label, url), (parsedLabel, parsedUrl));
    }

    [Theory]
    [InlineData("TunnelClient=42", "TunnelClient", 42)]
    [InlineData("42", "pid 42", 42)]
    public void TryParseProcess_RoleIsOptional(string text, string role, int pid)
    {
        Assert.True(BenchCommands.TryParseProcess(text, out var process));
        Assert.Equal((role, pid), (process.Role, process.Pid));
    }

    [Fact]
    public async Task Rate_Json_WritesResultsWithoutTheReport()
    {
        await using var backend = await Functional.InProcessBackend.StartAsync();
        var directory = Directory.CreateTempSubdirectory("tunnel2-rate-").FullName;
        try
        {
            var json = Path.Combine(directory, "r.json");
            var code = await LoadTestsCommand.Create()
                .Parse($"rate --url {backend.BaseUri}loadtest/get --rps 50 --duration 1s --live off --threshold http_req_failed:rate==0 --json {json}")
                .InvokeAsync().DefaultTimeout();

            Assert.Equal(LoadTestsCommand.ExitPass, code);
            using var document = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(json));
            var total = document.RootElement.GetProperty("targetTotals")[0];
            Assert.Equal(50, total.GetProperty("requests").GetInt64());
            Assert.True(total.GetProperty("latency").GetProperty("p99Ms").GetDouble() > 0);
            Assert.Equal(["r.json"], Directory.GetFiles(directory).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("run")]
    [InlineData("run --profile smoke --stage-duration soon")]
    [InlineData("run --profile smoke --tunnel not-a-url")]
    [InlineData("rate --url http://127.0.0.1:1/ --rps 10 --duration 10")]
    [InlineData("rate --rps 10")]
    public void BadArguments_AreParseErrors(string commandLine)
    {
        Assert.NotEmpty(LoadTestsCommand.Create().Parse(commandLine).Errors);
    }

    [Fact]
    public async Task Run_UnknownProfile_ExitsWithTheUsageCodeBeforeAnyLoad()
    {
        var code = await LoadTestsCommand.Create().Parse("run --profile no-such-profile").InvokeAsync().DefaultTimeout();

        Assert.Equal(LoadTestsCommand.ExitUsage, code);
    }

    [Fact]
    public async Task Run_UnreachableTarget_ExitsWithTheUsageCode()
    {
        var code = await LoadTestsCommand.Create().Parse("run --profile smoke --targets backend-direct --direct-backend http://127.0.0.1:1 --live off")
            .InvokeAsync().DefaultTimeout();

        Assert.Equal(LoadTestsCommand.ExitUsage, code);
    }
}
