using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Tunnel2.Client.Forwarding;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Uplink;

/// <summary>
/// Keeps <see cref="TunnelClientOptions.Uplinks"/> uplinks connected, spread over the configured servers: dial, run,
/// and on loss redial (the next server at once, then capped, jittered backoff). A GOAWAY from the server starts the
/// replacement at once, on the next server, while the old uplink drains. A 401/403/409
/// stops the whole client with a clear message rather than retrying forever.
/// </summary>
internal sealed class UplinkSupervisor : BackgroundService
{
    private readonly TunnelClientOptions _options;
    private readonly UplinkDialer _dialer;
    private readonly BackendForwarder _forwarder;
    private readonly SessionState _state;
    private readonly SessionAnnouncer _announcer;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ClientExit _exit;
    private readonly ClientMetrics _metrics;
    private readonly ConcurrentDictionary<TunnelConnection, (int Slot, int Server)> _live = new();

    public UplinkSupervisor(
        IOptions<TunnelClientOptions> options,
        UplinkDialer dialer,
        BackendForwarder forwarder,
        SessionState state,
        SessionAnnouncer announcer,
        ILoggerFactory loggerFactory,
        TimeProvider time,
        IHostApplicationLifetime lifetime,
        ClientExit exit,
        ClientMetrics metrics)
    {
        _metrics = metrics;
        _exit = exit;
        _options = options.Value;
        _dialer = dialer;
        _forwarder = forwarder;
        _state = state;
        _announcer = announcer;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<UplinkSupervisor>();
        _time = time;
        _lifetime = lifetime;
    }

    /// <summary>Raised when a dial fails and will be retried, with the reason (for diagnostics and tests).</summary>
    public event Action<string>? DialFailed;

    /// <summary>Raised when an uplink is connected, with its slot (1-based) and the server it dialled.</summary>
    public event Action<int, string>? UplinkConnected;

    /// <summary>Uplinks currently connected.</summary>
    public int ConnectedCount => _live.Count(pair => !pair.Key.IsClosing);

    /// <summary>The server of each connected uplink (a moment's view), for /status.</summary>
    public IReadOnlyList<string> ConnectedServers => [.. _live.Where(pair => !pair.Key.IsClosing).Select(pair => _dialer.ServerName(pair.Value.Server)).Order(StringComparer.Ordinal)];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var slots = new Task[_options.Uplinks];
        for (var i = 0; i < slots.Length; i++)
        {
            slots[i] = RunSlotAsync(i + 1, stoppingToken);
        }

