using Tunnel2.Server;

namespace Tunnel2.Tests.Server;

public sealed class TunnelServerOptionsValidatorTests
{
    [Fact]
    public void Validate_Defaults_Succeed()
        => Assert.True(new TunnelServerOptionsValidator().Validate(null, new TunnelServerOptions()).Succeeded);

    [Fact]
    public void Validate_BadToken_NamesEachProblem()
    {
        var options = new TunnelServerOptions();
        var token = new TunnelTokenOptions { Name = "", Sha256 = "abc" };
        token.Sessions.Add("not-a-guid");
        options.Tokens.Add(token);
        options.UplinkPath = "/session/connect";

        var result = new TunnelServerOptionsValidator().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToArray();
        Assert.Contains(failures, f => f.Contains("Tunnel:Tokens:0:Name", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:Tokens:0:Sha256", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("not-a-guid", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.Contains("Tunnel:UplinkPath", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_DuplicateTokenNames_Fails()
    {
        var options = new TunnelServerOptions();
        options.Tokens.Add(new TunnelTokenOptions { Name = "a", Sha256 = new string('0', 64) });
        options.Tokens.Add(new TunnelTokenOptions { Name = "a", Sha256 = new string('1', 64) });

        var result = new TunnelServerOptionsValidator().Validate(null, options);

        Assert.Contains(result.Failures!, f => f.Contains("used twice", StringComparison.Ordinal));
    }
}
