using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tunnel2.Client;
using Tunnel2.Client.Hosting;
using Tunnel2.Client.Uplink;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Server;
using Tunnel2.Server.Hosting;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;
using Tunnel2.TestBackend;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>
/// Several TunnelServer nodes sharing a Redis session directory, one backend and TunnelClients that may list several
/// nodes; every part a real host on loopback (nodes in-process, or as child processes a test can SIGKILL). The public
/// client connects from 127.0.0.2, so the address a backend sees in X-Forwarded-For tells the public client (127.0.0.2)
/// from a forwarding node (127.0.0.1).
/// </summary>
internal sealed class ScaleOutCluster : IAsyncDisposable
{
    public static readonly Guid SessionId = Guid.Parse("22222222-2222-2222-2222-222222222222");
    public static readonly IPAddress PublicClientAddress = IPAddress.Parse("127.0.0.2");

    private readonly ITestOutputHelper _output;
    private readonly List<ClusterNode> _nodes = [];
    private readonly List<IHost> _clients = [];
    private readonly List<ServerProcess> _processes = [];
    private readonly TaskCompletionSource _holdStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _holdRelease = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ScaleOutCluster(ITestOutputHelper output, RedisProcess? redis)
    {
        _output = output;
        Redis = redis;
        Http = CreatePublicClient();
    }

    public string Token { get; } = "t2test_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public string NodeSecret { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public RedisProcess? Redis { get; }

    public WebApplication Backend { get; private set; } = null!;

    public Uri BackendUrl { get; private set; } = null!;

    /// <summary>A public client (from 127.0.0.2), with its own keep-alive pool.</summary>
    public HttpClient Http { get; }

    /// <summary>Completes when the backend's <c>/hold</c> endpoint has a request, which it answers only after <see cref="ReleaseHold"/>.</summary>
    public Task HoldStarted => _holdStarted.Task;

    public void ReleaseHold() => _holdRelease.TrySetResult();

    /// <summary>Backend and (when <paramref name="withRedis"/>) a fresh redis-server; nodes and clients are added by the test.</summary>
    public static async Task<ScaleOutCluster> StartAsync(ITestOutputHelper output, bool withRedis = true)
    {
        var redis = withRedis ? await RedisProcess.StartAsync() : null;
        var cluster = new ScaleOutCluster(output, redis);
        try
        {
            cluster.Backend = TestBackendApp.Create(["--urls", "http://127.0.0.1:0"], builder =>
                builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(output, "[backend]")).SetMinimumLevel(LogLevel.Warning));

            // A request the test holds in flight, to keep a draining node busy for as long as it likes.
            cluster.Backend.MapGet("/hold", async () =>
            {
                cluster._holdStarted.TrySetResult();
                await cluster._holdRelease.Task.WaitAsync(TimeSpan.FromSeconds(30));
                return Microsoft.AspNetCore.Http.Results.Text("released\n");
            });
            await cluster.Backend.StartAsync().DefaultTimeout();
            cluster.BackendUrl = new Uri(BoundAddress(cluster.Backend));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts an in-process node that grants the test token the test session.</summary>
    public async Task<ClusterNode> StartNodeAsync(string name, Action<TunnelServerOptions>? configure = null)
    {
        var app = TunnelServerHost.Build(["--urls", "http://127.0.0.1:0"], builder =>
        {
            RemoveJsonSources(builder.Configuration);
            builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(_output, $"[{name}]")).SetMinimumLevel(LogLevel.Information);
            builder.Services.PostConfigure<TunnelServerOptions>(o =>
            {
                o.Tokens.Add(Grant("test", Token));
                o.UplinkWaitTimeout = TimeSpan.FromSeconds(3);
                o.DrainTimeout = TimeSpan.FromSeconds(8);
                if (Redis is not null)
                {
                    o.Directory.Redis = Redis.ConnectionString;
                    o.Directory.NodeSecret = NodeSecret;
                }

                configure?.Invoke(o);
            });
        });
        await app.StartAsync().DefaultTimeout();
        var node = new ClusterNode(name, app, new Uri(BoundAddress(app)));
        _nodes.Add(node);
        return node;
    }

