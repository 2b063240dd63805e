namespace Tunnel2.FaultProxy;

/// <summary>
/// The faults applied to one direction of every connection through a <see cref="FaultProxy"/>, modelled on
/// toxiproxy's toxics (Shopify/toxiproxy README; reliability.md §3.1). Every property may be changed at any time from
/// any thread; connections apply the new values to the next bytes they forward.
/// </summary>
/// <remarks>
/// Byte-count toxics (<see cref="ResetAfterBytes"/>, <see cref="LimitDataBytes"/>) count per connection from the
/// moment the toxic was set (or the connection opened, if later), so turning one on against a long-lived connection
/// means "after N more bytes", never "at once because N have already passed".
/// </remarks>
public sealed class Toxics
{
    private readonly Lock _lock = new();
    private readonly TimeProvider _time;
    private ToxicState _state = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal Toxics(string direction, TimeProvider time)
    {
        Direction = direction;
        _time = time;
    }

    /// <summary>"upstream" (client to target) or "downstream" (target to client).</summary>
    public string Direction { get; }

    /// <summary>Delay added to every chunk of bytes (toxiproxy <c>latency</c>). Bytes keep their order.</summary>
    public TimeSpan Latency
    {
        get => Snapshot.Latency;
        set => Update(s => s with { Latency = NonNegative(value) });
    }

    /// <summary>Uniform random ± variation of <see cref="Latency"/>; the delay never goes below zero.</summary>
    public TimeSpan Jitter
    {
        get => Snapshot.Jitter;
        set => Update(s => s with { Jitter = NonNegative(value) });
    }

    /// <summary>Upper bound on the forwarding rate in bytes per second (toxiproxy <c>bandwidth</c>); 0 means unlimited.</summary>
    public long BandwidthBytesPerSecond
    {
        get => Snapshot.BandwidthBytesPerSecond;
        set => Update(s => s with { BandwidthBytesPerSecond = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must not be negative.") });
    }

    /// <summary>
    /// After this many more bytes in this direction, reset both sides of the connection with RST
    /// (<c>LingerState(true, 0)</c>; toxiproxy <c>reset_peer</c>). Null turns it off.
    /// </summary>
    public long? ResetAfterBytes
    {
        get => Snapshot.ResetAfterBytes;
        set => Update(s => s with { ResetAfterBytes = NonNegative(value), CountVersion = s.CountVersion + 1 });
    }

    /// <summary>After this many more bytes in this direction, close both sides gracefully with FIN (toxiproxy <c>limit_data</c>). Null turns it off.</summary>
    public long? LimitDataBytes
    {
        get => Snapshot.LimitDataBytes;
        set => Update(s => s with { LimitDataBytes = NonNegative(value), CountVersion = s.CountVersion + 1 });
    }

    /// <summary>Forward in segments of at most this many bytes, each its own send (toxiproxy <c>slicer</c>); 0 turns it off.</summary>
    public int SliceSize
    {
        get => Snapshot.SliceSize;
        set => Update(s => s with { SliceSize = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must not be negative.") });
    }

    /// <summary>Pause between two slices of one chunk (only with <see cref="SliceSize"/>).</summary>
    public TimeSpan SliceDelay
    {
        get => Snapshot.SliceDelay;
        set => Update(s => s with { SliceDelay = NonNegative(value) });
    }

    /// <summary>
    /// While true nothing is forwarded in this direction and nothing is closed or reset either: the connection looks
    /// alive to both ends, as after a silent network partition. Bytes (and a FIN or RST) are held, not dropped: when it
    /// turns false they flow again, as TCP retransmission would deliver them after the partition heals. To break live
    /// connections for good use <see cref="FaultProxy.BreakAll"/> with <see cref="BreakMode.HalfOpen"/>.
    /// </summary>
    public bool HalfOpen
    {
        get => Snapshot.HalfOpen;
        set => Update(s => s with { HalfOpen = value });
    }

    /// <summary>Until when nothing is forwarded in this direction (held, not dropped), or null.</summary>
    public DateTimeOffset? StalledUntil => Snapshot.StalledUntil;

    internal ToxicState Snapshot
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>Completes at the next change of any toxic of this direction.</summary>
    internal Task Changed
    {
        get
        {
            lock (_lock)
            {
                return _changed.Task;
            }
        }
    }

    /// <summary>Forward nothing in this direction for <paramref name="duration"/> from now; bytes are held, then flow again.</summary>
    public void Stall(TimeSpan duration)
    {
        var until = _time.GetUtcNow() + NonNegative(duration);
        Update(s => s with { StalledUntil = until });
    }

    /// <summary>Ends a <see cref="Stall"/> early.</summary>
    public void Resume() => Update(s => s with { StalledUntil = null });

    /// <summary>Removes every toxic of this direction.</summary>
    public void Clear() => Update(s => new ToxicState { CountVersion = s.CountVersion + 1 });

    /// <summary>Applies one <c>name=value</c> setting as the command line writes it (see <see cref="ToxicSyntax"/>).</summary>
    public void Apply(string setting) => ToxicSyntax.Apply(this, setting);

    public override string ToString() => $"{Direction}: {Snapshot}";

    private void Update(Func<ToxicState, ToxicState> change)
    {
        TaskCompletionSource changed;
        lock (_lock)
        {
            _state = change(_state);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    private static TimeSpan NonNegative(TimeSpan value)
        => value >= TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must not be negative.");

    private static long? NonNegative(long? value)
        => value is null or >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must not be negative.");
}

/// <summary>An immutable view of one direction's toxics, read once per chunk.</summary>
internal sealed record ToxicState
{
    public TimeSpan Latency { get; init; }

    public TimeSpan Jitter { get; init; }

    public long BandwidthBytesPerSecond { get; init; }

    public long? ResetAfterBytes { get; init; }

    public long? LimitDataBytes { get; init; }

    public int SliceSize { get; init; }

    public TimeSpan SliceDelay { get; init; }

    public bool HalfOpen { get; init; }

    public DateTimeOffset? StalledUntil { get; init; }

    /// <summary>Changes whenever a byte-count toxic is set, so connections restart their count.</summary>
    public int CountVersion { get; init; }

    public override string ToString()
    {
        var parts = new List<string>();
        if (Latency > TimeSpan.Zero || Jitter > TimeSpan.Zero)
        {
            parts.Add($"latency={Latency.TotalMilliseconds:0}ms jitter={Jitter.TotalMilliseconds:0}ms");
        }

        if (BandwidthBytesPerSecond > 0)
        {
            parts.Add($"bandwidth={BandwidthBytesPerSecond}");
        }

        if (ResetAfterBytes is { } reset)
        {
            parts.Add($"reset-after={reset}");
        }

        if (LimitDataBytes is { } limit)
        {
            parts.Add($"limit-data={limit}");
        }

        if (SliceSize > 0)
        {
            parts.Add($"slice={SliceSize} slice-delay={SliceDelay.TotalMilliseconds:0}ms");
        }

        if (HalfOpen)
        {
            parts.Add("half-open");
        }

        if (StalledUntil is { } until)
        {
            parts.Add($"stalled-until={until:O}");
        }

        return parts.Count == 0 ? "none" : string.Join(' ', parts);
    }
}
