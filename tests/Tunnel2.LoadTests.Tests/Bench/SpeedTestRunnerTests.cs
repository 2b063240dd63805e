using Tunnel2.LoadTests.Bench;
using Tunnel2.LoadTests.Tests.Functional;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Bench;

/// <summary>Short real speed tests (loopback) against the in-process backend; speed itself is never asserted.</summary>
public sealed class SpeedTestRunnerTests
{
    [Fact]
    public async Task Download_CountsBodyBytesAndFinishedRequestsPerSecond()
    {
        await using var backend = await InProcessBackend.StartAsync();
        var options = new SpeedTestOptions
        {
            Label = "direct",
            Url = new Uri(backend.BaseUri, "/loadtest/bytes/{size}").OriginalString.Replace("%7Bsize%7D", "{size}", StringComparison.Ordinal),
            Mode = SpeedTestMode.Download,
            Streams = 2,
            PayloadSize = 256 * 1024,
            Duration = TimeSpan.FromSeconds(2),
            WarmUp = TimeSpan.FromMilliseconds(200),
        };
        var seconds = new List<SpeedTestSecond>();

        var result = await new SpeedTestRunner(options).RunAsync(seconds.Add, CancellationToken.None).DefaultTimeout();

        Assert.Equal(0, result.Failures);
        Assert.Equal(2, seconds.Count);
        Assert.Equal([1, 2], seconds.Select(s => s.Second));
        Assert.True(result.Requests > 0);
        // A request finished in the window may have started in the warm-up (one per stream at most): its early bytes
        // are not in the window.
        Assert.True(result.Bytes >= (result.Requests - options.Streams) * options.PayloadSize, $"{result.Bytes} bytes for {result.Requests} finished requests");
        Assert.Equal(seconds.Sum(s => s.Bytes), result.Bytes);
        Assert.InRange(result.DurationSec, 1.9, 3);
        // DurationSec is rounded to the millisecond; MeanMbps was computed from the exact time.
        Assert.Equal(SpeedTestRunner.Mbps(result.Bytes, result.DurationSec), result.MeanMbps, tolerance: result.MeanMbps * 0.01);
        Assert.EndsWith("/loadtest/bytes/262144", result.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Upload_CountsSentBytes()
    {
        await using var backend = await InProcessBackend.StartAsync();
        var options = new SpeedTestOptions
        {
            Label = "direct",
            Url = new Uri(backend.BaseUri, "/loadtest/info").AbsoluteUri,
            Mode = SpeedTestMode.Upload,
            Streams = 2,
            PayloadSize = 256 * 1024,
            Duration = TimeSpan.FromSeconds(2),
            // The first uploads JIT the backend's body path; on a busy 2-core runner that alone took most of a second.
            WarmUp = TimeSpan.FromMilliseconds(500),
        };

        var result = await new SpeedTestRunner(options).RunAsync(null, CancellationToken.None).DefaultTimeout();

        Assert.Equal(0, result.Failures);
        Assert.True(result.Requests > 0);
        Assert.True(result.Bytes >= (result.Requests - options.Streams) * options.PayloadSize);
        Assert.Equal("upload", result.Mode);
    }

    [Fact]
    public async Task RefusedConnection_IsCountedAsFailuresWithTheFirstError()
    {
        var options = new SpeedTestOptions
        {
            Label = "nothing",
            Url = "http://127.0.0.1:1/loadtest/bytes/{size}",
            Streams = 1,

            // Attempts follow each other 100 ms apart: 2 s holds several even when a loaded machine starts the
            // worker late (500 ms held none once, with every test suite running at the same time).
            Duration = TimeSpan.FromSeconds(2),
            WarmUp = TimeSpan.Zero,
        };

        var result = await new SpeedTestRunner(options).RunAsync(null, CancellationToken.None).DefaultTimeout();

        Assert.True(result.Failures > 0);
        Assert.Equal(0, result.Bytes);
        Assert.NotNull(result.FirstError);
    }

    [Theory]
    [InlineData(new double[0], 0)]
    [InlineData(new[] { 3.0 }, 3)]
    [InlineData(new[] { 1.0, 2, 9 }, 2)]
    [InlineData(new[] { 1.0, 2, 4, 9 }, 3)]
    public void Median_OfSortedValues(double[] sorted, double expected)
    {
        Assert.Equal(expected, SpeedTestRunner.Median(sorted));
    }

    [Fact]
    public void Mbps_IsMegabitsPerSecond()
    {
        Assert.Equal(8, SpeedTestRunner.Mbps(1_000_000, 1));
        Assert.Equal(0, SpeedTestRunner.Mbps(1_000_000, 0));
    }
}
