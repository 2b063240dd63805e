using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Protocol.FlowControl;

/// <summary>
/// Send credit of one connection: the connection window shared by all streams plus each stream's own window. A
/// producer takes credit before it queues DATA, so the frames waiting for the writer never exceed what the peer has
/// agreed to buffer. Waiters are served first come, first served whenever a WINDOW_UPDATE adds credit.
/// </summary>
internal sealed class OutputFlowControl
{
    private readonly Lock _lock = new();
    private readonly List<TunnelStream> _waiters = [];
    private long _connectionWindow;
    private Exception? _abortReason;
    private long _stalls;

    public OutputFlowControl(int initialConnectionWindow)
    {
        _connectionWindow = initialConnectionWindow;
    }

    /// <summary>How often a producer had to wait for credit.</summary>
    public long Stalls => Interlocked.Read(ref _stalls);

    public long ConnectionWindow
    {
        get
        {
            lock (_lock)
            {
                return _connectionWindow;
            }
        }
    }

    /// <summary>Takes between 1 and <paramref name="desired"/> bytes of credit for <paramref name="stream"/>, waiting while there is none.</summary>
    public ValueTask<int> AcquireAsync(TunnelStream stream, int desired, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_abortReason is not null)
            {
                return ValueTask.FromException<int>(_abortReason);
            }

            if (stream.AbortReason is { } streamAbort)
            {
                return ValueTask.FromException<int>(streamAbort);
            }

            var available = Math.Min(stream.SendWindow, _connectionWindow);
            if (available > 0)
            {
                var granted = (int)Math.Min(desired, available);
                stream.SendWindow -= granted;
                _connectionWindow -= granted;
                return new ValueTask<int>(granted);
            }

            _stalls++;
            stream.BeginCreditWait(desired);
            _waiters.Add(stream);
        }

        return stream.AwaitCredit(cancellationToken);
    }

    /// <exception cref="TunnelConnectionException">The increment overflows the window (FLOW_CONTROL_ERROR).</exception>
    public void OnConnectionWindowUpdate(int increment)
    {
        lock (_lock)
        {
            _connectionWindow += increment;
            if (_connectionWindow > int.MaxValue)
            {
                throw new TunnelConnectionException(
                    TunnelErrorCode.FlowControlError,
                    $"A WINDOW_UPDATE of {increment} took the connection window above 2^31-1.");
            }

            GrantWaiters();
        }
    }

    /// <returns>False when the increment overflows the stream window (a stream error, FLOW_CONTROL_ERROR).</returns>
    public bool OnStreamWindowUpdate(TunnelStream stream, int increment)
    {
        lock (_lock)
        {
            stream.SendWindow += increment;
            if (stream.SendWindow > int.MaxValue)
            {
                return false;
            }

            if (stream.IsWaitingForCredit)
            {
                GrantWaiters();
            }

            return true;
        }
    }

    /// <summary>Fails the wait of <paramref name="stream"/>, if it is waiting.</summary>
    public void CancelWait(TunnelStream stream, Exception reason)
    {
        lock (_lock)
        {
            if (_waiters.Remove(stream))
            {
                stream.FailCreditWait(reason);
            }
        }
    }

    /// <summary>Fails every wait, now and later: the connection is gone.</summary>
    public void Abort(Exception reason)
    {
        lock (_lock)
        {
            _abortReason ??= reason;
            foreach (var waiter in _waiters)
            {
                waiter.FailCreditWait(reason);
            }

            _waiters.Clear();
        }
    }

    private void GrantWaiters()
    {
        for (var i = 0; i < _waiters.Count && _connectionWindow > 0;)
        {
            var stream = _waiters[i];
            if (stream.SendWindow <= 0)
            {
                i++;
                continue;
            }

            var granted = (int)Math.Min(stream.DesiredCredit, Math.Min(stream.SendWindow, _connectionWindow));
            stream.SendWindow -= granted;
            _connectionWindow -= granted;
            _waiters.RemoveAt(i);

            // Continuations run asynchronously (docs/architecture.md), so completing under the lock is safe.
            stream.CompleteCreditWait(granted);
        }
    }
}
