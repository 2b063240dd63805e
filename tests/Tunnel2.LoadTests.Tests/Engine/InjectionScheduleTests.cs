using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Tests.Engine;

public class InjectionScheduleTests
{
    [Fact]
    public void Inject_EvenSpread_PlacesEveryArrivalAtExactlyEqualSpacing()
    {
        var offsets = InjectionSchedule.Create(new Inject(100, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10)), 0, ArrivalSpread.Even, 1).ToList();

        Assert.Equal(1000, offsets.Count);
        for (var i = 0; i < offsets.Count; i++)
        {
            Assert.Equal(TimeSpan.FromMilliseconds(10 * i), offsets[i]);
        }
    }

    [Fact]
    public void Inject_FractionalRate_CarriesTheRemainderInsteadOfRoundingItAway()
    {
        var offsets = InjectionSchedule.Create(new Inject(2.5, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(4)), 0, ArrivalSpread.Even, 1).ToList();

        Assert.Equal([3, 2, 3, 2], CountPerSecond(offsets, 4));
        Assert.Equal(TimeSpan.FromMilliseconds(400), offsets[1] - offsets[0]);
    }

    [Fact]
    public void Inject_IntervalShorterThanASecond_IsARatePerInterval()
    {
        var offsets = InjectionSchedule.Create(new Inject(5, TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(2)), 0, ArrivalSpread.Even, 1).ToList();

        Assert.Equal(20, offsets.Count);
        Assert.All(offsets.Zip(offsets.Skip(1)), pair => Assert.Equal(TimeSpan.FromMilliseconds(100), pair.Second - pair.First));
    }

    [Fact]
    public void Inject_PartialLastInterval_GetsItsProportionalShare()
    {
        var offsets = InjectionSchedule.Create(new Inject(10, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2.5)), 0, ArrivalSpread.Even, 1).ToList();

        Assert.Equal(25, offsets.Count);
        Assert.True(offsets[^1] < TimeSpan.FromSeconds(2.5));
    }

    [Fact]
    public void RampingInject_FromZero_RampsIntervalByIntervalAndReachesTheRateInTheLastInterval()
    {
        var offsets = InjectionSchedule.Create(new RampingInject(100, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10)), 0, ArrivalSpread.Even, 1).ToList();

        Assert.Equal([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], CountPerSecond(offsets, 10));
        Assert.Equal(550, offsets.Count);
    }

    [Fact]
    public void RampingInject_StartsFromThePreviousStagesRate()
    {
        var offsets = InjectionSchedule.Create(new RampingInject(200, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)), 100, ArrivalSpread.Even, 1).ToList();

        Assert.Equal([120, 140, 160, 180, 200], CountPerSecond(offsets, 5));
    }

    [Fact]
    public void Inject_RandomSpread_KeepsTheCountOfEveryIntervalAndIsReproducible()
    {
        var simulation = new Inject(50, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(6));

        var first = InjectionSchedule.Create(simulation, 0, ArrivalSpread.Random, 42).ToList();
        var second = InjectionSchedule.Create(simulation, 0, ArrivalSpread.Random, 42).ToList();
        var other = InjectionSchedule.Create(simulation, 0, ArrivalSpread.Random, 43).ToList();

        Assert.Equal([50, 50, 50, 50, 50, 50], CountPerSecond(first, 6));
        Assert.Equal(first, second);
        Assert.NotEqual(first, other);
        Assert.Equal(first.Order(), first);
    }

    [Fact]
    public void Inject_RateZero_SchedulesNothing()
    {
        Assert.Empty(InjectionSchedule.Create(new Inject(0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)), 0, ArrivalSpread.Even, 1));
    }

    [Fact]
    public void Create_ClosedLoopSimulation_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => InjectionSchedule.Create(new KeepConstant(5, TimeSpan.FromSeconds(1)), 0, ArrivalSpread.Even, 1));
    }

    private static int[] CountPerSecond(IEnumerable<TimeSpan> offsets, int seconds)
    {
        var counts = new int[seconds];
        foreach (var offset in offsets)
        {
            counts[(int)offset.TotalSeconds]++;
        }

        return counts;
    }
}
