using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Client.Uplink;
using Tunnel2.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>A node dies (SIGKILL, no drain) while it holds the session and requests flow through the others.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class NodeFailureTests(ITestOutputHelper output)
{
    [RedisFact]
    public async Task OwnerKilledUnderLoad_ClientMovesToAnotherNode_FailureWindowBounded()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeProcessAsync("A");
        var b = await cluster.StartNodeAsync("B");
        var c = await cluster.StartNodeAsync("C");

        // One uplink, preferring A: the session lives on A alone, so killing A takes it off every node.
        var connected = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var client = await cluster.StartClientAsync([a.Url, b.Url, c.Url], uplinks: 1, o => o.FailbackDelay = TimeSpan.FromMinutes(10));
        var supervisor = client.Services.GetRequiredService<UplinkSupervisor>();
        var moved = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        supervisor.UplinkConnected += (_, server) => (server.StartsWith(a.Url.ToString().TrimEnd('/'), StringComparison.Ordinal) ? connected : moved).TrySetResult(server);
        if (supervisor.ConnectedServers.Count == 1 && supervisor.ConnectedServers[0].StartsWith(a.Url.ToString().TrimEnd('/'), StringComparison.Ordinal))
        {
            connected.TrySetResult(supervisor.ConnectedServers[0]);
        }

        await connected.Task.DefaultTimeout();

        // The load balancer has already taken A out: requests go to B and C, which must forward to A, then to the new holder.
        var load = new LoadRecorder();
        var nodes = new[] { ("B", b.Url), ("C", c.Url) };
        var run = load.RunAsync(cluster.Http, n => (nodes[n % 2].Item1, ScaleOutCluster.Url(nodes[n % 2].Item2, "/loadtest/get")), workers: 8, maxRequests: 200_000, maxDuration: TimeSpan.FromSeconds(60));
        await load.WaitUntilAsync(r => r.Count(x => x.Ok) >= 300, TimeSpan.FromSeconds(20));

        var killedAt = Stopwatch.GetTimestamp();
        await a.KillAsync();
        var newHolder = await moved.Task.DefaultTimeout();
        await load.WaitUntilAsync(r => LoadRecorder.TrailingOk(r) >= 500, TimeSpan.FromSeconds(30));
        load.Stop();
        await run.TimeoutAfter(TimeSpan.FromSeconds(40));

        var records = load.Records;
        var failures = records.Where(r => !r.Ok).ToArray();
        var windowSeconds = failures.Length == 0 ? 0
            : (failures.Max(r => r.EndTicks) - failures.Min(r => r.StartTicks)) / (double)Stopwatch.Frequency;
        var recoverySeconds = (records.Where(r => r.Ok && r.StartTicks > killedAt).Select(r => r.StartTicks).DefaultIfEmpty(killedAt).Min() - killedAt) / (double)Stopwatch.Frequency;
        output.WriteLine($"RESULT owner killed: {records.Count} requests, {failures.Length} failed over {windowSeconds:0.000} s; uplink moved to {newHolder}; " +
            $"failures by status: {string.Join(", ", failures.GroupBy(f => f.Error is null ? f.Status.ToString(System.Globalization.CultureInfo.InvariantCulture) : "exception").Select(g => $"{g.Key}×{g.Count()}"))}; " +
            $"first success started {recoverySeconds:0.000} s after the kill");

        Assert.DoesNotContain(failures, f => f.StartTicks < killedAt && f.EndTicks < killedAt);
        Assert.InRange(windowSeconds, 0, 10);
        Assert.True(LoadRecorder.TrailingOk(records) >= 500);
        using var after = await cluster.Http.GetAsync(ScaleOutCluster.Url(c.Url, "/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
