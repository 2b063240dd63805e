using Tunnel2.LoadTests.Resources;

namespace Tunnel2.LoadTests.Tests.Resources;

public class ProcFsTests
{
    [Fact]
    public void ParseCpuTicks_CommandNameWithSpacesAndParentheses_CountsFieldsAfterTheLastParenthesis()
    {
        const string stat = "4242 (dotnet (Tunnel Server)) S 1 4242 4242 0 -1 4194560 12345 0 0 0 150 50 0 0 20 0 31 0 12345678 3000000000 25000 18446744073709551615";

        Assert.Equal(200, ProcFs.ParseCpuTicks(stat));
    }

    [Fact]
    public void ParseStatus_ReadsVmRssAndThreads()
    {
        const string status = "Name:\tdotnet\nState:\tS (sleeping)\nVmPeak:\t 3000000 kB\nVmRSS:\t   81920 kB\nThreads:\t31\n";

        Assert.Equal((81920L * 1024, 31), ProcFs.ParseStatus(status));
    }

    [Fact]
    public void ParseCpuTicks_NotAStatLine_Throws()
    {
        Assert.Throws<FormatException>(() => ProcFs.ParseCpuTicks("garbage"));
    }

    [Fact]
    public void TryRead_ThisProcess_SeesMemoryAndThreads()
    {
        Assert.True(ProcFs.TryRead(Environment.ProcessId, out var snapshot));

        Assert.True(snapshot.RssBytes > 1024 * 1024);
        Assert.True(snapshot.Threads > 1);
    }

    [Fact]
    public void TryRead_NoSuchProcess_ReturnsFalse()
    {
        Assert.False(ProcFs.TryRead(int.MaxValue, out _));
    }
}
