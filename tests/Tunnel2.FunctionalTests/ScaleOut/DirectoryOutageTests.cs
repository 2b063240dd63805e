using System.Diagnostics;
using System.Net;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>Redis goes away and comes back empty: local sessions never notice, remote ones fail fast and recover by renewal.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class DirectoryOutageTests(ITestOutputHelper output)
{
    [RedisFact]
    public async Task RedisRestart_LocalSessionsKeepWorking_RemoteOnesRecoverWithinARenewal()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");
        await cluster.StartClientAsync([a.Url], uplinks: 1);
        await a.WaitForUplinkCountAsync(1);
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(cluster, b));

        await cluster.Redis!.KillAsync();

        // The holder serves its session as if nothing happened.
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(cluster, a));
        }

        // The other node answers 503 at once instead of hanging on Redis (its lookup cache, 1 s, is dropped so the
        // request really asks Redis).
        var directoryB = b.Get<SessionDirectory>();
        directoryB.Invalidate(ScaleOutCluster.SessionId);
        var started = Stopwatch.GetTimestamp();
        using (var unavailable = await cluster.Http.GetAsync(ScaleOutCluster.Url(b.Url, "/loadtest/get")).DefaultTimeout())
        {
            var elapsed = Stopwatch.GetElapsedTime(started);
            output.WriteLine($"RESULT during the outage B answered {(int)unavailable.StatusCode} in {elapsed.TotalMilliseconds:0} ms");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
            Assert.NotNull(unavailable.Headers.RetryAfter);
            Assert.True(elapsed < TimeSpan.FromSeconds(1), $"503 took {elapsed}");
        }

        // Redis comes back empty. A writes its lease again when the connection is restored (or at the next renewal).
        // B reconnects on its own schedule (each node's client notices the restart separately); until then it still
        // answers 503 for sessions it does not hold.
        var rewritten = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Get<SessionDirectory>().Renewed += (ok, failed) =>
        {
            if (ok > 0 && failed == 0)
            {
                rewritten.TrySetResult();
            }
        };
        var bReconnected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        directoryB.Reconnected += () => bReconnected.TrySetResult();
        Assert.False(directoryB.IsConnected);
        await cluster.Redis.RestartAsync();
        var restarted = Stopwatch.GetTimestamp();
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(cluster, a));
        await rewritten.Task.TimeoutAfter(TimeSpan.FromSeconds(15));
        var recovered = Stopwatch.GetElapsedTime(restarted);
        await bReconnected.Task.TimeoutAfter(TimeSpan.FromSeconds(15));
        var bBack = Stopwatch.GetElapsedTime(restarted);

        directoryB.Invalidate(ScaleOutCluster.SessionId);
        output.WriteLine($"RESULT after the Redis restart A's lease was back in {recovered.TotalMilliseconds:0} ms, B's connection in {bBack.TotalMilliseconds:0} ms");
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(cluster, b));
        Assert.True(recovered < TimeSpan.FromSeconds(7), $"the lease came back after {recovered} (renewal interval 5 s)");
        Assert.True(bBack < TimeSpan.FromSeconds(7), $"B reconnected after {bBack}");
    }

    private static async Task<HttpStatusCode> StatusAsync(ScaleOutCluster cluster, ClusterNode node)
    {
        using var response = await cluster.Http.GetAsync(ScaleOutCluster.Url(node.Url, "/loadtest/get")).DefaultTimeout();
        return response.StatusCode;
    }
}
