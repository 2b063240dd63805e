using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Server.Sessions;

/// <summary>
/// A public session: an id, the principal that owns it, and the uplinks of the client instance serving it. New
/// uplinks of the same instance join; an uplink of a new instance of the same principal supersedes the old ones.
/// </summary>
internal sealed class Session
{
    private readonly Lock _lock = new();
    private ImmutableArray<TunnelConnection> _uplinks = [];
    private Guid _instanceId;
    private int _next;
    private TaskCompletionSource _uplinkAdded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Session(Guid id, string owner, TimeProvider time)
    {
        Id = id;
        Owner = owner;
        RedactedId = SessionIds.Redact(id);
        LastUplinkLost = time.GetUtcNow();
    }

    public Guid Id { get; }

    /// <summary>Name of the token that owns the session.</summary>
    public string Owner { get; }

    public string RedactedId { get; }

    public int UplinkCount => _uplinks.Length;

    /// <summary>This session's request counters, bound on first use by <see cref="Observability.ServerMetrics"/>.</summary>
    public Prometheus.Counter.Child[]? RequestCounters { get; set; }

    /// <summary>Raised when a request starts waiting for an uplink (for diagnostics and tests).</summary>
    public event Action? WaitingForUplink;

    /// <summary>When the last uplink went away; meaningful only while <see cref="UplinkCount"/> is 0.</summary>
    public DateTimeOffset LastUplinkLost { get; private set; }

    /// <summary>Adds an uplink; returns the uplinks of a previous client instance, which the caller drains.</summary>
    public ImmutableArray<TunnelConnection> AddUplink(TunnelConnection uplink, Guid instanceId)
    {
        lock (_lock)
        {
            var superseded = ImmutableArray<TunnelConnection>.Empty;
            if (instanceId != _instanceId)
            {
                superseded = _uplinks;
                _uplinks = [];
                _instanceId = instanceId;
            }

            _uplinks = _uplinks.Add(uplink);
            _uplinkAdded.TrySetResult();
            _uplinkAdded = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return superseded;
        }
    }

    public void RemoveUplink(TunnelConnection uplink, DateTimeOffset now)
    {
        lock (_lock)
        {
            _uplinks = _uplinks.Remove(uplink);
            if (_uplinks.IsEmpty)
            {
                LastUplinkLost = now;
            }
        }
    }

    /// <summary>
    /// Opens a stream, waiting up to <paramref name="timeout"/> for an uplink to (re)join when none can take one now.
    /// </summary>
    /// <returns>The stream, or null when the wait ran out or <paramref name="cancellationToken"/> fired.</returns>
    public async Task<TunnelStream?> WaitToOpenStreamAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var start = time.GetTimestamp();
        WaitingForUplink?.Invoke();
        while (true)
        {
            Task added;
            lock (_lock)
            {
                added = _uplinkAdded.Task;
            }

            if (TryOpenStream(out var stream))
            {
                return stream;
            }

            var remaining = timeout - time.GetElapsedTime(start);
            if (remaining <= TimeSpan.Zero)
            {
                return null;
            }

            try
            {
                await added.WaitAsync(remaining, time, cancellationToken);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
            {
                return null;
            }
        }
    }

    /// <summary>
    /// Opens a stream on the least busy live uplink (fewest streams this server opened on it; ties rotate), trying
    /// the others if it cannot take one.
    /// </summary>
    public bool TryOpenStream([NotNullWhen(true)] out TunnelStream? stream)
    {
        var uplinks = _uplinks;
        var count = uplinks.Length;
        if (count == 0)
        {
            stream = null;
            return false;
        }

        if (count == 1)
        {
            return uplinks[0].TryOpenStream(out stream);
        }

        var start = (int)((uint)Interlocked.Increment(ref _next) % (uint)count);
        var best = -1;
        var bestLoad = int.MaxValue;
        for (var i = 0; i < count; i++)
        {
            var index = (start + i) % count;
            var candidate = uplinks[index];
            if (candidate.IsClosing)
            {
                continue;
            }

            var load = candidate.LocalStreamCount;
            if (load < bestLoad)
            {
                best = index;
                bestLoad = load;
            }
        }

        if (best >= 0 && uplinks[best].TryOpenStream(out stream))
        {
            return true;
        }

        for (var i = 0; i < count; i++)
        {
            if (i != best && uplinks[i].TryOpenStream(out stream))
            {
                return true;
            }
        }

        stream = null;
        return false;
    }
}
