using Microsoft.AspNetCore.HostFiltering;
using Microsoft.Extensions.Configuration;
using Tunnel2.Server;

namespace Tunnel2.Tests.Server;

public sealed class AllowedHostsValidatorTests
{
    [Theory]
    [InlineData("*")]
    [InlineData("tunnel.example.com")]
    [InlineData("tunnel.example.com;*.tunnel.example.com;127.0.0.1;[::1];localhost")]
    public void Validate_HostNames_Succeed(string allowedHosts)
        => Assert.True(Validate(allowedHosts).Succeeded);

    [Theory]
    [InlineData("https://tunnel.example.com", "without scheme")]
    [InlineData("tunnel.example.com/", "without scheme")]
    [InlineData("tunnel.example.com:12000", "ports are not compared")]
    [InlineData("127.0.0.1:12000", "ports are not compared")]
    [InlineData("tunnel.example.com; 127.0.0.1", "no spaces")]
    [InlineData("*example.com", "a wildcard is")]
    [InlineData("tunnel.example.com;*", "allows every host")]
    [InlineData("0.0.0.0", "allows every host")]
    [InlineData("fd00::1", "in brackets, [fd00::1]")]
    public void Validate_Mistake_NamesTheEntryAndTheFix(string allowedHosts, string fix)
    {
        var result = Validate(allowedHosts);

        Assert.True(result.Failed);
        var failure = Assert.Single(result.Failures!);
        Assert.StartsWith("AllowedHosts has '", failure, StringComparison.Ordinal);
        Assert.Contains(fix, failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_AnArray_FailsInsteadOfAllowingEveryHost()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["AllowedHosts:0"] = "tunnel.example.com",
        }).Build();

        // ASP.NET Core reads only the string value, so this array would have left every host allowed ("*").
        var result = new AllowedHostsValidator(configuration).Validate(null, new HostFilteringOptions { AllowedHosts = ["*"] });

        Assert.Contains(result.Failures!, f => f.Contains("one string", StringComparison.Ordinal));
    }

    private static Microsoft.Extensions.Options.ValidateOptionsResult Validate(string allowedHosts)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["AllowedHosts"] = allowedHosts }).Build();

        // As ASP.NET Core's web host defaults fill the options from that key.
        var options = new HostFilteringOptions { AllowedHosts = allowedHosts.Split(';', StringSplitOptions.RemoveEmptyEntries) };
        return new AllowedHostsValidator(configuration).Validate(null, options);
    }
}
