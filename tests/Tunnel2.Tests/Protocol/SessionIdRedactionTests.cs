using Tunnel2.Protocol;

namespace Tunnel2.Tests.Protocol;

public class SessionIdRedactionTests
{
    private static readonly Guid s_devSession = Guid.Parse("22222222-2222-2222-2222-222222222222");

    [Fact]
    public void Redact_GivesShortStableLabel()
    {
        var label = SessionIdRedaction.Redact(s_devSession);

        Assert.Matches("^s:[0-9a-f]{8}$", label);
        Assert.Equal(label, SessionIdRedaction.Redact(Guid.Parse("22222222-2222-2222-2222-222222222222")));
    }

    [Fact]
    public void Redact_DoesNotContainTheId()
    {
        var label = SessionIdRedaction.Redact(s_devSession);

        Assert.DoesNotContain("2222", label, StringComparison.Ordinal);
    }

    [Fact]
    public void Redact_DifferentIds_DifferentLabels()
    {
        var labels = Enumerable.Range(0, 1000).Select(_ => SessionIdRedaction.Redact(Guid.NewGuid())).ToHashSet();

        // 32 bits of hash: a collision among 1,000 ids has odds of about 1 in 10,000.
        Assert.True(labels.Count >= 999);
    }
}
