using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Client.Forwarding;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Protocol;
using Tunnel2.Server.Tcp;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>
/// Limits on long-lived streams and what is left behind when one ends. Over a limit the entry answers what the README
/// documents (503 with Retry-After), and once streams end everything works again. When a WebSocket or a TCP service
/// connection ends, from either side, nothing stays open: the server's streams (<c>tunnel2_active_streams</c> on
/// /metrics), the TCP listener's connection count, the client's forwarding slots, and the process's sockets (entries of
/// /proc/self/fd that are sockets; backend, server and client share this process, so the count covers all three).
/// </summary>
/// <remarks>
/// Runs alone (no other test class at the same time), because the socket count is the whole process's. Waiting is on
/// signals (the server's in-flight request count, the listener's ConnectionClosed, the backend's closes); only
/// counters without a signal (the stream gauge, the socket count) are re-read, at most every 20 ms for 10 s.
/// </remarks>
[Collection(StreamLimitsCollection.Name)]
public sealed class StreamLimitsTests(ITestOutputHelper output)
{
    private const string EchoPath = "/loadtest/ws";

    [Fact]
    public async Task WebSocketsBeyondTheClientsStreamLimit_Get503WithRetryAfter_AndEverythingRecovers()
    {
        await using var harness = await Harness.StartAsync(output, new TestTunnelOptions
        {
            Uplinks = 1,
            ConfigureClient = o => o.Limits.MaxConcurrentStreams = 4,
        });
        var held = new List<ClientWebSocket>();
        try
        {
            for (var i = 0; i < 4; i++)
            {
                held.Add(await harness.OpenEchoSocketAsync());
            }

            Assert.Equal(4, await harness.ActiveStreamsAsync());

            // A fifth WebSocket and a plain request: the uplink has no stream left, the entry says so at once.
            using (var fifth = new ClientWebSocket())
            {
                fifth.Options.CollectHttpResponseDetails = true;
                await Assert.ThrowsAsync<WebSocketException>(() => fifth.ConnectAsync(harness.WsUrl(EchoPath), CancellationToken.None).DefaultTimeout());
                Assert.Equal(HttpStatusCode.ServiceUnavailable, fifth.HttpStatusCode);
                Assert.Equal(["2"], Header(fifth.HttpResponseHeaders, "Retry-After"));
            }

            await AssertCapacity503Async(harness);

            // One WebSocket closes (public client, close handshake): its stream is released, and new work gets through.
            await held[0].CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).DefaultTimeout();
            held[0].Dispose();
            held.RemoveAt(0);
            await harness.WaitForActiveStreamsAsync(3);

            using (var ok = await harness.Tunnel.Http.GetAsync(harness.Tunnel.Url("/loadtest/get")).DefaultTimeout())
            {
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }

            held.Add(await harness.OpenEchoSocketAsync());
            Assert.Equal(4, await harness.ActiveStreamsAsync());
        }
        finally
        {
            foreach (var socket in held)
            {
                socket.Abort();
                socket.Dispose();
            }
        }

