using Microsoft.Extensions.Time.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that reports when timers with one particular due time are created, so a test can
/// advance the clock exactly once the component under test has armed its timer, instead of sleeping.
/// </summary>
internal sealed class ArmedTimeProvider(TimeSpan watchedDueTime) : FakeTimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<(int Count, TaskCompletionSource Source)> _waiters = [];
    private int _armed;

    /// <summary>Timers created so far with the watched due time.</summary>
    public int Armed => Volatile.Read(ref _armed);

    /// <summary>Completes once <paramref name="count"/> timers with the watched due time have been created.</summary>
    public Task WhenArmedAsync(int count)
    {
        lock (_lock)
        {
            if (_armed >= count)
            {
                return Task.CompletedTask;
            }

            var source = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, source));
            return source.Task;
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (dueTime == watchedDueTime)
        {
            List<TaskCompletionSource> ready = [];
            lock (_lock)
            {
                _armed++;
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Count <= _armed)
                    {
                        ready.Add(_waiters[i].Source);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            ready.ForEach(static r => r.TrySetResult());
        }

        return timer;
    }
}
