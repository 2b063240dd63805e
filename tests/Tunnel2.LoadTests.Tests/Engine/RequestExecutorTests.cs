using HdrHistogram;
using System.Net;
using Microsoft.Extensions.Time.Testing;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Engine;

public class RequestExecutorTests
{
    private static readonly RequestTemplate Get = new(HttpMethod.Get, new Uri("http://127.0.0.1:1/loadtest/get"));

    [Fact]
    public async Task ExecuteAsync_LateStart_LatencyCountsFromTheIntendedStart()
    {
        var time = new FakeTimeProvider();
        var respond = new TaskCompletionSource<HttpResponseMessage>();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), time, new StubHandler((_, _) => respond.Task));
        var stats = new ScenarioStats("get");
        var intended = time.GetTimestamp();

        // The generator was 95 ms late, then the server took 3 ms.
        time.Advance(TimeSpan.FromMilliseconds(95));
        var execution = new RequestExecutor(client, time).ExecuteAsync(stats, Get, intended, openLoop: true, CancellationToken.None);
        time.Advance(TimeSpan.FromMilliseconds(3));
        respond.SetResult(new HttpResponseMessage(HttpStatusCode.OK));
        await execution.DefaultTimeout();
        stats.TakeInterval();

        AssertOnlyValue(98_000, stats.LatencyTotal);
        AssertOnlyValue(3_000, stats.ServiceTotal);
        AssertOnlyValue(95_000, stats.LagTotal);
        Assert.Equal(1, stats.Ok);
    }

    [Fact]
    public async Task ExecuteAsync_ClosedLoop_RecordsNoLag()
    {
        var time = new FakeTimeProvider();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), time, StubHandler.Status(200));
        var stats = new ScenarioStats("get");

        await new RequestExecutor(client, time).ExecuteAsync(stats, Get, time.GetTimestamp(), openLoop: false, CancellationToken.None).DefaultTimeout();
        stats.TakeInterval();

        Assert.Equal(1, stats.LatencyTotal.TotalCount);
        Assert.Equal(0, stats.LagTotal.TotalCount);
    }

    [Fact]
    public async Task ExecuteAsync_Failure_IsCountedByReasonAndStillTimed()
    {
        var time = new FakeTimeProvider();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), time, StubHandler.Status(503));
        var stats = new ScenarioStats("get");

        await new RequestExecutor(client, time).ExecuteAsync(stats, Get, time.GetTimestamp(), openLoop: true, CancellationToken.None).DefaultTimeout();
        stats.TakeInterval();

        Assert.Equal(1, stats.Failed);
        Assert.Equal(1, stats.Failures[FailureReason.ForStatus(503)]);
        Assert.Equal(1, stats.LatencyTotal.TotalCount);
        Assert.Equal(0, stats.InFlight);
    }

    private static void AssertOnlyValue(long microseconds, HistogramBase histogram)
    {
        Assert.Equal(1, histogram.TotalCount);
        Assert.Equal(histogram.LowestEquivalentValue(microseconds), histogram.LowestEquivalentValue(histogram.GetMaxValue()));
    }
}
