using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Tunnel2.Client.Forwarding;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Uplink;

/// <summary>
/// Keeps <see cref="TunnelClientOptions.Uplinks"/> uplinks connected: dial, run, and on loss redial with capped,
/// jittered backoff. A GOAWAY from the server starts the replacement at once while the old uplink drains. A 401/403/409
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
    private readonly ConcurrentDictionary<TunnelConnection, int> _live = new();

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

    /// <summary>Uplinks currently connected.</summary>
    public int ConnectedCount => _live.Count(pair => !pair.Key.IsClosing);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var slots = new Task[_options.Uplinks];
        for (var i = 0; i < slots.Length; i++)
        {
            slots[i] = RunSlotAsync(i + 1, stoppingToken);
        }

        await Task.WhenAll(slots);
    }

    private async Task RunSlotAsync(int slot, CancellationToken stoppingToken)
    {
        var backoff = new ReconnectBackoff(_options.ReconnectBaseDelay, _options.ReconnectMaxDelay);
        var draining = new List<Task>();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var dial = await DialAsync(stoppingToken);
                if (dial.Outcome == DialOutcome.Rejected)
                {
                    Log.DialRejected(_logger, dial.StatusCode, dial.Message);
                    _exit.Code = ExitCodes.Rejected;
                    _lifetime.StopApplication();
                    return;
                }

                if (dial.Outcome == DialOutcome.Failed)
                {
                    var delay = backoff.Next();
                    Log.DialFailed(_logger, slot, dial.Message, delay);
                    _metrics.CountDial(succeeded: false);
                    DialFailed?.Invoke(dial.Message);
                    await Task.Delay(delay, _time, stoppingToken);
                    continue;
                }

                var connection = new TunnelConnection(TunnelTransport.FromStream(dial.Stream!), new TunnelConnectionOptions
                {
                    Role = TunnelRole.Client,
                    StreamHandler = _forwarder,
                    Limits = _options.Limits,
                    Logger = _loggerFactory.CreateLogger<TunnelConnection>(),
                    TimeProvider = _time,
                    Name = $"uplink {slot}",
                });

                var connectedAt = _time.GetTimestamp();
                var run = RunConnectionAsync(connection, stoppingToken);
                _live[connection] = slot;
                Log.UplinkConnected(_logger, slot, Redact(dial.SessionId));
                _metrics.CountDial(succeeded: true);

                var first = await Task.WhenAny(run, connection.PeerGoingAway);
                if (connection.PeerGoAwayCode == TunnelErrorCode.Superseded)
                {
                    // A newer instance of this client owns the session now; reconnecting would take it back and flap.
                    Log.Superseded(_logger);
                    _exit.Code = ExitCodes.Superseded;
                    _lifetime.StopApplication();
                    await run;
                    return;
                }

                if (first != run && !connection.IsClosed && !stoppingToken.IsCancellationRequested)
                {
                    // The server is draining this uplink: open the replacement now, let this one finish its streams.
                    draining.Add(run);
                    draining.RemoveAll(static t => t.IsCompleted);
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

                var retry = backoff.Next();
                Log.UplinkLost(_logger, slot, connection.CloseErrorCode, connection.CloseReason?.Message ?? "closed", retry);
                await Task.Delay(retry, _time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        await Task.WhenAll(draining);
    }

    private async Task<DialResult> DialAsync(CancellationToken stoppingToken)
    {
        await _state.HandshakeLock.WaitAsync(stoppingToken);
        try
        {
            var requested = _state.SessionId;
            var dial = await _dialer.DialAsync(requested, _state.InstanceId, stoppingToken);
            if (dial.Outcome == DialOutcome.Connected)
            {
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