    /// <summary>Starts a node as a child process (the TunnelServer executable), so a test can SIGKILL it.</summary>
    public async Task<ServerProcess> StartNodeProcessAsync(string name)
    {
        var process = await ServerProcess.StartAsync(_output, name, new Dictionary<string, string>
        {
            ["Tunnel__Tokens__0__Name"] = "test",
            ["Tunnel__Tokens__0__Sha256"] = TokenValidator.HashToken(Token),
            ["Tunnel__Tokens__0__Sessions__0"] = SessionId.ToString("D"),
            ["Tunnel__Directory__Redis"] = Redis?.ConnectionString ?? string.Empty,
            ["Tunnel__Directory__NodeSecret"] = NodeSecret,
            ["Tunnel__UplinkWaitTimeout"] = "00:00:03",
        });
        _processes.Add(process);
        return process;
    }

    /// <summary>Starts a TunnelClient (in-process) serving the test session through <paramref name="servers"/>.</summary>
    public async Task<IHost> StartClientAsync(IEnumerable<Uri> servers, int uplinks, Action<TunnelClientOptions>? configure = null, string token = "")
    {
        var client = TunnelClientHost.Build([], o =>
        {
            o.Servers.Clear();
            o.Servers.AddRange(servers.Select(s => s.ToString()));
            o.Server = o.Servers[0];
            o.Backend = BackendUrl.ToString();
            o.Routes.Clear();
            o.Token = token.Length > 0 ? token : Token;
            o.TokenFile = null;
            o.Session = SessionId.ToString("D");
            o.Uplinks = uplinks;
            o.ReconnectBaseDelay = TimeSpan.FromMilliseconds(50);
            o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(500);
            configure?.Invoke(o);
        }, builder =>
        {
            RemoveJsonSources(builder.Configuration);
            builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(_output, "[client]")).SetMinimumLevel(LogLevel.Information);
        });
        _clients.Add(client);
        await client.StartAsync().DefaultTimeout();
        return client;
    }

    /// <summary>
    /// The public URL of <paramref name="pathAndQuery"/> in the test session through <paramref name="node"/>. The target
    /// goes out byte for byte (no unescaping of %41 and the like), as curl sends it.
    /// </summary>
    public static Uri Url(Uri node, string pathAndQuery) =>
        new($"{node}session/{SessionId:D}/{pathAndQuery.TrimStart('/')}", new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });

    public async ValueTask DisposeAsync()
    {
        // A test that failed while /hold was in flight must not keep the backend from stopping (it would wait 30 s).
        ReleaseHold();
        foreach (var client in _clients)
        {
            await client.StopAsync().DefaultTimeout();
            client.Dispose();
        }

        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }

        foreach (var process in _processes)
        {
            await process.DisposeAsync();
        }

        if (Backend is not null)
        {
            await Backend.StopAsync().DefaultTimeout();
            await Backend.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }

        Http.Dispose();
    }

    public static TunnelTokenOptions Grant(string name, string token)
    {
        var grant = new TunnelTokenOptions { Name = name, Sha256 = TokenValidator.HashToken(token) };
        grant.Sessions.Add(SessionId.ToString("D"));
        return grant;
    }

    /// <summary>A public client whose connections come from 127.0.0.2.</summary>
    public static HttpClient CreatePublicClient() => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectCallback = static async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Bind(new IPEndPoint(PublicClientAddress, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    internal static string BoundAddress(WebApplication app)
        => app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single().TrimEnd('/') + "/";

    internal static void RemoveJsonSources(IConfigurationBuilder configuration)
    {
        for (var i = configuration.Sources.Count - 1; i >= 0; i--)
        {
            if (configuration.Sources[i] is JsonConfigurationSource)
            {
                configuration.Sources.RemoveAt(i);
            }
        }
    }
}

/// <summary>An in-process TunnelServer node of a <see cref="ScaleOutCluster"/>.</summary>
internal sealed class ClusterNode(string name, WebApplication app, Uri url) : IAsyncDisposable
{
    private Task? _stop;

    public string Name { get; } = name;

    public WebApplication App { get; } = app;

    public Uri Url { get; } = url;

    public T Get<T>()
        where T : notnull
        => App.Services.GetRequiredService<T>();

    /// <summary>Uplinks this node holds for the test session.</summary>
    public int UplinkCount => UplinkCounts.Of(App.Services, ScaleOutCluster.SessionId);

    /// <summary>Completes when this node holds exactly <paramref name="count"/> uplinks of the test session.</summary>
    public Task WaitForUplinkCountAsync(int count) => UplinkCounts.WaitAsync(App.Services, ScaleOutCluster.SessionId, count);

    /// <summary>Graceful stop, as SIGTERM: drain, then Kestrel stops. Called again, it waits for the same stop.</summary>
    public Task StopAsync() => _stop ??= App.StopAsync().TimeoutAfter(TimeSpan.FromSeconds(40));

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// The real TunnelServer executable (from the test output folder) in a child process, configured through the
/// environment, on a port picked beforehand; killed with SIGKILL as a crash or the OOM killer would.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;

    private ServerProcess(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    public static async Task<ServerProcess> StartAsync(ITestOutputHelper output, string name, IReadOnlyDictionary<string, string> environment)
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var url = new Uri($"http://127.0.0.1:{port}/");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "TunnelServer.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(url.ToString().TrimEnd('/'));
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["Logging__LogLevel__Default"] = "Warning";
        start.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start };
        void OnLine(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is null)
            {
                ready.TrySetException(new InvalidOperationException($"TunnelServer {name} exited before it listened."));
                return;
            }

            try
            {
                output.WriteLine($"[{name}] {e.Data}");
            }
            catch (InvalidOperationException)
            {
                // The test is over.
            }

            if (e.Data.Contains("Now listening on", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        }

        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                OnLine(process, e);
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new ServerProcess(process, url);
        try
        {
            await ready.Task.DefaultTimeout();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>SIGKILL: no GOAWAY, no directory withdrawal; its leases stay until they expire.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().DefaultTimeout();
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        _process.Dispose();
    }
}

/// <summary>The outcome of one public request under load.</summary>
internal readonly record struct RequestRecord(long StartTicks, long EndTicks, string Node, int Status, string? Error)
{
    public bool Ok => Status == 200 && Error is null;
}

/// <summary>
/// Closed-loop workers that send GETs to the node a selector picks until told to stop (or a hard bound in count and
/// time is reached), recording every response: nothing is retried, nothing is dropped from the count.
/// </summary>
internal sealed class LoadRecorder
{
    private readonly List<RequestRecord> _records = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _progress = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _okCount;

    public IReadOnlyList<RequestRecord> Records
    {
        get
        {
            lock (_lock)
            {
                return [.. _records];
            }
        }
    }

    public int OkCount => Volatile.Read(ref _okCount);

    /// <summary>Runs <paramref name="workers"/> loops until <see cref="Stop"/>, <paramref name="maxRequests"/> or <paramref name="maxDuration"/>.</summary>
    public Task RunAsync(HttpClient http, Func<int, (string Node, Uri Url)> pick, int workers, int maxRequests, TimeSpan maxDuration)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(maxDuration.TotalSeconds * Stopwatch.Frequency);
        var sent = 0;
        return Task.WhenAll(Enumerable.Range(0, workers).Select(_ => Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested && Stopwatch.GetTimestamp() < deadline)
            {
                var n = Interlocked.Increment(ref sent);
                if (n > maxRequests)
                {
                    return;
                }

                var (node, url) = pick(n);
                var start = Stopwatch.GetTimestamp();
                int status = 0;
                string? error = null;
                try
                {
                    using var response = await http.GetAsync(url);
                    status = (int)response.StatusCode;
                    await response.Content.ReadAsByteArrayAsync();
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException)
                {
                    error = ex.GetType().Name + ": " + ex.Message;
                }

                var record = new RequestRecord(start, Stopwatch.GetTimestamp(), node, status, error);
                TaskCompletionSource progress;
                lock (_lock)
                {
                    _records.Add(record);
                    progress = _progress;
                    _progress = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                if (record.Ok)
                {
                    Interlocked.Increment(ref _okCount);
                }

                progress.TrySetResult();
            }
        })));
    }

    /// <summary>Completes once <paramref name="predicate"/> holds over the records, checked after every response.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<RequestRecord>, bool> predicate, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Task next;
            lock (_lock)
            {
                if (predicate(_records))
                {
                    return;
                }

                next = _progress.Task;
            }

            var remaining = TimeSpan.FromSeconds((deadline - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException($"The load did not reach the expected state within {timeout}.");
            }

            await next.TimeoutAfter(remaining);
        }
    }

    public void Stop() => _stop.Cancel();

    /// <summary>Consecutive successes at the end of the record (responses in completion order).</summary>
    public static int TrailingOk(IReadOnlyList<RequestRecord> records)
    {
        var count = 0;
        for (var i = records.Count - 1; i >= 0 && records[i].Ok; i--)
        {
            count++;
        }

        return count;
    }
}
