using Tunnel2.Protocol;

namespace Tunnel2.Tests.Protocol;

public class UplinkHandshakeTests
{
    /// <summary>These names are the wire contract of docs/protocol.md §2; old clients and servers depend on them.</summary>
    [Fact]
    public void Constants_MatchTheDocumentedHandshake()
    {
        Assert.Equal("/tunnel/connect", UplinkHandshake.DefaultPath);
        Assert.Equal("tunnel2", UplinkHandshake.UpgradeToken);
        Assert.Equal("Tunnel2-Session", UplinkHandshake.SessionHeader);
        Assert.Equal("Tunnel2-Instance", UplinkHandshake.InstanceHeader);
        Assert.Equal("Tunnel2-Version", UplinkHandshake.VersionHeader);
        Assert.Equal("Tunnel2-Public-Url", UplinkHandshake.PublicUrlHeader);
        Assert.Equal("1", UplinkHandshake.CurrentVersion);
    }
}
