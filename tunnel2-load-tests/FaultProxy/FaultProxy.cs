using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tunnel2.FaultProxy;

/// <summary>What a <see cref="FaultProxy"/> starts with.</summary>
public sealed class FaultProxyOptions
{
    /// <summary>Where to listen; 127.0.0.1 on a free port by default. Keep it on loopback.</summary>
    public IPEndPoint ListenEndPoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Largest read per direction; with at most 8 reads queued it also bounds what a held direction buffers.</summary>
    public int BufferSize { get; init; } = 16 * 1024;

    /// <summary>How long connecting to the target may take before the client's connection is reset.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Seed for the jitter, so a run can be repeated; null draws one.</summary>
    public int? Seed { get; init; }

    public ILogger Logger { get; init; } = NullLogger.Instance;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;
}

/// <summary>
/// A TCP proxy that injects faults, modelled on toxiproxy (reliability.md §3.1): it listens on loopback, forwards
/// every accepted connection to one target, and applies per-direction <see cref="Toxics"/> that tests (or the
/// console entry's control commands) change while traffic flows. <see cref="BreakAll"/> resets, closes or freezes the
/// connections open at that moment; new connections are unaffected.
/// </summary>
/// <example>
/// <code>
/// await using var proxy = await FaultProxy.StartAsync(new IPEndPoint(IPAddress.Loopback, serverPort));
/// proxy.Upstream.Latency = TimeSpan.FromMilliseconds(50);   // client → target
/// proxy.Downstream.ResetAfterBytes = 64 * 1024;              // target → client: RST after 64 KiB more
/// proxy.BreakAll(BreakMode.HalfOpen);                        // live connections go silent, never FIN/RST
/// </code>
/// </example>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly FaultProxyOptions _options;
    private readonly ConcurrentDictionary<long, FaultConnection> _connections = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _waitersLock = new();
    private readonly List<(long Count, TaskCompletionSource Source)> _acceptWaiters = [];
    private readonly Lock _randomLock = new();
    private readonly Random _random;
    private Task _acceptLoop = Task.CompletedTask;
    private long _accepted;
    private volatile bool _refuseNewConnections;
    private int _disposed;

    private FaultProxy(Socket listener, EndPoint target, FaultProxyOptions options)
    {
        _listener = listener;
        _options = options;
        Target = target;
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
        Upstream = new Toxics("upstream", options.TimeProvider);
        Downstream = new Toxics("downstream", options.TimeProvider);
        _random = options.Seed is { } seed ? new Random(seed) : new Random();
    }

    /// <summary>Raised on the accept loop for every connection that reached the target.</summary>
    public event Action<FaultConnection>? ConnectionAccepted;

    /// <summary>Where the proxy listens.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary><c>http://127.0.0.1:port/</c>: the proxy's address as a URL, for HTTP clients.</summary>
    public Uri Url => new($"http://{EndPoint}/");

    /// <summary>Where every connection is forwarded.</summary>
    public EndPoint Target { get; }

    /// <summary>Faults on the bytes the client sends to the target.</summary>
    public Toxics Upstream { get; }

    /// <summary>Faults on the bytes the target sends to the client.</summary>
    public Toxics Downstream { get; }

    /// <summary>When true, every new connection is accepted and reset at once (toxiproxy's "down"); live ones carry on.</summary>
    public bool RefuseNewConnections
    {
        get => _refuseNewConnections;
        set => _refuseNewConnections = value;
    }

    /// <summary>Connections forwarded since start (refused ones not counted).</summary>
    public long AcceptedCount => Interlocked.Read(ref _accepted);

    /// <summary>Connections whose sockets are still held, including frozen (half-open) ones.</summary>
    public int ActiveCount => _connections.Count;

    /// <summary>The connections held now, oldest first.</summary>
    public IReadOnlyList<FaultConnection> Connections => [.. _connections.Values.OrderBy(static c => c.Id)];

    internal ILogger Logger => _options.Logger;

    internal TimeProvider Time => _options.TimeProvider;

    /// <summary>Starts a proxy to <paramref name="target"/> (e.g. an <see cref="IPEndPoint"/> or <see cref="DnsEndPoint"/>).</summary>
    public static Task<FaultProxy> StartAsync(EndPoint target, FaultProxyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        options ??= new FaultProxyOptions();
        var listener = new Socket(options.ListenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(options.ListenEndPoint);
            listener.Listen(512);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var proxy = new FaultProxy(listener, target, options);
        proxy._acceptLoop = proxy.AcceptLoopAsync();
        Log.Listening(options.Logger, proxy.EndPoint, target);
        return Task.FromResult(proxy);
    }

    /// <summary>Starts a proxy to the host and port of <paramref name="target"/>, e.g. <c>http://127.0.0.1:5000/</c>.</summary>
    public static Task<FaultProxy> StartAsync(Uri target, FaultProxyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        EndPoint endPoint = IPAddress.TryParse(target.Host, out var address)
            ? new IPEndPoint(address, target.Port)
            : new DnsEndPoint(target.Host, target.Port);
        return StartAsync(endPoint, options);
    }

    /// <summary>Breaks every connection open now. Connections accepted later are not affected.</summary>
    /// <returns>How many connections were broken.</returns>
    public int BreakAll(BreakMode mode)
    {
        var count = 0;
        foreach (var connection in Connections)
        {
            if (connection.BrokenBy is null)
            {
                connection.Break(mode, "BreakAll");
                count++;
            }
        }

        return count;
    }

    /// <summary>Removes every toxic in both directions and accepts new connections again.</summary>
    public void ClearToxics()
    {
        Upstream.Clear();
        Downstream.Clear();
        RefuseNewConnections = false;
    }

    /// <summary>Completes once <see cref="AcceptedCount"/> has reached <paramref name="count"/>.</summary>
    public Task WhenAcceptedAsync(long count)
    {
        lock (_waitersLock)
        {
            if (AcceptedCount >= count)
            {
                return Task.CompletedTask;
            }

            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _acceptWaiters.Add((count, source));
            return source.Task;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        _listener.Dispose();
        await _acceptLoop;
        foreach (var connection in _connections.Values)
        {
            connection.Shutdown();
        }

        await Task.WhenAll(_connections.Values.Select(static c => c.Completion));
        lock (_waitersLock)
        {
            foreach (var (_, source) in _acceptWaiters)
            {
                source.TrySetCanceled();
            }

            _acceptWaiters.Clear();
        }

        _stopping.Dispose();
    }

    /// <summary>The delay for the next chunk: latency plus a uniform draw in [-jitter, +jitter], never below zero.</summary>
    internal TimeSpan NextDelay(ToxicState state)
    {
        if (state.Jitter <= TimeSpan.Zero)
        {
            return state.Latency;
        }

        double draw;
        lock (_randomLock)
        {
            draw = (_random.NextDouble() * 2) - 1;
        }

        var delay = state.Latency + (state.Jitter * draw);
        return delay > TimeSpan.Zero ? delay : TimeSpan.Zero;
    }

    internal void OnConnectionClosed(FaultConnection connection)
    {
        _connections.TryRemove(connection.Id, out _);
        Log.ConnectionClosed(Logger, connection.Id, connection.BytesUpstream, connection.BytesDownstream);
    }

    private async Task AcceptLoopAsync()
    {
        var token = _stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException && token.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException ex)
            {
                Log.AcceptFailed(Logger, ex);
                continue;
            }

            _ = HandleAsync(client, token);
        }
    }

    private async Task HandleAsync(Socket client, CancellationToken token)
    {
        client.NoDelay = true;
        if (_refuseNewConnections)
        {
            Log.Refused(Logger, client.RemoteEndPoint);
            FaultConnection.Abort(client);
            return;
        }

        var target = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
            timeout.CancelAfter(_options.ConnectTimeout);
            await target.ConnectAsync(Target, timeout.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The target is down: the client sees what it would see without the proxy, a reset connection.
            Log.TargetUnreachable(Logger, Target, ex.Message);
            target.Dispose();
            FaultConnection.Abort(client);
            return;
        }

        var id = Interlocked.Increment(ref _accepted);
        var connection = new FaultConnection(this, id, client, target, _options.BufferSize);
        _connections[id] = connection;
        if (token.IsCancellationRequested)
        {
            // Raced with DisposeAsync, which may already have shut the others down.
            connection.Shutdown();
            return;
        }

        Log.ConnectionAccepted(Logger, id, client.RemoteEndPoint, Target);
        ConnectionAccepted?.Invoke(connection);
        SignalAcceptWaiters();
        try
        {
            await connection.RunAsync();
        }
        catch (Exception ex)
        {
            // Nothing may escape a fire-and-forget task; reset both ends so the failure is visible on the wire.
            Log.ConnectionFailed(Logger, id, ex);
            connection.Break(BreakMode.Reset, "internal error");
        }
    }

    private void SignalAcceptWaiters()
    {
        List<TaskCompletionSource>? ready = null;
        lock (_waitersLock)
        {
            var accepted = AcceptedCount;
            for (var i = _acceptWaiters.Count - 1; i >= 0; i--)
            {
                if (_acceptWaiters[i].Count <= accepted)
                {
                    (ready ??= []).Add(_acceptWaiters[i].Source);
                    _acceptWaiters.RemoveAt(i);
                }
            }
        }

        if (ready is not null)
        {
            foreach (var source in ready)
            {
                source.TrySetResult();
            }
        }
    }
}
