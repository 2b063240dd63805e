namespace Tunnel2.LoadTests.Engine;

/// <summary>
/// Merges the precomputed schedules of a window's scenarios into one timeline and hands out every arrival that
/// is due. It never waits for a request: whether earlier requests finished has no say in when the next one
/// starts (the open model). Arrivals that became due while the generator was late are all handed out at once
/// with their ORIGINAL intended offsets, so their latency includes the delay (coordinated-omission correction,
/// as wrk2 does).
/// </summary>
internal sealed class OpenLoopScheduler : IDisposable
{
    private readonly IEnumerator<TimeSpan>[] _schedules;
    private readonly TimeSpan[] _next;
    private readonly bool[] _hasNext;

    public OpenLoopScheduler(IReadOnlyList<IEnumerable<TimeSpan>> schedules)
    {
        ArgumentNullException.ThrowIfNull(schedules);
        _schedules = schedules.Select(schedule => schedule.GetEnumerator()).ToArray();
        _next = new TimeSpan[_schedules.Length];
        _hasNext = new bool[_schedules.Length];
        for (var i = 0; i < _schedules.Length; i++)
        {
            MoveNext(i);
        }
    }

    /// <summary>Arrivals handed out so far.</summary>
    public long Dispatched { get; private set; }

    /// <summary>
    /// Calls <paramref name="dispatch"/>(scenario index, intended offset) for every arrival with an intended offset
    /// at or before <paramref name="now"/>, in time order; returns the next intended offset, or null when every
    /// schedule is exhausted.
    /// </summary>
    public TimeSpan? DispatchDue(TimeSpan now, Action<int, TimeSpan> dispatch)
    {
        ArgumentNullException.ThrowIfNull(dispatch);
        while (true)
        {
            var earliest = -1;
            for (var i = 0; i < _next.Length; i++)
            {
                if (_hasNext[i] && (earliest < 0 || _next[i] < _next[earliest]))
                {
                    earliest = i;
                }
            }

            if (earliest < 0)
            {
                return null;
            }

            if (_next[earliest] > now)
            {
                return _next[earliest];
            }

            dispatch(earliest, _next[earliest]);
            Dispatched++;
            MoveNext(earliest);
        }
    }

    public void Dispose()
    {
        foreach (var schedule in _schedules)
        {
            schedule.Dispose();
        }
    }

    private void MoveNext(int index)
    {
        _hasNext[index] = _schedules[index].MoveNext();
        if (_hasNext[index])
        {
            _next[index] = _schedules[index].Current;
        }
    }
}
