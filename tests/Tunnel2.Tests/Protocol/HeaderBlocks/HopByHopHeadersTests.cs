using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class HopByHopHeadersTests
{
    [Theory]
    [InlineData("Connection")]
    [InlineData("keep-alive")]
    [InlineData("PROXY-CONNECTION")]
    [InlineData("Proxy-Authorization")]
    [InlineData("TE")]
    [InlineData("Trailer")]
    [InlineData("Transfer-Encoding")]
    [InlineData("Upgrade")]
    [InlineData("HTTP2-Settings")]
    public void IsHopByHop_ConnectionScopedField_True(string name)
    {
        Assert.True(HopByHopHeaders.IsHopByHop(name));
    }

    [Theory]
    [InlineData("Content-Type")]
    [InlineData("Authorization")]
    [InlineData("Cookie")]
    [InlineData("X-Forwarded-For")]
    [InlineData("Connection-Id")]
    public void IsHopByHop_EndToEndField_False(string name)
    {
        Assert.False(HopByHopHeaders.IsHopByHop(name));
    }

    [Theory]
    [InlineData("Host")]
    [InlineData("forwarded")]
    [InlineData("X-Forwarded-For")]
    [InlineData("X-Forwarded-Host")]
    [InlineData("X-Forwarded-Proto")]
    [InlineData("X-Forwarded-Prefix")]
    public void IsReplacedByEntry_ForwardingFields_True(string name)
    {
        Assert.True(HopByHopHeaders.IsReplacedByEntry(name));
    }

    [Fact]
    public void IsReplacedByEntry_OrdinaryField_False()
    {
        Assert.False(HopByHopHeaders.IsReplacedByEntry("User-Agent"));
    }

    [Theory]
    [InlineData("close", "close", true)]
    [InlineData("keep-alive, X-Secret", "x-secret", true)]
    [InlineData(" X-A ,X-B ", "X-B", true)]
    [InlineData("X-Secret-Plus", "X-Secret", false)]
    [InlineData("", "X-Secret", false)]
    [InlineData(",,", "X-Secret", false)]
    public void IsNominated_MatchesWholeCommaSeparatedTokens(string connectionValue, string name, bool expected)
    {
        Assert.Equal(expected, HopByHopHeaders.IsNominated(connectionValue, name));
    }
}
