using Tunnel2.Client;

namespace Tunnel2.Tests.Client;

public sealed class TunnelClientOptionsValidatorTests
{
    private static TunnelClientOptions Valid() => new() { Token = "t2_" + new string('a', 64) };

    [Fact]
    public void Validate_ValidOptions_Succeed()
        => Assert.True(new TunnelClientOptionsValidator().Validate(null, Valid()).Succeeded);

    [Fact]
    public void Validate_NoToken_ExplainsWhereToPutIt()
    {
        var options = Valid();
        options.Token = null;

        var failures = new TunnelClientOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.Contains("TUNNEL2_TOKEN", StringComparison.Ordinal) && f.Contains("--token-file", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("ftp://host")]
    [InlineData("not a url")]
    [InlineData("http://host/?x=1")]
    public void Validate_BadServerUrl_NamesTheFlag(string server)
    {
        var options = Valid();
        options.Server = server;

        var failures = new TunnelClientOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith("--server", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BackendHttpClient_DefaultBuiltin_UnknownValueNamed()
    {
        var options = Valid();
        Assert.Equal(BackendHttpClient.Builtin, options.BackendHttpClient);
        options.BackendHttpClient = (BackendHttpClient)7;

        var failures = new TunnelClientOptionsValidator().Validate(null, options).Failures!;

        Assert.Contains(failures, f => f.StartsWith("Tunnel:BackendHttpClient", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BadSessionUplinksAndRoutes_AllReported()
    {
        var options = Valid();
        options.Session = "abc";
        options.Uplinks = 0;
        options.Routes["api"] = "http://127.0.0.1:1";
        options.MaxConcurrentRequests = 0;

        var failures = new TunnelClientOptionsValidator().Validate(null, options).Failures!.ToArray();

        Assert.Contains(failures, f => f.Contains("--session", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("--uplinks", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("must start with '/'", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("--max-concurrent-requests", StringComparison.Ordinal));
    }
}