        await harness.WaitForActiveStreamsAsync(0);
    }

    [Fact]
    public async Task SlowRequestsBeyondTheClientsQueue_Get503_TheQueuedOnesComplete_AndTheTunnelRecovers()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var arrivals = Channel.CreateUnbounded<string>();
        await using var harness = await Harness.StartAsync(output, new TestTunnelOptions
        {
            ConfigureClient = o =>
            {
                o.MaxConcurrentRequests = 2;
                o.MaxQueuedRequests = 1;
            },
            MapBackend = app => app.MapGet("/slow/{n}", async (string n, HttpContext context) =>
            {
                arrivals.Writer.TryWrite(n);
                await gate.Task.WaitAsync(context.RequestAborted);
                return "done " + n;
            }),
        });
        var forwarder = harness.Forwarder;

        // Two requests take both forwarding slots; the third waits in the queue, which then is full.
        var running = new[] { harness.GetStringAsync("/slow/1"), harness.GetStringAsync("/slow/2") };
        var seen = new HashSet<string> { await arrivals.Reader.ReadAsync().AsTask().DefaultTimeout(), await arrivals.Reader.ReadAsync().AsTask().DefaultTimeout() };
        Assert.Equal(["1", "2"], seen.Order());
        var queued = harness.GetStringAsync("/slow/3");
        await Harness.WaitUntilAsync(() => forwarder.Admitted == 3, () => $"admitted {forwarder.Admitted}, expected 3");
        Assert.Equal(1, forwarder.QueueDepth);
        Assert.False(arrivals.Reader.TryRead(out _), "The third request must wait in the client's queue, not reach the backend.");

        await AssertCapacity503Async(harness);

        gate.SetResult();
        Assert.Equal((HttpStatusCode.OK, "done 1"), await running[0].DefaultTimeout());
        Assert.Equal((HttpStatusCode.OK, "done 2"), await running[1].DefaultTimeout());
        Assert.Equal((HttpStatusCode.OK, "done 3"), await queued.DefaultTimeout());
        Assert.Equal(HttpStatusCode.OK, (await harness.GetStringAsync("/loadtest/get")).Status);
        await Harness.WaitUntilAsync(() => forwarder.Admitted == 0, () => $"admitted {forwarder.Admitted}, expected 0");
        await harness.WaitForActiveStreamsAsync(0);
    }

    [Fact]
    public async Task OpenWebSocketsHoldingEveryForwardingSlot_DoNotBlockPlainRequests()
    {
        await using var harness = await Harness.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.ResponseHeadersTimeout = TimeSpan.FromSeconds(3),
            ConfigureClient = o => o.MaxConcurrentRequests = 2,
        });
        using var first = await harness.OpenEchoSocketAsync();
        using var second = await harness.OpenEchoSocketAsync();

        var (status, body) = await harness.GetStringAsync("/loadtest/get").DefaultTimeout();

        Assert.True(status == HttpStatusCode.OK, $"A plain request behind two open WebSockets got {(int)status}: {body}");
    }

    [Fact]
    public async Task WebSocketsClosedByThePublicClient_ReleaseStreamsSlotsAndSockets()
    {
        await using var harness = await Harness.StartAsync(output);
        var baseline = await harness.BaselineSocketsAsync();
        var sockets = new List<ClientWebSocket>();
        for (var i = 0; i < 8; i++)
        {
            sockets.Add(await harness.OpenEchoSocketAsync());
        }

        Assert.Equal(8, await harness.ActiveStreamsAsync());
        // Upgraded streams hold no forwarding slot or queue place (only the server's per-session stream cap).
        Assert.Equal(0, harness.Forwarder.Admitted);
        harness.AssertSocketsAbove(baseline, 8);

        foreach (var socket in sockets)
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None).DefaultTimeout();
            Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
            socket.Dispose();
        }

        await harness.AssertReleasedAsync(baseline);
    }

    [Fact]
    public async Task WebSocketsAbortedByThePublicClient_ReleaseStreamsSlotsAndSockets()
    {
        await using var harness = await Harness.StartAsync(output);
        var baseline = await harness.BaselineSocketsAsync();
        var sockets = new List<ClientWebSocket>();
        for (var i = 0; i < 8; i++)
        {
            sockets.Add(await harness.OpenEchoSocketAsync());
        }

        Assert.Equal(8, await harness.ActiveStreamsAsync());
        harness.AssertSocketsAbove(baseline, 8);

        // No close handshake: the connections just go away.
        foreach (var socket in sockets)
        {
            socket.Abort();
            socket.Dispose();
        }

        await harness.AssertReleasedAsync(baseline);
    }

    [Fact]
    public async Task WebSocketsKilledByTheBackend_PublicClientsSeeAnAbort_AndEverythingIsReleased()
    {
        var accepted = Channel.CreateUnbounded<int>();
        await using var harness = await Harness.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app =>
            {
                app.UseWebSockets();
                app.Map("/dies", async (HttpContext context) =>
                {
                    using var server = await context.WebSockets.AcceptWebSocketAsync();
                    accepted.Writer.TryWrite(1);
                    await server.ReceiveAsync(new byte[16], context.RequestAborted);
                    context.Abort();
                });
            },
        });
        var baseline = await harness.BaselineSocketsAsync();
        var sockets = new List<ClientWebSocket>();
        for (var i = 0; i < 8; i++)
        {
            var socket = new ClientWebSocket();
            await socket.ConnectAsync(harness.WsUrl("/dies"), CancellationToken.None).DefaultTimeout();
            await accepted.Reader.ReadAsync().AsTask().DefaultTimeout();
            sockets.Add(socket);
        }

        Assert.Equal(8, await harness.ActiveStreamsAsync());
        harness.AssertSocketsAbove(baseline, 8);

        foreach (var socket in sockets)
        {
            await socket.SendAsync("x"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).DefaultTimeout();
            await Assert.ThrowsAsync<WebSocketException>(() => socket.ReceiveAsync(new byte[16], CancellationToken.None).DefaultTimeout());
            Assert.Equal(WebSocketState.Aborted, socket.State);
            socket.Dispose();
        }

        await harness.AssertReleasedAsync(baseline);
    }

    [Fact]
    public async Task TcpConnectionsClosedByThePublicClient_ReleaseTheServiceConnectionsAndSockets()
    {
        await using var service = TcpEchoService.Start();
        await using var harness = await Harness.StartAsync(output, TcpOptions(service));
        var listener = harness.TcpListener("echo");
        var closed = new CountdownSignal(listener);
        var baseline = await harness.BaselineSocketsAsync();
        var clients = await ConnectAndEchoAsync(listener.Port, count: 8);

        Assert.Equal(8, listener.ActiveConnections);
        Assert.Equal(8, await harness.ActiveStreamsAsync());
        harness.AssertSocketsAbove(baseline, 8);

        clients.ForEach(client => client.Dispose());

        await closed.WaitAsync(8);
        await service.WaitForClosedAsync(8).DefaultTimeout();
        Assert.Equal(0, listener.ActiveConnections);
        await harness.AssertReleasedAsync(baseline);
    }

    [Fact]
    public async Task TcpConnectionsClosedByTheService_PublicClientsSeeEof_AndEverythingIsReleased()
    {
        await using var service = TcpEchoService.Start();
        await using var harness = await Harness.StartAsync(output, TcpOptions(service));
        var listener = harness.TcpListener("echo");
        var closed = new CountdownSignal(listener);
        var baseline = await harness.BaselineSocketsAsync();
        var clients = await ConnectAndEchoAsync(listener.Port, count: 8);

        Assert.Equal(8, listener.ActiveConnections);
        harness.AssertSocketsAbove(baseline, 8);

        await service.CloseAllAsync();

        foreach (var client in clients)
        {
            Assert.Equal(0, await client.GetStream().ReadAsync(new byte[16]).AsTask().DefaultTimeout());
            client.Dispose();
        }

        await closed.WaitAsync(8);
        Assert.Equal(0, listener.ActiveConnections);
        await harness.AssertReleasedAsync(baseline);
    }

    private static TestTunnelOptions TcpOptions(TcpEchoService service) => new()
    {
        StartBackend = true,
        ConfigureServer = o => o.Tcp.Enabled = true,
        ConfigureClient = o => o.TcpServices["echo"] = $"127.0.0.1:{service.Port}",
    };

    /// <summary><paramref name="count"/> public TCP connections, each proven to echo through the tunnel.</summary>
    private static async Task<List<TcpClient>> ConnectAndEchoAsync(int port, int count)
    {
        var clients = new List<TcpClient>();
        for (var i = 0; i < count; i++)
        {
            clients.Add(await ConnectAndEchoOneAsync(port, i));
        }

        return clients;
    }

    private static async Task<TcpClient> ConnectAndEchoOneAsync(int port, int index)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, port).DefaultTimeout();
        var message = Encoding.ASCII.GetBytes($"hello {index:00}");
        await client.GetStream().WriteAsync(message).AsTask().DefaultTimeout();
        var echo = new byte[message.Length];
        await client.GetStream().ReadExactlyAsync(echo).AsTask().DefaultTimeout();
        Assert.Equal(message, echo);
        return client;
    }

    /// <summary>The documented answer when the session's client cannot take more: 503, Retry-After, "at capacity".</summary>
    private static async Task AssertCapacity503Async(Harness harness)
    {
        using var refused = await harness.Tunnel.Http.GetAsync(harness.Tunnel.Url("/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("2", refused.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(CultureInfo.InvariantCulture));
        Assert.Contains("at capacity", await refused.Content.ReadAsStringAsync().DefaultTimeout(), StringComparison.Ordinal);
    }

    private static IEnumerable<string> Header(IReadOnlyDictionary<string, IEnumerable<string>>? headers, string name) =>
        headers?.FirstOrDefault(pair => string.Equals(pair.Key, name, StringComparison.OrdinalIgnoreCase)).Value ?? [];

    /// <summary>A TestTunnel plus what these tests observe: in-flight server requests, the stream gauge, the process's sockets.</summary>
    private sealed class Harness : IAsyncDisposable
    {
        private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

        private readonly InFlightRequests _requests;
        private readonly ITestOutputHelper _output;

        private Harness(TestTunnel tunnel, InFlightRequests requests, ITestOutputHelper output)
        {
            Tunnel = tunnel;
            _requests = requests;
            _output = output;
        }

        public TestTunnel Tunnel { get; }

        public BackendForwarder Forwarder => Tunnel.Client!.Services.GetRequiredService<BackendForwarder>();

        public static async Task<Harness> StartAsync(ITestOutputHelper output, TestTunnelOptions? options = null)
        {
            options ??= new TestTunnelOptions();
            var requests = new InFlightRequests();
            var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
            {
                StartBackend = options.StartBackend,
                StartClient = options.StartClient,
                ConfigureBackend = options.ConfigureBackend,
                MapBackend = options.MapBackend,
                BackendUrl = options.BackendUrl,
                ConfigureServer = options.ConfigureServer,
                ConfigureServerHost = builder =>
                {
                    builder.Services.AddSingleton<IStartupFilter>(requests);
                    options.ConfigureServerHost?.Invoke(builder);
                },
                ServerCertificate = options.ServerCertificate,
                ConfigureClient = options.ConfigureClient,
                Uplinks = options.Uplinks,
            });
            return new Harness(tunnel, requests, output);
        }

        /// <summary>Re-reads <paramref name="condition"/> until it holds, for at most the default test timeout.</summary>
        public static async Task WaitUntilAsync(Func<bool> condition, Func<string> describe)
        {
            var deadline = DateTime.UtcNow + TimeoutExtensions.DefaultTimeoutValue;
            while (!condition())
            {
                if (DateTime.UtcNow > deadline)
                {
                    Assert.Fail($"Not reached within {TimeoutExtensions.DefaultTimeoutValue.TotalSeconds:0} s: {describe()}");
                }

                await Task.Delay(PollInterval);
            }
        }

        public Uri WsUrl(string path) => new UriBuilder(Tunnel.Url(path)) { Scheme = "ws" }.Uri;

        public TcpServiceListener TcpListener(string service)
        {
            Assert.True(Tunnel.Server.Services.GetRequiredService<TcpServiceRegistry>().TryGet(Tunnel.SessionId, service, out var listener));
            return listener!;
        }

        /// <summary>A WebSocket to TestBackend's echo through the tunnel, proven open by one round trip.</summary>
        public async Task<ClientWebSocket> OpenEchoSocketAsync()
        {
            var socket = new ClientWebSocket();
            try
            {
                await socket.ConnectAsync(WsUrl(EchoPath), CancellationToken.None).DefaultTimeout();
                await socket.SendAsync("ping"u8.ToArray(), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).DefaultTimeout();
                var buffer = new byte[16];
                var result = await socket.ReceiveAsync(buffer, CancellationToken.None).DefaultTimeout();
                Assert.Equal("ping", Encoding.UTF8.GetString(buffer, 0, result.Count));
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public async Task<(HttpStatusCode Status, string Body)> GetStringAsync(string path)
        {
            using var response = await Tunnel.Http.GetAsync(Tunnel.Url(path));
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        public async Task<int> ActiveStreamsAsync()
        {
            using var response = await Tunnel.Http.GetAsync(new Uri(Tunnel.ServerUrl, "metrics")).DefaultTimeout();
            var exposition = await response.Content.ReadAsStringAsync().DefaultTimeout();
            var line = exposition.Split('\n').Single(l => l.StartsWith("tunnel2_active_streams ", StringComparison.Ordinal));
            return (int)double.Parse(line.AsSpan("tunnel2_active_streams ".Length), CultureInfo.InvariantCulture);
        }

        public async Task WaitForActiveStreamsAsync(int expected)
        {
            var current = await ActiveStreamsAsync();
            var deadline = DateTime.UtcNow + TimeoutExtensions.DefaultTimeoutValue;
            while (current != expected)
            {
                Assert.True(DateTime.UtcNow < deadline, $"tunnel2_active_streams is {current}, expected {expected}.");
                await Task.Delay(PollInterval);
                current = await ActiveStreamsAsync();
            }
        }

        /// <summary>
        /// The process's socket count once the tunnel is warm: one request through it and one /metrics scrape first,
        /// so the pooled keep-alive connections those leave are part of the baseline.
        /// </summary>
        public async Task<int> BaselineSocketsAsync()
        {
            Assert.Equal(HttpStatusCode.OK, (await GetStringAsync("/loadtest/get").DefaultTimeout()).Status);
            await WaitForActiveStreamsAsync(0);
            await _requests.WaitForIdleAsync().DefaultTimeout();
            var baseline = OpenSockets.Count();
            _output.WriteLine($"[test] sockets at baseline: {baseline}");
            return baseline;
        }

        /// <summary>The probe sees the connections: each carried one costs at least three sockets in this process.</summary>
        public void AssertSocketsAbove(int baseline, int connections)
        {
            var now = OpenSockets.Count();
            _output.WriteLine($"[test] sockets with {connections} connections open: {now}");
            Assert.True(now >= baseline + (3 * connections), $"{now} sockets open, baseline {baseline}: expected at least {3 * connections} more.");
        }

        /// <summary>Every stream, forwarding slot, request and socket that the connections held is gone.</summary>
        public async Task AssertReleasedAsync(int baseline)
        {
            await _requests.WaitForIdleAsync().DefaultTimeout();
            await WaitForActiveStreamsAsync(0);
            var forwarder = Forwarder;
            await WaitUntilAsync(() => forwarder.Admitted == 0, () => $"the client still holds {forwarder.Admitted} forwarding slot(s)");
            var now = 0;
            await WaitUntilAsync(() => (now = OpenSockets.Count()) <= baseline, () => $"{now} sockets open, baseline {baseline}: {string.Join(", ", OpenSockets.Describe())}");
            _output.WriteLine($"[test] sockets after release: {now}");

            // And the tunnel still works.
            Assert.Equal(HttpStatusCode.OK, (await GetStringAsync("/loadtest/get").DefaultTimeout()).Status);
        }

        public async ValueTask DisposeAsync() => await Tunnel.DisposeAsync();
    }

    /// <summary>Counts the server's requests in flight (outermost middleware) and signals when none is left.</summary>
    private sealed class InFlightRequests : IStartupFilter
    {
        private readonly Lock _lock = new();
        private readonly List<TaskCompletionSource> _idleWaiters = [];
        private int _count;

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(async (context, nextMiddleware) =>
            {
                if (context.Request.Path.StartsWithSegments(UplinkHandshake.DefaultPath, StringComparison.Ordinal))
                {
                    // An uplink is one request that lasts as long as the client is connected: not "in flight" here.
                    await nextMiddleware(context);
                    return;
                }

                lock (_lock)
                {
                    _count++;
                }

                try
                {
                    await nextMiddleware(context);
                }
                finally
                {
                    List<TaskCompletionSource>? idle = null;
                    lock (_lock)
                    {
                        if (--_count == 0)
                        {
                            idle = [.. _idleWaiters];
                            _idleWaiters.Clear();
                        }
                    }

                    idle?.ForEach(waiter => waiter.TrySetResult());
                }
            });
            next(app);
        };

        public Task WaitForIdleAsync()
        {
            lock (_lock)
            {
                if (_count == 0)
                {
                    return Task.CompletedTask;
                }

                var waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _idleWaiters.Add(waiter);
                return waiter.Task;
            }
        }
    }

    /// <summary>Counts a listener's ConnectionClosed events.</summary>
    private sealed class CountdownSignal
    {
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Source)> _waiters = [];
        private int _count;

        public CountdownSignal(TcpServiceListener listener)
        {
            listener.ConnectionClosed += OnClosed;
        }

        public Task WaitAsync(int count)
        {
            lock (_lock)
            {
                if (_count >= count)
                {
                    return Task.CompletedTask;
                }

                var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, source));
                return source.Task.DefaultTimeout();
            }
        }

        private void OnClosed()
        {
            List<TaskCompletionSource> ready = [];
            lock (_lock)
            {
                _count++;
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_count >= _waiters[i].Count)
                    {
                        ready.Add(_waiters[i].Source);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            ready.ForEach(source => source.TrySetResult());
        }
    }

    /// <summary>A loopback TCP echo service that can close its end of every connection and knows when they have closed.</summary>
    private sealed class TcpEchoService : IAsyncDisposable
    {
        private readonly System.Net.Sockets.TcpListener _listener;
        private readonly Task _acceptLoop;
        private readonly Lock _lock = new();
        private readonly List<Socket> _open = [];
        private readonly List<(int Count, TaskCompletionSource Source)> _waiters = [];
        private int _closed;

        private TcpEchoService()
        {
            _listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _acceptLoop = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public static TcpEchoService Start() => new();

        /// <summary>Completes once <paramref name="count"/> accepted connections have closed.</summary>
        public Task WaitForClosedAsync(int count)
        {
            lock (_lock)
            {
                if (_closed >= count)
                {
                    return Task.CompletedTask;
                }

                var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiters.Add((count, source));
                return source.Task;
            }
        }

        /// <summary>Closes the service's end of every open connection (FIN after the echoes already sent).</summary>
        public async Task CloseAllAsync()
        {
            Socket[] open;
            lock (_lock)
            {
                open = [.. _open];
            }

            foreach (var socket in open)
            {
                socket.Shutdown(SocketShutdown.Send);
            }

            await WaitForClosedAsync(open.Length).DefaultTimeout();
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _acceptLoop;
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }

            lock (_lock)
            {
                _open.ForEach(socket => socket.Dispose());
            }
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync();
                lock (_lock)
                {
                    _open.Add(socket);
                }

                _ = EchoAsync(socket);
            }
        }

        private async Task EchoAsync(Socket socket)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await socket.ReceiveAsync(buffer)) > 0)
                {
                    await socket.SendAsync(buffer.AsMemory(0, read));
                }
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }

            List<TaskCompletionSource> ready = [];
            lock (_lock)
            {
                _open.Remove(socket);
                _closed++;
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_closed >= _waiters[i].Count)
                    {
                        ready.Add(_waiters[i].Source);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            socket.Dispose();
            ready.ForEach(source => source.TrySetResult());
        }
    }
}

/// <summary>StreamLimitsTests count the whole process's sockets, so nothing else runs beside them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StreamLimitsCollection
{
    public const string Name = "Serial: counts the process's sockets";
}
