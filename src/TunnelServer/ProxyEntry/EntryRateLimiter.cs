using System.Net;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>The entry's token buckets: one per session (when configured) and one per client address for 404s.</summary>
internal sealed class EntryRateLimiter : IDisposable
{
    private readonly PartitionedRateLimiter<Guid>? _sessions;
    private readonly PartitionedRateLimiter<IPAddress>? _notFound;

    public EntryRateLimiter(IOptions<TunnelServerOptions> options)
    {
        var limits = options.Value.RateLimit;
        if (limits.SessionRequestsPerSecond > 0)
        {
            var burst = limits.SessionBurst > 0 ? limits.SessionBurst : limits.SessionRequestsPerSecond;
            _sessions = PartitionedRateLimiter.Create<Guid, Guid>(id => RateLimitPartition.GetTokenBucketLimiter(id, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = burst,
                TokensPerPeriod = limits.SessionRequestsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        }

        if (limits.NotFoundPerMinutePerAddress > 0)
        {
            _notFound = PartitionedRateLimiter.Create<IPAddress, IPAddress>(address => RateLimitPartition.GetFixedWindowLimiter(address, _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = limits.NotFoundPerMinutePerAddress,
                Window = TimeSpan.FromMinutes(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        }
    }

    /// <summary>True when <paramref name="sessionId"/> may take one more request now.</summary>
    public bool TryAcquireSession(Guid sessionId)
    {
        if (_sessions is null)
        {
            return true;
        }

        using var lease = _sessions.AttemptAcquire(sessionId);
        return lease.IsAcquired;
    }

    /// <summary>True when <paramref name="address"/> may get one more 404; false means answer 429 instead.</summary>
    public bool TryAcquireNotFound(IPAddress? address)
    {
        if (_notFound is null || address is null)
        {
            return true;
        }

        using var lease = _notFound.AttemptAcquire(address);
        return lease.IsAcquired;
    }

    public void Dispose()
    {
        _sessions?.Dispose();
        _notFound?.Dispose();
    }
}
