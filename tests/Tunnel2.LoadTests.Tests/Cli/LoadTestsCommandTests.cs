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
