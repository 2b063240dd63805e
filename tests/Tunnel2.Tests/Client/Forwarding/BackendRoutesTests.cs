using Microsoft.Extensions.Options;
using Tunnel2.Client;
using Tunnel2.Client.Forwarding;

namespace Tunnel2.Tests.Client.Forwarding;

public sealed class BackendRoutesTests
{
    private static BackendRoutes Create()
    {
        var options = new TunnelClientOptions { Backend = "http://127.0.0.1:12005/" };
        options.Routes["/loadtest"] = "http://127.0.0.1:12007";
        options.Routes["/loadtest/special/"] = "http://127.0.0.1:9000/base/";
        return new BackendRoutes(Options.Create(options));
    }

    [Theory]
    [InlineData("/get", "http://127.0.0.1:12005/get")]
    [InlineData("/", "http://127.0.0.1:12005/")]
    [InlineData("/loadtest", "http://127.0.0.1:12007/loadtest")]
    [InlineData("/loadtest?x=1", "http://127.0.0.1:12007/loadtest?x=1")]
    [InlineData("/loadtest/get", "http://127.0.0.1:12007/loadtest/get")]
    [InlineData("/loadtestx/get", "http://127.0.0.1:12005/loadtestx/get")]
    [InlineData("/loadtest/special/a%2Fb", "http://127.0.0.1:9000/base/loadtest/special/a%2Fb")]
    [InlineData("/loadtest/specialist", "http://127.0.0.1:12007/loadtest/specialist")]
    public void Resolve_LongestSegmentPrefixWins_PathUnchanged(string target, string expected)
        => Assert.Equal(expected, Create().Resolve(target));
}
