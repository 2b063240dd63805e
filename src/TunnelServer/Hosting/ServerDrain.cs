using Microsoft.Extensions.Options;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Server.Hosting;

/// <summary>
/// Whether this node is draining, and how much long-lived work it still carries: live uplinks, requests forwarded to
/// other nodes, and requests waiting for an uplink. Ordinary proxied requests need no count of their own: each runs on
/// a live uplink, which closes only after its last stream (docs/protocol.md §5.4).
/// </summary>
internal sealed class DrainState
{
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _idle;
    private int _active;
    private volatile bool _draining;

    public bool IsDraining => _draining;

    /// <summary>Completes when the drain begins (for tests and diagnostics).</summary>
    public Task Started => _started.Task;

    /// <summary>Work in flight that the drain waits for.</summary>
    public int Active => Volatile.Read(ref _active);

    public void Enter() => Interlocked.Increment(ref _active);

    public void Exit()
    {
        if (Interlocked.Decrement(ref _active) == 0 && _draining)
        {
            lock (_lock)
            {
                _idle?.TrySetResult();
            }
        }
    }

    /// <summary>Starts the drain; completes when nothing counted is in flight (at once if nothing is).</summary>
    public Task BeginAsync()
    {
        lock (_lock)
        {
            _draining = true;
            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (Volatile.Read(ref _active) == 0)
            {
                _idle.TrySetResult();
            }

            _started.TrySetResult();
            return _idle.Task;
        }
    }
}

/// <summary>
/// Graceful shutdown (issue 9). <see cref="IHostedLifecycleService.StoppingAsync"/> runs for every lifecycle service
/// before any hosted service's <c>StopAsync</c>, so Kestrel still listens while this waits: every uplink gets GOAWAY
/// (the clients dial their next server at once), this node withdraws its claims from the session directory, new
/// public requests are forwarded to another node or answered 503 with <c>Connection: close</c>, and in-flight work
/// finishes, for at most <see cref="TunnelServerOptions.DrainTimeout"/>. Then the host stops Kestrel as before.
/// </summary>
internal sealed class ServerDrain(
    DrainState drain,
    UplinkEndpoint uplinks,
    SessionDirectory directory,
    IOptions<TunnelServerOptions> options,
    TimeProvider time,
    ILogger<ServerDrain> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var idle = drain.BeginAsync();
        uplinks.DrainAll("The server is shutting down.");
        var start = time.GetTimestamp();
        await directory.WithdrawAllAsync();

        var timeout = options.Value.DrainTimeout;
        try
        {
            await idle.WaitAsync(timeout, time, cancellationToken);
            Log.Drained(logger, time.GetElapsedTime(start));
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            Log.DrainTimedOut(logger, time.GetElapsedTime(start), uplinks.LiveUplinkCount, drain.Active);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
