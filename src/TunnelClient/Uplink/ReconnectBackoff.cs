namespace Tunnel2.Client.Uplink;

/// <summary>
/// Capped exponential backoff with full jitter: attempt n waits a uniform random time in [0, min(cap, base·2ⁿ)]
/// (cloudflared's choice; full jitter spreads a thousand clients reconnecting after a server restart, reliability.md E3).
/// </summary>
internal sealed class ReconnectBackoff
{
    private readonly TimeSpan _base;
    private readonly TimeSpan _cap;
    private readonly Random _random;
    private int _attempt;

    public ReconnectBackoff(TimeSpan baseDelay, TimeSpan cap, Random? random = null)
    {
        _base = baseDelay;
        _cap = cap;
        _random = random ?? Random.Shared;
    }

    public int Attempt => _attempt;

    /// <summary>The upper bound of the next delay, before jitter.</summary>
    public TimeSpan CurrentCeiling
    {
        get
        {
            var exponent = Math.Min(_attempt, 30);
            var ticks = Math.Min(_cap.Ticks, _base.Ticks * (1L << Math.Min(exponent, 40)));
            return TimeSpan.FromTicks(Math.Max(0, ticks));
        }
    }

    public TimeSpan Next()
    {
        var ceiling = CurrentCeiling;
        _attempt++;
        return TimeSpan.FromTicks((long)(_random.NextDouble() * ceiling.Ticks));
    }

    public void Reset() => _attempt = 0;
}
