using Tunnel2.LoadTests.WebSockets;

namespace Tunnel2.LoadTests.Tests.WebSockets;

public sealed class WebSocketScheduleTests
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);

    [Fact]
    public void Phases_AreInsideTheInterval_ReproducibleFromTheSeed_AndSpread()
    {
        var phases = WebSocketSchedule.Phases(1000, Second, seed: 7);

        Assert.Equal(1000, phases.Length);
        Assert.All(phases, phase => Assert.InRange(phase, TimeSpan.Zero, Second - TimeSpan.FromTicks(1)));
        Assert.Equal(phases, WebSocketSchedule.Phases(1000, Second, seed: 7));
        Assert.NotEqual(phases, WebSocketSchedule.Phases(1000, Second, seed: 8));

        // Uniform: every tenth of the interval holds roughly a tenth of the sockets (not all at once).
        var perDecile = phases.GroupBy(phase => (int)(phase.TotalMilliseconds / 100)).ToDictionary(group => group.Key, group => group.Count());
        Assert.Equal(10, perDecile.Count);
        Assert.All(perDecile.Values, count => Assert.InRange(count, 60, 140));
    }

    [Fact]
    public void Arrivals_EverySocketAtItsPhasePlusWholeIntervals_InTimeOrder_BeforeTheEnd()
    {
        TimeSpan?[] phases = [Ms(700), Ms(100), null, Ms(400)];

        var arrivals = WebSocketSchedule.Arrivals(phases, Second, TimeSpan.FromMilliseconds(2500)).ToList();

        Assert.Equal(
            [(1, Ms(100)), (3, Ms(400)), (0, Ms(700)), (1, Ms(1100)), (3, Ms(1400)), (0, Ms(1700)), (1, Ms(2100)), (3, Ms(2400))],
            arrivals);
        Assert.DoesNotContain(arrivals, arrival => arrival.Socket == 2);
    }

    [Fact]
    public void Arrivals_TiesKeepSocketOrder_AndCountsMatchCountFor()
    {
        TimeSpan?[] phases = [Ms(50), Ms(50), Ms(0)];
        var duration = TimeSpan.FromMilliseconds(1001);

        var arrivals = WebSocketSchedule.Arrivals(phases, Ms(250), duration).ToList();

        Assert.Equal((2, Ms(0)), arrivals[0]);
        Assert.Equal((0, Ms(50)), arrivals[1]);
        Assert.Equal((1, Ms(50)), arrivals[2]);
        Assert.True(arrivals.Zip(arrivals.Skip(1)).All(pair => pair.First.Offset <= pair.Second.Offset));
        for (var socket = 0; socket < phases.Length; socket++)
        {
            Assert.Equal(WebSocketSchedule.CountFor(phases[socket]!.Value, Ms(250), duration), arrivals.Count(arrival => arrival.Socket == socket));
        }
    }

    [Theory]
    [InlineData(0, 1000, 1000, 1)]
    [InlineData(999, 1000, 1000, 1)]
    [InlineData(0, 1000, 30_000, 30)]
    [InlineData(500, 1000, 30_000, 30)]
    [InlineData(500, 1000, 30_400, 30)]
    [InlineData(500, 1000, 30_501, 31)]
    [InlineData(2000, 5000, 1000, 0)]
    public void CountFor_IsTheNumberOfSendsBeforeTheEnd(int phaseMs, int intervalMs, int durationMs, long expected)
    {
        Assert.Equal(expected, WebSocketSchedule.CountFor(Ms(phaseMs), Ms(intervalMs), Ms(durationMs)));
    }

    [Fact]
    public void Header_RoundTrips_AndShortMessagesAreNotOurs()
    {
        var message = new byte[64];
        WebSocketSchedule.WriteHeader(message, sequence: 41, intendedTimestamp: 123_456_789_012, sentTimestamp: -5);

        Assert.True(WebSocketSchedule.TryReadHeader(message, out var sequence, out var intended, out var sent));
        Assert.Equal(41, sequence);
        Assert.Equal(123_456_789_012, intended);
        Assert.Equal(-5, sent);
        Assert.False(WebSocketSchedule.TryReadHeader(message.AsSpan(0, WebSocketSchedule.HeaderSize - 1), out _, out _, out _));
        Assert.Throws<ArgumentException>(() => WebSocketSchedule.WriteHeader(new byte[10], 1, 2, 3));
    }

    [Theory]
    [InlineData("direct=ws://127.0.0.1:12007/loadtest/ws", "direct", "ws://127.0.0.1:12007/loadtest/ws")]
    [InlineData("tunnel=http://127.0.0.1:12000/session/22222222-2222-2222-2222-222222222222/loadtest/ws", "tunnel", "ws://127.0.0.1:12000/session/22222222-2222-2222-2222-222222222222/loadtest/ws")]
    [InlineData("https://example.com/ws?a=b", "example.com", "wss://example.com/ws?a=b")]
    [InlineData("ws://127.0.0.1:9/x=y", "127.0.0.1:9", "ws://127.0.0.1:9/x=y")]
    public void TryParseTarget_LabelAndSchemes(string text, string label, string url)
    {
        Assert.True(WebSocketSchedule.TryParseTarget(text, out var parsedLabel, out var parsed));
        Assert.Equal(label, parsedLabel);
        Assert.Equal(url, parsed.ToString());
    }

    [Theory]
    [InlineData("ftp://127.0.0.1/")]
    [InlineData("direct=not a url")]
    [InlineData("/relative")]
    public void TryParseTarget_RejectsOtherSchemesAndRelativeUrls(string text)
    {
        Assert.False(WebSocketSchedule.TryParseTarget(text, out _, out _));
    }

    [Fact]
    public void Options_Validate_RejectsWhatCannotRun()
    {
        var valid = new WebSocketLoadOptions { Label = "x", Url = new Uri("ws://127.0.0.1/") };
        valid.Validate();

        Assert.Throws<ArgumentException>(() => (valid with { Sockets = 0 }).Validate());
        Assert.Throws<ArgumentException>(() => (valid with { MessagesPerSecond = 0 }).Validate());
        Assert.Throws<ArgumentException>(() => (valid with { MessageSize = WebSocketSchedule.HeaderSize - 1 }).Validate());
        Assert.Throws<ArgumentException>(() => (valid with { Duration = TimeSpan.Zero }).Validate());
        Assert.Throws<ArgumentException>(() => (valid with { ConnectConcurrency = 0 }).Validate());
        Assert.Equal(TimeSpan.FromMilliseconds(500), (valid with { MessagesPerSecond = 2 }).Interval);
    }

    private static TimeSpan Ms(int milliseconds) => TimeSpan.FromMilliseconds(milliseconds);
}
