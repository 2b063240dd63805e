using Tunnel2.Client.Uplink;

namespace Tunnel2.Tests.Client.Uplink;

public sealed class ReconnectBackoffTests
{
    [Fact]
    public void Next_CeilingDoublesUpToCap_DelaysStayWithinCeiling()
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), new Random(42));
        var expectedCeilings = new[] { 1, 2, 4, 8, 16, 30, 30, 30 };

        foreach (var seconds in expectedCeilings)
        {
            Assert.Equal(TimeSpan.FromSeconds(seconds), backoff.CurrentCeiling);
            var delay = backoff.Next();
            Assert.InRange(delay, TimeSpan.Zero, TimeSpan.FromSeconds(seconds));
        }
    }

    [Fact]
    public void Next_FullJitter_SpreadsOverTheWholeRange()
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(30), new Random(7));
        var delays = Enumerable.Range(0, 200).Select(_ => backoff.Next().TotalSeconds).ToArray();

        Assert.Contains(delays, d => d < 5);
        Assert.Contains(delays, d => d > 25);
    }

    [Fact]
    public void Reset_StartsFromTheBaseAgain()
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        for (var i = 0; i < 10; i++)
        {
            backoff.Next();
        }

        backoff.Reset();

        Assert.Equal(0, backoff.Attempt);
        Assert.Equal(TimeSpan.FromSeconds(1), backoff.CurrentCeiling);
    }

    [Fact]
    public void Next_ManyAttempts_NeverOverflows()
    {
        var backoff = new ReconnectBackoff(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));
        for (var i = 0; i < 200; i++)
        {
            Assert.InRange(backoff.Next(), TimeSpan.Zero, TimeSpan.FromSeconds(30));
        }
    }
}
