using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Tests.Engine;

public class OpenLoopSchedulerTests
{
    [Fact]
    public void DispatchDue_HandsOutOnlyDueArrivals_InTimeOrderAcrossScenarios()
    {
        using var scheduler = new OpenLoopScheduler([Ms(0, 10, 20), Ms(5, 15)]);
        var dispatched = new List<(int Scenario, TimeSpan Intended)>();

        var next = scheduler.DispatchDue(TimeSpan.FromMilliseconds(12), (i, t) => dispatched.Add((i, t)));

        Assert.Equal([(0, Ms(0)[0]), (1, Ms(5)[0]), (0, Ms(10)[0])], dispatched);
        Assert.Equal(TimeSpan.FromMilliseconds(15), next);
    }

    [Fact]
    public void DispatchDue_GeneratorLate_DispatchesTheBacklogWithTheOriginalIntendedTimes()
    {
        // Coordinated-omission correction starts here: a stalled generator must not re-time the arrivals it missed.
        using var scheduler = new OpenLoopScheduler([Ms(0, 10, 20, 30, 40, 50, 60, 70, 80, 90)]);
        var intended = new List<TimeSpan>();
        scheduler.DispatchDue(TimeSpan.Zero, (_, t) => intended.Add(t));

        var next = scheduler.DispatchDue(TimeSpan.FromMilliseconds(95), (_, t) => intended.Add(t));

        Assert.Equal(Ms(0, 10, 20, 30, 40, 50, 60, 70, 80, 90), intended);
        Assert.Null(next);
        Assert.Equal(10, scheduler.Dispatched);
    }

    [Fact]
    public void DispatchDue_NothingDue_DispatchesNothingAndReturnsTheNextTime()
    {
        using var scheduler = new OpenLoopScheduler([Ms(30)]);
        var calls = 0;

        var next = scheduler.DispatchDue(TimeSpan.FromMilliseconds(29), (_, _) => calls++);

        Assert.Equal(0, calls);
        Assert.Equal(TimeSpan.FromMilliseconds(30), next);
    }

    private static TimeSpan[] Ms(params int[] values) => values.Select(v => TimeSpan.FromMilliseconds(v)).ToArray();
}
