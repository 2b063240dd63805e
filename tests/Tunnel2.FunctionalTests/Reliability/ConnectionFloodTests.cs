using System.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Ten thousand idle public connections (reliability.md §2 D7). The server end of every connection lives in this test
/// process and the client ends, but for the 20 the test sends requests on, in a python3 child process: one descriptor
/// per connection on each side, so both fit under a 20,000 open-file limit that an unprivileged user cannot raise. The
/// test raises its soft limit as far as the hard one (prlimit), and where even that is too low, floods as many as fit
/// (at least 1,000). Runs alone: the socket count is the whole process's.
/// </summary>
[Collection(StreamLimitsCollection.Name)]
public sealed class ConnectionFloodTests(ITestOutputHelper output)
{
    /// <summary>The idle connections the test opens when the open-file limit allows (the catalogue's figure).</summary>
    private const int MaxIdleConnections = 10_000;

    /// <summary>Descriptors kept free for everything else in the process (hosts, pools, the runner).</summary>
    private const int DescriptorHeadroom = 2_000;

    /// <summary>Idle connections whose client end stays in this process, to send a first request on each.</summary>
    private const int LocalIdleConnections = 20;

    [Fact]
    public async Task D7_ThousandsOfIdleConnections_RequestsStillServed_SocketsBackToBaseline()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var baseline = await BaselineSocketsAsync(tunnel);
        var count = IdleConnectionsThatFit(baseline);
        var memoryBefore = GC.GetTotalMemory(forceFullCollection: true);

        var idle = new RawHttpConnection[LocalIdleConnections];
        IdleConnectionHolder? held = null;
        try
        {
            var opening = Stopwatch.StartNew();
            held = await IdleConnectionHolder.StartAsync(tunnel.ServerUrl, count - LocalIdleConnections, output);
            await Parallel.ForEachAsync(
                Enumerable.Range(0, idle.Length),
                new ParallelOptions { MaxDegreeOfParallelism = 8 },
                async (i, _) => idle[i] = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl));

            // Connected is not accepted: a connection waits in the listen backlog until Kestrel takes it, and only then
            // does the server end exist. Every server end and the local client ends are sockets of this process.
            var expected = baseline + count + LocalIdleConnections;
            var open = 0;
            await Eventually.TrueAsync(
                () => (open = OpenSockets.Count()) >= expected,
                () => $"{open} sockets open, expected at least {expected} ({count} connections accepted)",
                within: TimeSpan.FromSeconds(30));
            var memoryHeld = GC.GetTotalMemory(forceFullCollection: true);
            output.WriteLine($"[test] {count} idle connections open and accepted in {opening.ElapsedMilliseconds} ms; {open} sockets here; " +
                $"managed heap {(memoryHeld - memoryBefore) / 1024 / 1024.0:0.0} MiB above baseline ({(memoryHeld - memoryBefore) / count} B per connection)");

            // While they are open: the session still serves a pooled connection, a new connection and, on the 20 local
            // idle connections themselves, a first request each. Nothing the idle connections did touched the uplinks.
            await watch.AssertHealthyAsync(expectedUplinks: 2);
            await using (var fresh = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl))
            {
                await fresh.SendAsync($"GET {tunnel.Target("rec/fresh")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
                Assert.Equal(200, (await fresh.ReadResponseAsync())?.StatusCode);
            }

            for (var i = 0; i < idle.Length; i++)
            {
                await idle[i].SendAsync($"GET {tunnel.Target($"rec/idle-{i}")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
                var response = await idle[i].ReadResponseAsync();
                Assert.NotNull(response);
                Assert.True(response.StatusCode == 200, $"Idle connection {i} got {response}.");
                Assert.Equal("ok 0", response.BodyText);
            }

            Assert.Equal(21, backend.Requests.Count);
            Assert.True(held.IsRunning, "The process holding the other idle connections should still be holding them.");
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

            if (held is not null)
            {
                await held.DisposeAsync();
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
    /// How many idle connections fit under this process's descriptor limit: one descriptor each (the server end) plus the
    /// local client ends, with headroom, at most <see cref="MaxIdleConnections"/>. A limit too low for 1,000 fails the
    /// test with the reason rather than testing something smaller than the scenario.
    /// </summary>
    private int IdleConnectionsThatFit(int baseline)
    {
        var limit = OpenSockets.RaiseFileDescriptorLimit(baseline + MaxIdleConnections + LocalIdleConnections + DescriptorHeadroom) ?? 0;
        var fit = (int)Math.Min(MaxIdleConnections, limit - baseline - LocalIdleConnections - DescriptorHeadroom);
        output.WriteLine($"[test] open-file limit {limit}: {fit} idle connections");
        Assert.True(fit >= 1_000, $"The open-file limit ({limit}) leaves room for only {fit} connections; raise it (ulimit -n) to run D7.");
        return fit;
    }

    /// <summary>
    /// Idle client connections held by a python3 child process: it raises its own open-file limit to the hard one,
    /// connects, prints "ready N", and closes them all (FIN) when its standard input closes.
    /// </summary>
    private sealed class IdleConnectionHolder : IAsyncDisposable
    {
        private const string Script = """
            import resource, socket, sys
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
            held = [socket.create_connection((host, port), timeout=30) for _ in range(count)]
            print(f"ready {len(held)}", flush=True)
            sys.stdin.read()
            for s in held:
                s.close()
            """;

        private readonly Process _process;

        private IdleConnectionHolder(Process process) => _process = process;

        public bool IsRunning => !_process.HasExited;

        public static async Task<IdleConnectionHolder> StartAsync(Uri server, int count, ITestOutputHelper output)
        {
            var start = new ProcessStartInfo("python3")
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[] { "-c", Script, server.Host, server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), count.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            {
                start.ArgumentList.Add(argument);
            }

            Process process;
            try
            {
                process = Process.Start(start) ?? throw new InvalidOperationException("python3 did not start.");
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new InvalidOperationException("D7 holds the idle client ends in a python3 process; install python3 (tests/run-tests.sh does).", ex);
            }

            var holder = new IdleConnectionHolder(process);
            try
            {
                var line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(120));
                if (line != $"ready {count}")
                {
                    var error = await process.StandardError.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
                    throw new InvalidOperationException($"The python3 holder said '{line}' instead of 'ready {count}': {error}");
                }

                output.WriteLine($"[test] python3 (pid {process.Id}) holds {count} idle connections");
                return holder;
            }
            catch
            {
                await holder.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                _process.StandardInput.Close();
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                _process.Kill(entireProcessTree: true);
            }
            finally
            {
                _process.Dispose();
            }
        }
    }
}
