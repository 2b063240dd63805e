using System.Runtime.InteropServices;

namespace Tunnel2.LoadTests.Engine;

/// <summary>How the open-loop scheduler sleeps until the next arrival is due.</summary>
/// <remarks>
/// .NET timers (Task.Delay, PeriodicTimer, TimerQueue) run on Environment.TickCount64, which Linux serves from
/// CLOCK_MONOTONIC_COARSE: one jiffy, 4 ms on this project's kernels (HZ=250). Measured here: Task.Delay(1 ms)
/// sleeps 4.45 ms at p50, while nanosleep(100 µs) sleeps 0.17 ms. A timer-driven scheduler would therefore start
/// requests up to 4 ms late and that lag, CO-corrected, would swamp a sub-millisecond tunnel overhead. With the
/// real clock the scheduler runs on a thread of its own and sleeps with nanosleep; with a fake clock (tests) it
/// awaits the fake clock's timers.
/// </remarks>
internal abstract class ArrivalPacer
{
    /// <summary>The precise sleeper for the system clock, the clock's own timers for any other provider.</summary>
    public static ArrivalPacer For(TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        return time == TimeProvider.System ? new SleepingPacer() : new TimerPacer(time);
    }

    /// <summary>True when <see cref="WaitAsync"/> blocks the calling thread: the loop then needs a thread of its own.</summary>
    public abstract bool Blocks { get; }

    /// <summary>Waits about <paramref name="wait"/> (never less); the caller re-reads the clock afterwards.</summary>
    public abstract ValueTask WaitAsync(TimeSpan wait, CancellationToken cancellationToken);
}

/// <summary>Awaits the <see cref="TimeProvider"/>'s timers (fake time in tests).</summary>
internal sealed class TimerPacer : ArrivalPacer
{
    private readonly TimeProvider _time;

    public TimerPacer(TimeProvider time)
    {
        _time = time;
    }

    public override bool Blocks => false;

    // Task.Delay truncates to whole milliseconds (0.7 ms would become 0 and spin), so round up.
    public override ValueTask WaitAsync(TimeSpan wait, CancellationToken cancellationToken) =>
        new(Task.Delay(TimeSpan.FromTicks(Math.Max(1, (wait.Ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond) * TimeSpan.TicksPerMillisecond), _time, cancellationToken));
}

/// <summary>Blocks the calling (dedicated) thread with nanosleep, or Thread.Sleep where libc is not available.</summary>
internal sealed class SleepingPacer : ArrivalPacer
{
    // Sleeps are sliced so that cancellation is noticed within this long.
    private static readonly TimeSpan MaxSlice = TimeSpan.FromMilliseconds(20);

    private static bool _nanosleepUnavailable = !OperatingSystem.IsLinux();

    public override bool Blocks => true;

    public override ValueTask WaitAsync(TimeSpan wait, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var slice = wait < MaxSlice ? wait : MaxSlice;
        if (!Volatile.Read(ref _nanosleepUnavailable))
        {
            try
            {
                var request = new Timespec { Seconds = 0, Nanoseconds = Math.Max(1, slice.Ticks * 100) };
                _ = NanoSleep(ref request, IntPtr.Zero);
                return ValueTask.CompletedTask;
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                Volatile.Write(ref _nanosleepUnavailable, true);
            }
        }

        Thread.Sleep(Math.Max(1, (int)Math.Ceiling(slice.TotalMilliseconds)));
        return ValueTask.CompletedTask;
    }

    [DllImport("libc", EntryPoint = "nanosleep", SetLastError = true)]
    private static extern int NanoSleep(ref Timespec request, IntPtr remaining);

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