        await Task.WhenAll(slots);
    }

    /// <summary>
    /// One uplink slot. With several servers (<see cref="TunnelClientOptions.Servers"/>) slot <c>i</c> prefers server
    /// <c>(i - 1) mod n</c>; a failed dial, a lost uplink or a GOAWAY moves it to the next server at once (backoff
    /// applies once every server of a round failed), and after <see cref="TunnelClientOptions.FailbackDelay"/> on
    /// another server it dials its preferred one again and, once connected there, drains the other.
    /// </summary>
    private async Task RunSlotAsync(int slot, CancellationToken stoppingToken)
    {
        var servers = _dialer.ServerCount;
        var preferred = (slot - 1) % servers;
        var server = preferred;
        var failures = 0;
        var backoff = new ReconnectBackoff(_options.ReconnectBaseDelay, _options.ReconnectMaxDelay);
        var draining = new List<Task>();
        try
        {
            DialResult? ready = null;
            while (!stoppingToken.IsCancellationRequested)
            {
                var dial = ready ?? await DialAsync(server, stoppingToken);
                ready = null;
                if (dial.Outcome == DialOutcome.Rejected)
                {
                    Log.DialRejected(_logger, dial.StatusCode, dial.Message);
                    _exit.Code = ExitCodes.Rejected;
                    StopOnceStarted();
                    return;
                }

                if (dial.Outcome == DialOutcome.Failed)
                {
                    failures++;
                    _metrics.CountDial(succeeded: false);
                    DialFailed?.Invoke(dial.Message);
                    server = (server + 1) % servers;

                    // Another server may take the uplink now; wait only once every server of a round has failed.
                    var delay = failures % servers == 0 ? backoff.Next() : TimeSpan.Zero;
                    Log.DialFailed(_logger, slot, dial.Message, delay);
                    if (delay > TimeSpan.Zero)
                    {
                        await Task.Delay(delay, _time, stoppingToken);
                    }

                    continue;
                }

                failures = 0;
                var (connection, run) = Start(slot, server, dial, stoppingToken);
                var connectedAt = _time.GetTimestamp();

                Task first;
                while (true)
                {
                    var failback = server != preferred
                        ? Task.Delay(_options.FailbackDelay, _time, stoppingToken)
                        : Task.Delay(Timeout.Infinite, stoppingToken);
                    first = await Task.WhenAny(run, connection.PeerGoingAway, failback);
                    if (first != failback || stoppingToken.IsCancellationRequested || connection.IsClosing)
                    {
                        break;
                    }

                    // Back to the preferred server once it takes an uplink again; this one drains only after that.
                    var back = await DialAsync(preferred, stoppingToken);
                    if (back.Outcome == DialOutcome.Connected)
                    {
                        Log.FailingBack(_logger, slot, _dialer.ServerName(preferred));
                        connection.GoAway("Moving back to the preferred server.");
                        draining.Add(run);
                        server = preferred;
                        ready = back;
                        break;
                    }
                }

                if (ready is not null)
                {
                    backoff.Reset();
                    continue;
                }

                if (connection.PeerGoAwayCode == TunnelErrorCode.Superseded)
                {
                    // A newer instance of this client owns the session now; reconnecting would take it back and flap.
                    Log.Superseded(_logger);
                    _exit.Code = ExitCodes.Superseded;
                    StopOnceStarted();
                    await run;
                    return;
                }

                if (first != run && !connection.IsClosed && !stoppingToken.IsCancellationRequested)
                {
                    // The server is draining this uplink: open the replacement now (on the next server, since this one
                    // is going away), let this one finish its streams.
                    draining.Add(run);
                    draining.RemoveAll(static t => t.IsCompleted);
                    server = (server + 1) % servers;
                    backoff.Reset();
                    continue;
                }

                await run;
                if (_time.GetElapsedTime(connectedAt) >= _options.StableConnectionTime)
                {
                    backoff.Reset();
                }

                if (stoppingToken.IsCancellationRequested)
                {
                    break;
                }

                // Lost: with another server to go to, dial it at once; with one server, back off first.
                var retry = servers > 1 ? TimeSpan.Zero : backoff.Next();
                Log.UplinkLost(_logger, slot, connection.CloseErrorCode, connection.CloseReason?.Message ?? "closed", retry);
                server = (server + 1) % servers;
                if (retry > TimeSpan.Zero)
                {
                    await Task.Delay(retry, _time, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(draining);
    }

    private (TunnelConnection Connection, Task Run) Start(int slot, int server, DialResult dial, CancellationToken stoppingToken)
    {
        var connection = new TunnelConnection(TunnelTransport.FromStream(dial.Stream!), new TunnelConnectionOptions
        {
            Role = TunnelRole.Client,
            StreamHandler = _forwarder,
            Limits = _options.Limits,
            Logger = _loggerFactory.CreateLogger<TunnelConnection>(),
            TimeProvider = _time,
            Name = $"uplink {slot}",
        });

        _live[connection] = (slot, server);
        var run = RunConnectionAsync(connection, stoppingToken);
        var serverName = _dialer.ServerName(server);
        Log.UplinkConnected(_logger, slot, Redact(dial.SessionId), serverName);
        _metrics.CountDial(succeeded: true);
        UplinkConnected?.Invoke(slot, serverName);
        return (connection, run);
    }

    private async Task<DialResult> DialAsync(int server, CancellationToken stoppingToken)
    {
        await _state.HandshakeLock.WaitAsync(stoppingToken);
        try
        {
            var requested = _state.SessionId;
            var dial = await _dialer.DialAsync(server, requested, _state.InstanceId, stoppingToken);
            if (dial.Outcome == DialOutcome.Connected)
            {
                var changed = requested is not null && dial.SessionId != requested;
                if (changed && _dialer.ServerCount > 1 && ConnectedCount > 0)
                {
                    // Another node of the deployment does not know the session the others serve (no shared session
                    // directory, and a random id): following it would move every uplink and flap between nodes.
                    await dial.Stream!.DisposeAsync();
                    Log.ServerDisagrees(_logger, _dialer.ServerName(server));
                    return new DialResult(DialOutcome.Failed, null, default, null, 101, $"{_dialer.ServerName(server)} assigned another session id than the other servers (is the session directory configured on every node?)");
                }

                if (_state.Update(dial.SessionId, dial.PublicUrl) && requested is not null)
                {
                    // Everyone else still serves the old id: move them over.
                    Log.SessionChanged(_logger, Redact(dial.SessionId));
                    foreach (var other in _live.Keys)
                    {
                        other.GoAway("The session changed.");
                    }
                }

                _announcer.Announce(dial.SessionId, dial.PublicUrl, dial.TcpPorts);
            }

            return dial;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            return new DialResult(DialOutcome.Failed, null, default, null, 0, ex.Message);
        }
        finally
        {
            _state.HandshakeLock.Release();
        }
    }

    private async Task RunConnectionAsync(TunnelConnection connection, CancellationToken stoppingToken)
    {
        await using (connection)
        {
            var run = connection.RunAsync(CancellationToken.None);
            try
            {
                await run.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                Log.ShuttingDown(_logger, 1);
                connection.GoAway("The client is shutting down.");
                try
                {
                    await run.WaitAsync(_options.ShutdownGracePeriod, _time, CancellationToken.None);
                }
                catch (TimeoutException)
                {
                    connection.Abort(TunnelErrorCode.NoError, "Shutdown grace period over.");
                    await run;
                }
            }
            finally
            {
                _live.TryRemove(connection, out _);
            }
        }
    }

    private static string Redact(Guid sessionId) => SessionIdRedaction.Redact(sessionId);

    /// <summary>
    /// Stops the client, but never while the host is still starting its other services: a 401 can come back before the
    /// status server has started, and stopping then would fail the host's start instead of ending it with the exit code.
    /// </summary>
    private void StopOnceStarted()
        => _lifetime.ApplicationStarted.Register(static state => ((IHostApplicationLifetime)state!).StopApplication(), _lifetime);
}

/// <summary>The exit code the client process should end with; set by whoever decides to stop it.</summary>
public sealed class ClientExit
{
    public int Code { get; set; }
}

/// <summary>Process exit codes of the TunnelClient.</summary>
public static class ExitCodes
{
    public const int InvalidConfiguration = 2;
    public const int Rejected = 3;
    public const int Superseded = 4;
}
