using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Ten thousand idle public connections (reliability.md §2 D7). Client and server ends of every connection live in this
/// one test process, so each connection costs two file descriptors: the test raises its open-file limit to fit 10,000
/// (prlimit; the hard limit only where the user may), and where it cannot, floods as many as the limit allows (at least
/// 1,000). Runs alone: the socket count is the whole process's.
/// </summary>
[Collection(StreamLimitsCollection.Name)]
public sealed class ConnectionFloodTests(ITestOutputHelper output)
{
    /// <summary>The idle connections the test opens when the open-file limit allows (the catalogue's figure).</summary>
    private const int MaxIdleConnections = 10_000;

    /// <summary>Descriptors kept free for everything else in the process (hosts, pools, the runner).</summary>
    private const int DescriptorHeadroom = 2_000;

    [Fact]
    public async Task D7_ThousandsOfIdleConnections_RequestsStillServed_SocketsBackToBaseline()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var baseline = await BaselineSocketsAsync(tunnel);
        var count = IdleConnectionsThatFit(baseline);
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

        var idle = new RawHttpConnection[count];
        try
        {
            var opening = Stopwatch.StartNew();
            await Parallel.ForEachAsync(
                Enumerable.Range(0, count),
                new ParallelOptions { MaxDegreeOfParallelism = 32 },
                async (i, _) => idle[i] = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl));

            // Connected is not accepted: a connection waits in the listen backlog until Kestrel takes it, and only then
            // does the server end exist. Every client end and every server end: two sockets per connection.
            var open = 0;
            await Eventually.TrueAsync(
                () => (open = OpenSockets.Count()) >= baseline + (2 * count),
                () => $"{open} sockets open, expected at least {baseline + (2 * count)} ({count} connections accepted)",
                within: TimeSpan.FromSeconds(30));
            var memoryHeld = GC.GetTotalMemory(forceFullCollection: true);
            output.WriteLine($"[test] {count} idle connections open and accepted in {opening.ElapsedMilliseconds} ms; {open} sockets; " +
                $"managed heap {(memoryHeld - memoryBefore) / 1024 / 1024.0:0.0} MiB above baseline ({(memoryHeld - memoryBefore) / count} B per connection)");

            // While they are open: the session still serves a pooled connection, a new connection and, on 20 of the idle
            // connections themselves, a first request each. Nothing the idle connections did touched the uplinks.
            await watch.AssertHealthyAsync(expectedUplinks: 2);
            await using (var fresh = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
            {
                await fresh.SendAsync($"GET {tunnel.Target("rec/fresh")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
                Assert.Equal(200, (await fresh.ReadResponseAsync())?.StatusCode);
            }

            for (var k = 0; k < 20; k++)
            {
                var i = k * (count / 20);
                await idle[i].SendAsync($"GET {tunnel.Target($"rec/idle-{i}")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
                var response = await idle[i].ReadResponseAsync();
                Assert.NotNull(response);
                Assert.True(response.StatusCode == 200, $"Idle connection {i} got {response}.");
                Assert.Equal("ok 0", response.BodyText);
            }

            Assert.Equal(21, backend.Requests.Count);
        }
        finally
        {
            foreach (var connection in idle)
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }
            }
        }

        // Closed by the clients (FIN): Kestrel closes each server end, and the process is back where it started.
        var now = 0;
        await Eventually.TrueAsync(
            () => (now = OpenSockets.Count()) <= baseline,
            () => $"{now} sockets open, baseline {baseline}",
            within: TimeSpan.FromSeconds(30));
        output.WriteLine($"[test] sockets after closing: {now} (baseline {baseline}); managed heap {(GC.GetTotalMemory(forceFullCollection: true) - memoryBefore) / 1024} KiB above baseline");
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D7_IdleConnectionsThatNeverSendAByte_ClosedByKestrelAfterKeepAliveTimeout_UplinksKept()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, serverHost: b => b.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(1);
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(30);
        }));
        using var watch = new UplinkWatch(tunnel);
        var baseline = await BaselineSocketsAsync(tunnel);

        // 500 connections that never send anything, and one that sends a request and then stays silent.
        var idle = new RawHttpConnection[500];
        await using var used = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        try
        {
            var opened = Stopwatch.StartNew();
            await Parallel.ForEachAsync(
                Enumerable.Range(0, idle.Length),
                new ParallelOptions { MaxDegreeOfParallelism = 32 },
                async (i, _) => idle[i] = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl));
            await used.SendAsync($"GET {tunnel.Target("rec/used")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
            Assert.Equal(200, (await used.ReadResponseAsync())?.StatusCode);

            // Each waits for the server to close it: what the server sends first, if anything, is kept.
            var closedBy = await Task.WhenAll(idle.Append(used).Select(c => c.ReadUntilClosedAsync())).DefaultTimeout();
            output.WriteLine($"[test] {closedBy.Length} idle connections closed by the server {opened.ElapsedMilliseconds} ms after the first was opened");

            // Closed silently (a connection with no request in progress gets no 408), and not before the timeout.
            Assert.All(closedBy, bytes => Assert.Empty(bytes));
            Assert.True(opened.Elapsed >= TimeSpan.FromSeconds(0.9), $"Closed after {opened.ElapsedMilliseconds} ms, before the 1 s keep-alive timeout.");
        }
        finally
        {
            foreach (var connection in idle)
            {
                if (connection is not null)
                {
                    await connection.DisposeAsync();
                }
            }
        }

        await used.DisposeAsync();
        var now = 0;
        await Eventually.TrueAsync(() => (now = OpenSockets.Count()) <= baseline, () => $"{now} sockets open, baseline {baseline}");

        // The uplinks are upgraded connections, which Kestrel's keep-alive timeout does not apply to: both are still there.
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    /// <summary>
    /// The process's socket count once the tunnel is warm: one request through it and one /metrics scrape first, so
    /// the pooled connections those leave are part of the baseline.
    /// </summary>
    private async Task<int> BaselineSocketsAsync(TestTunnel tunnel)
    {
        using (var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout())
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }

        await Eventually.NoActiveStreamsAsync(tunnel);
        var baseline = OpenSockets.Count();
        output.WriteLine($"[test] sockets at baseline: {baseline}");
        return baseline;
    }

    /// <summary>
    /// How many idle connections fit under this process's descriptor limit: two descriptors each (both ends are here),
    /// with headroom, at most <see cref="MaxIdleConnections"/>. A limit too low for 1,000 fails the test with the reason
    /// rather than testing something smaller than the scenario.
    /// </summary>
    private int IdleConnectionsThatFit(int baseline)
    {
        var limit = OpenSockets.RaiseFileDescriptorLimit(baseline + (2L * MaxIdleConnections) + DescriptorHeadroom) ?? 0;
        var fit = (int)Math.Min(MaxIdleConnections, (limit - baseline - DescriptorHeadroom) / 2);
        output.WriteLine($"[test] open-file limit {limit}: {fit} idle connections");
        Assert.True(fit >= 1_000, $"The open-file limit ({limit}) leaves room for only {fit} connections; raise it (ulimit -n) to run D7.");
        return fit;
    }
}
