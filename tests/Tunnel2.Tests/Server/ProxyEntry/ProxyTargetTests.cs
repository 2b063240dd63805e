using Tunnel2.Server.ProxyEntry;

namespace Tunnel2.Tests.Server.ProxyEntry;

public sealed class ProxyTargetTests
{
    private const string Id = "22222222-2222-2222-2222-222222222222";

    [Theory]
    [InlineData("/session/" + Id + "/loadtest/get", "/loadtest/get")]
    [InlineData("/session/" + Id + "/a%2Fb/%E2%82%AC?x=%20y&z", "/a%2Fb/%E2%82%AC?x=%20y&z")]
    [InlineData("/session/" + Id + "/", "/")]
    [InlineData("/session/" + Id, "/")]
    [InlineData("/session/" + Id + "?q=1", "/?q=1")]
    [InlineData("/session/" + Id + "//double//slash", "//double//slash")]
    [InlineData("/session/" + Id + "/file.txt?.=..", "/file.txt?.=..")]
    [InlineData("/session/" + Id + "/...", "/...")]
    [InlineData("http://evil.example/session/" + Id + "/x", "/x")]
    public void TryParse_ValidTarget_ForwardsRestVerbatim(string rawTarget, string expected)
    {
        var status = ProxyTarget.TryParse(rawTarget, out var target);

        Assert.Equal(ProxyTargetStatus.Ok, status);
        Assert.Equal(Guid.Parse(Id), target.SessionId);
        Assert.Equal(expected, target.Target.ToString());
        Assert.Equal("/session/" + Id, target.ForwardPrefix.ToString());
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/healthz")]
    [InlineData("/sessions/" + Id + "/x")]
    [InlineData("/Session/" + Id + "/x")]
    [InlineData("*")]
    [InlineData("http://host")]
    public void TryParse_OtherPaths_NotTunnel(string rawTarget)
        => Assert.Equal(ProxyTargetStatus.NotTunnel, ProxyTarget.TryParse(rawTarget, out _));

    [Theory]
    [InlineData("/session/not-a-guid/x")]
    [InlineData("/session//x")]
    [InlineData("/session/22222222222222222222222222222222/x")]
    [InlineData("/session/" + Id + "0/x")]
    [InlineData("/session/a%2Fb/x")]
    public void TryParse_MalformedId_BadSessionId(string rawTarget)
        => Assert.Equal(ProxyTargetStatus.BadSessionId, ProxyTarget.TryParse(rawTarget, out _));

    [Theory]
    [InlineData("/session/" + Id + "/a/../b")]
    [InlineData("/session/" + Id + "/./b")]
    [InlineData("/session/" + Id + "/..")]
    [InlineData("/session/" + Id + "/a/%2e%2e/b")]
    [InlineData("/session/" + Id + "/a/%2E./b")]
    [InlineData("/session/" + Id + "/a/.%2e")]
    [InlineData("/session/" + Id + "/%2e/b?x")]
    public void TryParse_DotSegments_Rejected(string rawTarget)
        => Assert.Equal(ProxyTargetStatus.DotSegments, ProxyTarget.TryParse(rawTarget, out _));

    [Theory]
    [InlineData("/a/.b/c", false)]
    [InlineData("/a/b./c", false)]
    [InlineData("/a/.../c", false)]
    [InlineData("/a/%2e%2e%2e", false)]
    [InlineData("/a/%2ex", false)]
    [InlineData("/a/./c", true)]
    [InlineData("/a/../c", true)]
    [InlineData("/a/%2E%2e", true)]
    public void HasDotSegment_RecognisesOnlyWholeDotSegments(string path, bool expected)
        => Assert.Equal(expected, ProxyTarget.HasDotSegment(path));
}
