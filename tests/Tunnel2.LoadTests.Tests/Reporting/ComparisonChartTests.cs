using Tunnel2.LoadTests.Reporting;

namespace Tunnel2.LoadTests.Tests.Reporting;

public sealed class ComparisonChartTests : IDisposable
{
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly string _directory = Directory.CreateTempSubdirectory("tunnel2-chart-").FullName;

    [Fact]
    public void ReadTsv_SkipsCommentsAndBlankLines()
    {
        var tsv = Path.Combine(_directory, "in.tsv");
        File.WriteAllText(tsv, "# group\tseries\tvalue\n200 RPS\tdirect\t0.31\n\n200 RPS\ttunnel\t0.55\n");

        var points = ComparisonChart.ReadTsv(tsv);

        Assert.Equal([new BarPoint("200 RPS", "direct", 0.31), new BarPoint("200 RPS", "tunnel", 0.55)], points);
    }

    [Fact]
    public void ReadTsv_BadLine_NamesFileAndLine()
    {
        var tsv = Path.Combine(_directory, "bad.tsv");
        File.WriteAllText(tsv, "a\tb\t1\na\tb\n");

        var error = Assert.Throws<FormatException>(() => ComparisonChart.ReadTsv(tsv));

        Assert.Contains("bad.tsv:2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Write_ProducesAPng(bool logScale)
    {
        var png = Path.Combine(_directory, $"chart-{logScale}.png");
        BarPoint[] points =
        [
            new("200 RPS", "direct", 0.3), new("200 RPS", "tunnel", 0.5), new("200 RPS", "ssh", 14),
            new("1000 RPS", "direct", 0.25), new("1000 RPS", "tunnel", 0.4), new("1000 RPS", "ssh", 835),
        ];

        ComparisonChart.Write(points, png, "p99", "ms", logScale);

        var bytes = File.ReadAllBytes(png);
        Assert.True(bytes.Length > 5_000, $"{bytes.Length} bytes");
        Assert.Equal(PngSignature, bytes[..8]);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
