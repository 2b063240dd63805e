namespace Tunnel2.LoadTests.Engine;

/// <summary>How arrivals are placed inside one injection interval.</summary>
internal enum ArrivalSpread
{
    /// <summary>Evenly spaced (k6 arrival-rate executors: 10/s → one every 100 ms). Deterministic, the default.</summary>
    Even,

    /// <summary>Uniformly random inside the interval, as NBomber does (PR #561); seeded, so reproducible.</summary>
    Random,
}

/// <summary>
/// Intended start times of an open-loop stage, computed before anything is sent, so that a slow system under test
/// cannot move them (the open model; performance.md §3.4).
/// </summary>
/// <remarks>
/// The stage is cut into intervals; interval k carries r_k arrivals (Inject: the rate; RampingInject:
/// r_start + (r_end − r_start)·(k+1)/n). The cumulative count C(t) is piecewise linear, and arrival i is placed
/// where C(t) = i, so fractional rates carry over between intervals instead of being rounded away (2.5/s gives
/// 3, 2, 3, 2 …). With <see cref="ArrivalSpread.Random"/> each interval keeps its count and draws the offsets.
/// </remarks>
internal static class InjectionSchedule
{
    // Cumulative counts are sums of doubles; this absorbs their rounding error without ever moving an arrival
    // by a whole interval.
    private const double CountTolerance = 1e-6;

    /// <summary>
    /// Offsets from the start of the stage, ascending, for an <see cref="Inject"/> or <see cref="RampingInject"/>.
    /// </summary>
    /// <param name="simulation">An open-loop simulation.</param>
    /// <param name="startRate">Rate per interval before this stage (RampingInject ramps from it).</param>
    /// <param name="spread">Placement inside each interval.</param>
    /// <param name="seed">Seed for <see cref="ArrivalSpread.Random"/>.</param>
    public static IEnumerable<TimeSpan> Create(LoadSimulation simulation, double startRate, ArrivalSpread spread, int seed)
    {
        var (rate, interval, ramping) = simulation switch
        {
            Inject inject => (inject.Rate, inject.Interval, false),
            RampingInject ramp => (ramp.Rate, ramp.Interval, true),
            _ => throw new ArgumentException($"{simulation.GetType().Name} is not an open-loop simulation.", nameof(simulation)),
        };
        if (interval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(simulation), "The injection interval must be positive.");
        }

        if (rate < 0 || startRate < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(simulation), "Rates cannot be negative.");
        }

        return Enumerate(rate, startRate, interval, simulation.During, ramping, spread, seed);
    }

    private static IEnumerable<TimeSpan> Enumerate(
        double rate, double startRate, TimeSpan interval, TimeSpan during, bool ramping, ArrivalSpread spread, int seed)
    {
        var intervalTicks = interval.Ticks;
        var intervals = (int)Math.Ceiling((double)during.Ticks / intervalTicks);
        var random = spread == ArrivalSpread.Random ? new Random(seed) : null;
        var cumulative = 0.0;
        long next = 0;
        var offsets = new List<long>();

        for (var k = 0; k < intervals; k++)
        {
            var start = k * intervalTicks;
            var length = Math.Min(intervalTicks, during.Ticks - start);
            var perInterval = ramping ? startRate + ((rate - startRate) * (k + 1) / intervals) : rate;
            var expected = perInterval * length / intervalTicks;
            var end = cumulative + expected;

            if (random is null)
            {
                for (; next < end - CountTolerance; next++)
                {
                    yield return TimeSpan.FromTicks(start + (long)Math.Round(Math.Max(0, (next - cumulative) / expected * length)));
                }
            }
            else
            {
                var count = (long)Math.Floor(end + CountTolerance) - (long)Math.Floor(cumulative + CountTolerance);
                offsets.Clear();
                for (var i = 0; i < count; i++)
                {
                    offsets.Add(start + random.NextInt64(length));
                }

                offsets.Sort();
                foreach (var offset in offsets)
                {
                    yield return TimeSpan.FromTicks(offset);
                }
            }

            cumulative = end;
        }
    }
}
