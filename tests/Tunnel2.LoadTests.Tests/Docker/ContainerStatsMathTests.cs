using Tunnel2.LoadTests.Docker;

namespace Tunnel2.LoadTests.Tests.Docker;

public class ContainerStatsMathTests
{
    [Fact]
    public void CpuPercent_HalfOfTheHostsTimeOnTwoCores_IsOneFullCore()
    {
        // 1 s of wall time on 2 cores = 2e9 ns of system time; the container used 1e9 ns: one core.
        var percent = ContainerStatsMath.CpuPercent(3_000_000_000, 2_000_000_000, 12_000_000_000, 10_000_000_000, onlineCpus: 2, perCpuCount: 0);

        Assert.Equal(100.0, percent!.Value, 6);
    }

    [Fact]
    public void CpuPercent_BothCoresBusy_Is200()
    {
        var percent = ContainerStatsMath.CpuPercent(4_000_000_000, 2_000_000_000, 12_000_000_000, 10_000_000_000, onlineCpus: 2, perCpuCount: 0);

        Assert.Equal(200.0, percent!.Value, 6);
    }

    [Fact]
    public void CpuPercent_NoOnlineCpus_UsesThePerCpuCount()
    {
        var percent = ContainerStatsMath.CpuPercent(1_250_000_000, 1_000_000_000, 5_000_000_000, 4_000_000_000, onlineCpus: 0, perCpuCount: 4);

        Assert.Equal(100.0, percent!.Value, 6);
    }

    [Fact]
    public void CpuPercent_Idle_IsZero()
    {
        Assert.Equal(0.0, ContainerStatsMath.CpuPercent(7, 7, 20, 10, 2, 0));
    }

    [Theory]
    [InlineData(5UL, 0UL, 20UL, 0UL)]      // first record of a stream: no previous system time
    [InlineData(5UL, 0UL, 10UL, 10UL)]     // no system time passed
    [InlineData(5UL, 9UL, 20UL, 10UL)]     // the container restarted: its counter began again
    public void CpuPercent_NoUsablePreviousRecord_IsNull(ulong total, ulong previousTotal, ulong system, ulong previousSystem)
    {
        Assert.Null(ContainerStatsMath.CpuPercent(total, previousTotal, system, previousSystem, 2, 0));
    }

    [Fact]
    public void MemoryBytes_CgroupV1_SubtractsTotalInactiveFile()
    {
        var stats = new Dictionary<string, ulong> { ["total_inactive_file"] = 30, ["inactive_file"] = 10, ["cache"] = 50 };

        Assert.Equal(70UL, ContainerStatsMath.MemoryBytes(100, stats));
    }

    [Fact]
    public void MemoryBytes_CgroupV2_SubtractsInactiveFile()
    {
        Assert.Equal(90UL, ContainerStatsMath.MemoryBytes(100, new Dictionary<string, ulong> { ["inactive_file"] = 10, ["file"] = 40 }));
    }

    [Fact]
    public void MemoryBytes_InactiveNotBelowUsage_IsTheUsage()
    {
        // As the docker CLI: a v1 total that is not below the usage falls through to inactive_file, then to the usage.
        Assert.Equal(95UL, ContainerStatsMath.MemoryBytes(100, new Dictionary<string, ulong> { ["total_inactive_file"] = 100, ["inactive_file"] = 5 }));
        Assert.Equal(100UL, ContainerStatsMath.MemoryBytes(100, new Dictionary<string, ulong> { ["inactive_file"] = 200 }));
    }

    [Fact]
    public void MemoryBytes_NoStats_IsTheUsage()
    {
        Assert.Equal(100UL, ContainerStatsMath.MemoryBytes(100, null));
        Assert.Equal(100UL, ContainerStatsMath.MemoryBytes(100, new Dictionary<string, ulong>()));
    }
}
