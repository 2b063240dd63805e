using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Server.Sessions;

namespace Tunnel2.Server.Tcp;

/// <summary>
/// The TCP service ports of all sessions, keyed by (session, service) for O(1) lookup. A service keeps its port for as
/// long as its session is known, so a reconnecting client finds its ports where they were.
/// </summary>
internal sealed class TcpServiceRegistry : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(Guid Session, string Service), TcpServiceListener> _listeners = new();
    private readonly Lock _lock = new();
    private readonly TunnelServerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private int _cursor;

    public TcpServiceRegistry(IOptions<TunnelServerOptions> options, TimeProvider time, ILogger<TcpServiceRegistry> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
    }

    public bool Enabled => _options.Tcp.Enabled;

    /// <summary>Opens (or finds) a port for each named service; returns "name=port" pairs for the handshake response.</summary>
    public string Ensure(Session session, string declared)
    {
        var pairs = new List<string>();
        var names = declared.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        foreach (var name in names.Distinct(StringComparer.Ordinal).Take(_options.Tcp.MaxServicesPerSession))
        {
            if (!HeaderValidation.IsToken(name))
            {
                continue;
            }

            TcpServiceListener? listener;
            lock (_lock)
            {
                if (!_listeners.TryGetValue((session.Id, name), out listener))
                {
                    listener = TcpServiceListener.Start(name, session, _options, _time, _logger, ref _cursor);
                    if (listener is null)
                    {
                        TcpLog.PortsExhausted(_logger, session.RedactedId, name);
                        continue;
                    }

                    _listeners[(session.Id, name)] = listener;
                    TcpLog.Listening(_logger, session.RedactedId, name, listener.Port);
                }
            }

            pairs.Add($"{name}={listener.Port}");
        }

        return string.Join(',', pairs);
    }

    public bool TryGet(Guid session, string service, out TcpServiceListener? listener) => _listeners.TryGetValue((session, service), out listener);

    /// <summary>Closes the ports of a session that has been forgotten.</summary>
    public async Task RemoveSessionAsync(Guid session)
    {
        foreach (var key in _listeners.Keys)
        {
            if (key.Session == session && _listeners.TryRemove(key, out var listener))
            {
                await listener.DisposeAsync();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var key in _listeners.Keys)
        {
            if (_listeners.TryRemove(key, out var listener))
            {
                await listener.DisposeAsync();
            }
        }
    }
}
