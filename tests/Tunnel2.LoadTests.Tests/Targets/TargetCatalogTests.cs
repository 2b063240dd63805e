using Tunnel2.LoadTests.Targets;

namespace Tunnel2.LoadTests.Tests.Targets;

public class TargetCatalogTests
{
    private static readonly IReadOnlyList<TargetDefinition> All = TargetCatalog.All(TargetEndpoints.Default);

    [Fact]
    public void TunnelTargets_PrefixTheSessionPath()
    {
        var backendTunnel = All.Single(t => t.Name == TargetCatalog.BackendTunnel);
        var httpbinTunnel = All.Single(t => t.Name == TargetCatalog.HttpbinTunnel);

        Assert.Equal("http://127.0.0.1:12000/session/22222222-2222-2222-2222-222222222222/loadtest/get", backendTunnel.Resolve("/loadtest/get").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:12000/session/22222222-2222-2222-2222-222222222222/get", httpbinTunnel.Resolve("/get").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:12007/loadtest/get", All[0].Resolve("/loadtest/get").AbsoluteUri);
        Assert.Equal("http://127.0.0.1:12005/delay/0.005", All[2].Resolve("/delay/0.005").AbsoluteUri);
    }

    [Theory]
    [InlineData("all", "backend-direct,backend-tunnel,httpbin-direct,httpbin-tunnel")]
    [InlineData("direct", "backend-direct,httpbin-direct")]
    [InlineData("tunnel", "backend-tunnel,httpbin-tunnel")]
    [InlineData("testbackend", "backend-direct,backend-tunnel")]
    [InlineData("httpbin-tunnel,backend-direct", "backend-direct,httpbin-tunnel")]
    public void Select_NamesAndGroups_KeepTheCanonicalOrder(string selector, string expected)
    {
        Assert.Equal(expected, string.Join(',', TargetCatalog.Select(All, [selector]).Select(t => t.Name)));
    }

    [Fact]
    public void Select_Unknown_Throws()
    {
        Assert.Throws<ArgumentException>(() => TargetCatalog.Select(All, ["backend-diret"]));
    }
}
