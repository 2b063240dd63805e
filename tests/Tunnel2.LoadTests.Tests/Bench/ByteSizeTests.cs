using Tunnel2.LoadTests.Bench;

namespace Tunnel2.LoadTests.Tests.Bench;

public class ByteSizeTests
{
    [Theory]
    [InlineData("1048576", 1_048_576L)]
    [InlineData("64KiB", 65_536L)]
    [InlineData("64k", 65_536L)]
    [InlineData("1MiB", 1_048_576L)]
    [InlineData("1G", 1_073_741_824L)]
    [InlineData("1GiB", 1_073_741_824L)]
    [InlineData("1.5MiB", 1_572_864L)]
    [InlineData("10MB", 10_000_000L)]
    [InlineData("512B", 512L)]
    public void TryParse_CommonForms(string text, long expected)
    {
        Assert.True(ByteSize.TryParse(text, out var bytes));
        Assert.Equal(expected, bytes);
    }

    [Theory]
    [InlineData("")]
    [InlineData("MiB")]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("1 parsec")]
    public void TryParse_Rejects(string text)
    {
        Assert.False(ByteSize.TryParse(text, out _));
    }

    [Theory]
    [InlineData(1_073_741_824L, "1GiB")]
    [InlineData(67_108_864L, "64MiB")]
    [InlineData(65_536L, "64KiB")]
    [InlineData(1000L, "1000B")]
    public void Format_LargestWholeBinaryUnit(long bytes, string expected)
    {
        Assert.Equal(expected, ByteSize.Format(bytes));
    }
}
