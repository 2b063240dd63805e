using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Options;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Server.Sessions;

internal enum RegistrationStatus
{
    /// <summary>A new session was created, with the requested id if the principal may have it, else a random one.</summary>
    Created,

    /// <summary>The principal already owns the requested session; the uplink joins it.</summary>
    Joined,

    /// <summary>The requested id belongs (or recently belonged) to another principal (reliability.md B2/B3).</summary>
    Conflict,
}

/// <summary>
/// All sessions of this node, by id (O(1), no allocation on lookup). Sessions without uplinks are kept for
/// <see cref="TunnelServerOptions.SessionRetention"/> (public requests get 503), then forgotten (404); their id stays
/// reserved for the owner as a tombstone for <see cref="TunnelServerOptions.TombstoneRetention"/>.
/// </summary>
internal sealed class SessionRegistry : IDisposable
{
    private static readonly TimeSpan s_sweepInterval = TimeSpan.FromSeconds(30);

    private readonly ConcurrentDictionary<Guid, Session> _sessions = new();
    private readonly ConcurrentDictionary<Guid, Tombstone> _tombstones = new();
    private readonly Lock _registrationLock = new();
    private readonly TimeProvider _time;
    private readonly TunnelServerOptions _options;
    private readonly ITimer _sweeper;

    public SessionRegistry(IOptions<TunnelServerOptions> options, TimeProvider time)
    {
        _options = options.Value;
        _time = time;
        _sweeper = time.CreateTimer(static state => ((SessionRegistry)state!).Sweep(), this, s_sweepInterval, s_sweepInterval);
    }

    public int Count => _sessions.Count;

    /// <summary>Raised when a session is forgotten after its retention, so what it owned (TCP ports) is released.</summary>
    public event Action<Guid>? SessionForgotten;

    public bool TryGetSession(Guid id, [NotNullWhen(true)] out Session? session) => _sessions.TryGetValue(id, out session);

    public RegistrationStatus Register(TunnelPrincipal principal, Guid? requestedId, out Session? session)
        => Register(principal, requestedId, directoryOwner: null, out session);

    /// <summary>True when the registry has <paramref name="id"/> as a session or a tombstone (its owner is known here).</summary>
    public bool Knows(Guid id) => _sessions.ContainsKey(id) || _tombstones.ContainsKey(id);

    /// <param name="directoryOwner">
    /// Scale-out: the owner the session directory records for <paramref name="requestedId"/> (live on another node, or
    /// its tombstone), or null. Consulted only when this node knows nothing of the id: the same token may then take the
    /// id here too, another token gets <see cref="RegistrationStatus.Conflict"/>.
    /// </param>
    public RegistrationStatus Register(TunnelPrincipal principal, Guid? requestedId, string? directoryOwner, out Session? session)
    {
        lock (_registrationLock)
        {
            if (requestedId is { } requested)
            {
                if (_sessions.TryGetValue(requested, out var existing))
                {
                    session = existing.Owner == principal.Name ? existing : null;
                    return session is null ? RegistrationStatus.Conflict : RegistrationStatus.Joined;
                }

                if (_tombstones.TryGetValue(requested, out var tombstone))
                {
                    if (tombstone.Owner != principal.Name)
                    {
                        session = null;
                        return RegistrationStatus.Conflict;
                    }

                    _tombstones.TryRemove(requested, out _);
                    session = Create(requested, principal);
                    return RegistrationStatus.Created;
                }

                if (directoryOwner is not null)
                {
                    if (directoryOwner != principal.Name)
                    {
                        session = null;
                        return RegistrationStatus.Conflict;
                    }

                    session = Create(requested, principal);
                    return RegistrationStatus.Created;
                }

                if (principal.Sessions.Contains(requested))
                {
                    session = Create(requested, principal);
                    return RegistrationStatus.Created;
                }
            }

            Guid id;
            do
            {
                id = SessionIds.NewId();
            }
            while (_sessions.ContainsKey(id) || _tombstones.ContainsKey(id));

            session = Create(id, principal);
            return RegistrationStatus.Created;
        }
    }

    /// <summary>Forgets sessions that have had no uplink for the retention period; drops expired tombstones.</summary>
    public void Sweep()
    {
        var now = _time.GetUtcNow();
        lock (_registrationLock)
        {
            foreach (var (id, session) in _sessions)
            {
                if (session.UplinkCount == 0 && now - session.LastUplinkLost >= _options.SessionRetention)
                {
                    _sessions.TryRemove(id, out _);
                    _tombstones[id] = new Tombstone(session.Owner, now + _options.TombstoneRetention);
                    SessionForgotten?.Invoke(id);
                }
            }

            foreach (var (id, tombstone) in _tombstones)
            {
                if (tombstone.Expires <= now)
                {
                    _tombstones.TryRemove(id, out _);
                }
            }
        }
    }

    /// <summary>Undoes a registration that failed later (the directory named another owner), if no uplink joined meanwhile.</summary>
    public void RemoveIfUnused(Session session)
    {
        lock (_registrationLock)
        {
            if (session.UplinkCount == 0 && _sessions.TryGetValue(session.Id, out var current) && current == session)
            {
                _sessions.TryRemove(session.Id, out _);
            }
        }
    }

    public void Dispose() => _sweeper.Dispose();

    private Session Create(Guid id, TunnelPrincipal principal)
    {
        var session = new Session(id, principal.Name, _time);
        _sessions[id] = session;
        return session;
    }

    private readonly record struct Tombstone(string Owner, DateTimeOffset Expires);
}
