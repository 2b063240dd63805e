using System.CommandLine;
using Tunnel2.LoadTests.Cli;
using Tunnel2.LoadTests.Docker;

namespace Tunnel2.LoadTests.Tests.Docker;

public class DockerCliOptionsTests
{
    private static (ParseResult Parse, DockerRunSettings? Settings) Parse(string arguments)
    {
        var options = new DockerCliOptions();
        var command = new RootCommand();
        options.AddTo(command);
        var parse = command.Parse(arguments);
        return (parse, parse.Errors.Count == 0 ? options.Read(parse) : null);
    }

    [Fact]
    public void RunCommand_DockerOptions_Parse()
    {
        var result = LoadTestsCommand.Create().Parse(
            "run --profile aggressive --docker --compose-project tunnel2dev --docker-host unix:///var/run/docker.sock --restart-client-at 30s --docker-stop");

        Assert.Empty(result.Errors);
    }

    [Fact]
    public void Read_WithoutDocker_IsNull()
    {
        var (parse, settings) = Parse("");

        Assert.Empty(parse.Errors);
        Assert.Null(settings);
    }

    [Fact]
    public void Read_Docker_DefaultsToTheDevProjectAndNoRestart()
    {
        var (_, settings) = Parse("--docker --docker-host unix:///run/docker.sock");

        Assert.NotNull(settings);
        Assert.Equal("tunnel2dev", settings.Project);
        Assert.Equal(new Uri("unix:///run/docker.sock"), settings.Endpoint);
        Assert.Null(settings.RestartClientAt);
        Assert.False(settings.StopAfter);
    }

    [Fact]
    public void Read_RestartClientAt_IsADuration()
    {
        var (_, settings) = Parse("--docker --restart-client-at 1m30s");

        Assert.Equal(TimeSpan.FromSeconds(90), settings!.RestartClientAt);
    }

    [Theory]
    [InlineData("--restart-client-at 30s")]
    [InlineData("--docker-stop")]
    [InlineData("--docker --restart-client-at soon")]
    [InlineData("--docker --restart-client-at 0s")]
    [InlineData("--docker --docker-host not/a/uri")]
    public void Parse_InvalidCombinationOrValue_IsAnError(string arguments)
    {
        Assert.NotEmpty(Parse(arguments).Parse.Errors);
    }

    [Fact]
    public async Task StartAsync_NoDaemon_SaysWhichEndpointDidNotAnswer()
    {
        var socket = $"unix:///tmp/tunnel2-no-docker-{Guid.NewGuid():N}.sock";
        var settings = new DockerRunSettings("tunnel2dev", new Uri(socket), null, false, TimeSpan.FromSeconds(5));

        var error = await Assert.ThrowsAsync<DockerUnavailableException>(() => DockerRunSession.StartAsync(settings, TimeProvider.System, _ => { }, CancellationToken.None));

        Assert.Contains(socket, error.Message, StringComparison.Ordinal);
        Assert.Contains("does not answer", error.Message, StringComparison.Ordinal);
    }
}
