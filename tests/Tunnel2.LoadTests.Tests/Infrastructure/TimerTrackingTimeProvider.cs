using System.Threading.Channels;
using Microsoft.Extensions.Time.Testing;

namespace Tunnel2.LoadTests.Tests.Infrastructure;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that announces every one-shot timer with a finite due time (what
/// <c>Task.Delay(…, timeProvider)</c> creates). A test waits for the announcement, which means the scheduler is
/// parked, before it advances the clock: no race between "compute the wait" and "register the timer".
/// </summary>
internal sealed class TimerTrackingTimeProvider : FakeTimeProvider
{
    private readonly Channel<TimeSpan> _oneShotTimers = Channel.CreateUnbounded<TimeSpan>();

    /// <summary>Due times of one-shot timers, in creation order.</summary>
    public ChannelReader<TimeSpan> OneShotTimers => _oneShotTimers.Reader;

    /// <summary>Fake time elapsed since construction.</summary>
    public TimeSpan Elapsed => GetUtcNow() - Start;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (dueTime != Timeout.InfiniteTimeSpan && period == Timeout.InfiniteTimeSpan)
        {
            _oneShotTimers.Writer.TryWrite(dueTime);
        }

        return timer;
    }
}
