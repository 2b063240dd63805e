using System.Collections.Concurrent;

namespace Tunnel2.Server.ProxyEntry;

/// <summary>
/// Reuses the per-request timeout <see cref="CancellationTokenSource"/> (YARP pools its activity-timeout sources the
/// same way): a source that never fired is reset and handed out again, so a request costs no CTS or timer allocation.
/// </summary>
internal sealed class TimeoutTokenSourcePool(TimeProvider time)
{
    /// <summary>Enough for the requests in flight on a busy node; beyond it sources are simply not kept.</summary>
    private const int MaxPooled = 1024;

    private readonly ConcurrentQueue<CancellationTokenSource> _pool = new();
    private int _count;

    public CancellationTokenSource Rent(TimeSpan timeout)
    {
        if (_pool.TryDequeue(out var source))
        {
            Interlocked.Decrement(ref _count);
        }
        else
        {
            source = new CancellationTokenSource(Timeout.InfiniteTimeSpan, time);
        }

        source.CancelAfter(timeout);
        return source;
    }

    public void Return(CancellationTokenSource source)
    {
        if (source.TryReset() && Interlocked.Increment(ref _count) <= MaxPooled)
        {
            _pool.Enqueue(source);
            return;
        }

        source.Dispose();
    }
}
