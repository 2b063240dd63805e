using System.Diagnostics;
using System.Net;
using Tunnel2.Server.Hosting;
using Tunnel2.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>
/// Graceful drain (SIGTERM) of one node while requests flow: in-flight requests finish, new ones that still reach the
/// draining node are forwarded (directory) or refused with 503 + Connection: close, and the client moves its uplink.
/// </summary>
[Collection(ScaleOutCollection.Name)]
public sealed class DrainTests(ITestOutputHelper output)
{
    [RedisFact]
    public async Task GracefulDrain_UnderLoad_WithDirectory_ZeroFailedRequests()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");
        await cluster.StartClientAsync([a.Url, b.Url], uplinks: 2);
        await a.WaitForUplinkCountAsync(1);
        await b.WaitForUplinkCountAsync(1);

        // A load balancer: A and B in rotation until it takes A out, which it does a while after A began to drain
        // (Kubernetes removes the endpoint concurrently with SIGTERM).
        var aInRotation = 1;
        var load = new LoadRecorder();
        var run = load.RunAsync(
            cluster.Http,
            n => Volatile.Read(ref aInRotation) == 1 && n % 2 == 0 ? ("A", ScaleOutCluster.Url(a.Url, "/loadtest/get")) : ("B", ScaleOutCluster.Url(b.Url, "/loadtest/get")),
            workers: 8,
            maxRequests: 200_000,
            maxDuration: TimeSpan.FromSeconds(60));
        await load.WaitUntilAsync(r => r.Count(x => x.Node == "A" && x.Ok) >= 100, TimeSpan.FromSeconds(20));

        // Something long in flight on A's own uplink, so A keeps draining (and listening) until the test lets it go.
        using var holdClient = ScaleOutCluster.CreatePublicClient();
        var hold = holdClient.GetAsync(ScaleOutCluster.Url(a.Url, "/hold"));
        await cluster.HoldStarted.DefaultTimeout();

        var stop = a.StopAsync();
        await a.Get<DrainState>().Started.DefaultTimeout();
        var drainStart = Stopwatch.GetTimestamp();

        // While draining, A forwards what still reaches it to B, and tells keep-alive clients to go.
        using (var during = await cluster.Http.GetAsync(ScaleOutCluster.Url(a.Url, "/loadtest/get")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, during.StatusCode);
            Assert.True(during.Headers.ConnectionClose);
        }

        await load.WaitUntilAsync(r => r.Count(x => x.Node == "A" && x.StartTicks > drainStart) >= 100, TimeSpan.FromSeconds(20));
        Volatile.Write(ref aInRotation, 0);
        cluster.ReleaseHold();
        using (var held = await hold.DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        }

        await stop.TimeoutAfter(TimeSpan.FromSeconds(20));
        await b.WaitForUplinkCountAsync(2);
        var okBefore = load.OkCount;
        await load.WaitUntilAsync(_ => load.OkCount >= okBefore + 300, TimeSpan.FromSeconds(20));
        load.Stop();
        await run.TimeoutAfter(TimeSpan.FromSeconds(40));

        var records = load.Records;
        var duringDrain = records.Count(r => r.Node == "A" && r.StartTicks > drainStart);
        var failures = records.Where(r => !r.Ok).ToArray();
        output.WriteLine($"RESULT graceful drain with directory: {records.Count} requests, {duringDrain} sent to A while it drained, {failures.Length} failed " +
            $"({string.Join("; ", failures.Take(5).Select(f => $"{f.Node} {f.Status} {f.Error}"))})");
        Assert.Empty(failures);
        Assert.True(duringDrain >= 100);
    }

    [Fact]
    public async Task GracefulDrain_WithoutDirectory_InFlightFinish_NewRequestsGet503WithConnectionClose()
    {
        // No Redis: two independent nodes, each granting the fixed session; the client holds uplinks to both.
        await using var cluster = await ScaleOutCluster.StartAsync(output, withRedis: false);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");
        await cluster.StartClientAsync([a.Url, b.Url], uplinks: 2);
        await a.WaitForUplinkCountAsync(1);
        await b.WaitForUplinkCountAsync(1);

        var load = new LoadRecorder();
        var run = load.RunAsync(cluster.Http, _ => ("B", ScaleOutCluster.Url(b.Url, "/loadtest/get")), workers: 6, maxRequests: 200_000, maxDuration: TimeSpan.FromSeconds(60));
        await load.WaitUntilAsync(r => r.Count(x => x.Ok) >= 100, TimeSpan.FromSeconds(20));

        using var holdClient = ScaleOutCluster.CreatePublicClient();
        var hold = holdClient.GetAsync(ScaleOutCluster.Url(a.Url, "/hold"));
        await cluster.HoldStarted.DefaultTimeout();

        var stop = a.StopAsync();
        await a.Get<DrainState>().Started.DefaultTimeout();
        using (var refused = await cluster.Http.GetAsync(ScaleOutCluster.Url(a.Url, "/loadtest/get")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.True(refused.Headers.ConnectionClose);
        }

        using (var readyz = await cluster.Http.GetAsync(new Uri(a.Url, "readyz")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, readyz.StatusCode);
        }

        Assert.False(stop.IsCompleted);
        cluster.ReleaseHold();
        using (var held = await hold.DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        }

        await stop.TimeoutAfter(TimeSpan.FromSeconds(20));
        await b.WaitForUplinkCountAsync(2);
        var okBefore = load.OkCount;
        await load.WaitUntilAsync(_ => load.OkCount >= okBefore + 200, TimeSpan.FromSeconds(20));
        load.Stop();
        await run.TimeoutAfter(TimeSpan.FromSeconds(40));

        var failures = load.Records.Where(r => !r.Ok).ToArray();
        output.WriteLine($"RESULT graceful drain without directory: {load.Records.Count} requests through B, {failures.Length} failed");
        Assert.Empty(failures);
    }
}
