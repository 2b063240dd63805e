using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Tests.Engine;

public class ClosedLoopPlanTests
{
    private static readonly TimeSpan FourSeconds = TimeSpan.FromSeconds(4);

    [Fact]
    public void KeepConstant_EveryCopyRunsTheWholeStage()
    {
        var copies = ClosedLoopPlan.Create(new KeepConstant(3, FourSeconds), 0);

        Assert.Equal(3, copies.Count);
        Assert.All(copies, copy => Assert.Equal(new CopyWindow(TimeSpan.Zero, FourSeconds), copy));
    }

    [Fact]
    public void RampingConstant_Up_AddsCopiesLinearly()
    {
        var copies = ClosedLoopPlan.Create(new RampingConstant(4, FourSeconds), 0);

        Assert.Equal([0, 1, 2, 3], copies.Select(c => c.Start.TotalSeconds));
        Assert.All(copies, copy => Assert.Equal(FourSeconds, copy.Stop));
    }

    [Fact]
    public void RampingConstant_Down_RemovesCopiesLinearly()
    {
        var copies = ClosedLoopPlan.Create(new RampingConstant(0, FourSeconds), 4);

        Assert.Equal([4, 3, 2, 1], copies.Select(c => c.Stop.TotalSeconds));
        Assert.All(copies, copy => Assert.Equal(TimeSpan.Zero, copy.Start));
    }

    [Fact]
    public void RampingConstant_KeepsTheCopiesBothStagesShare()
    {
        var copies = ClosedLoopPlan.Create(new RampingConstant(4, FourSeconds), 2);

        Assert.Equal([0, 0, 0, 2], copies.Select(c => c.Start.TotalSeconds));
    }
}
