using System.Net;
using System.Text;
using Tunnel2.LoadTests.Cli;
using Tunnel2.LoadTests.Soak;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Soak;

/// <summary>The soak's content generators, its response classification and its analysis (kill windows, drift).</summary>
public sealed class SoakTests
{
    private static readonly Uri BaseUrl = new("http://127.0.0.1:1/session/x/");

    [Fact]
    public void FillBytes_IsSplitMix64_FromAnyOffset()
    {
        // splitmix64.c with x = 0: the first output is 0xe220a8397b1dcdaf (stored little-endian).
        var first = new byte[8];
        SoakContent.FillBytes(first, 0, seed: 0);
        Assert.Equal(0xe220a8397b1dcdafUL, BitConverter.ToUInt64(first));

        var whole = new byte[100];
        SoakContent.FillBytes(whole, 0, seed: 42);
        var slice = new byte[50];
        SoakContent.FillBytes(slice, 13, seed: 42);
        Assert.Equal(whole.AsSpan(13, 50).ToArray(), slice);
    }

    [Fact]
    public void FillStream_PiecesAsTestBackendWritesThem()
    {
        var body = new byte[3 * 16];
        SoakContent.FillStream(body, 0, 16);
        Assert.Equal("chunk 0000.....\nchunk 0001.....\nchunk 0002.....\n", Encoding.ASCII.GetString(body));

        var tiny = new byte[8];
        SoakContent.FillStream(tiny, 0, 4);
        Assert.Equal("chu\nchu\n", Encoding.ASCII.GetString(tiny));

        var tail = new byte[10];
        SoakContent.FillStream(tail, 38, 16);
        Assert.Equal(Encoding.ASCII.GetString(body, 38, 10), Encoding.ASCII.GetString(tail));
    }

    [Fact]
    public async Task CompleteAndCorrectBody_Ok()
    {
        var verdict = await ExecuteAsync(Bytes(1000), _ => Respond(HttpStatusCode.OK, Expected(1000), contentLength: 1000));

        Assert.Equal(SoakVerdict.Ok, verdict);
    }

    [Fact]
    public async Task ShortBodyThatEndsCleanly_Bad()
    {
        var verdict = await ExecuteAsync(Bytes(1000), _ => Respond(HttpStatusCode.OK, Expected(1000)[..600]));

        Assert.Equal(SoakClass.Bad, verdict.Class);
        Assert.Contains("truncated body that looked complete: 600 of 1000", verdict.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OneWrongByte_Bad()
    {
        var body = Expected(70_000);
        body[66_000] ^= 1;

        var verdict = await ExecuteAsync(Bytes(70_000), _ => Respond(HttpStatusCode.OK, body, contentLength: 70_000));

        Assert.Equal(new SoakVerdict(SoakClass.Bad, "wrong content at byte 66000"), verdict);
    }

    [Fact]
    public async Task WrongContentLength_Bad()
    {
        var verdict = await ExecuteAsync(Bytes(1000), _ => Respond(HttpStatusCode.OK, Expected(1000), contentLength: 999));

        Assert.Equal(SoakClass.Bad, verdict.Class);
    }

    [Fact]
    public async Task BodyAbortedMidWay_ClearError()
    {
        var verdict = await ExecuteAsync(Bytes(1000), _ =>
        {
            var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StreamContent(new FailingStream(Expected(1000)[..300])) };
            response.Content.Headers.ContentLength = 1000;
            return response;
        });

        Assert.Equal(new SoakVerdict(SoakClass.Error, "aborted mid-body"), verdict);
    }

    [Theory]
    [InlineData(502)]
    [InlineData(503)]
    [InlineData(504)]
    public async Task GatewayStatuses_ClearError(int status)
    {
        var verdict = await ExecuteAsync(Bytes(10), _ => Respond((HttpStatusCode)status, "no uplink"u8.ToArray()));

        Assert.Equal(new SoakVerdict(SoakClass.Error, $"status {status}"), verdict);
    }

    [Theory]
    [InlineData(404)]
    [InlineData(500)]
    [InlineData(400)]
    public async Task OtherStatuses_Bad(int status)
    {
        var verdict = await ExecuteAsync(Bytes(10), _ => Respond((HttpStatusCode)status, "x"u8.ToArray()));

        Assert.Equal(new SoakVerdict(SoakClass.Bad, $"unexpected status {status}"), verdict);
    }

    [Fact]
    public async Task NoResponseAtAll_ClearError()
    {
        var verdict = await ExecuteAsync(Bytes(10), _ => throw new HttpRequestException(HttpRequestError.ConnectionError, "refused"));

        Assert.Equal(new SoakVerdict(SoakClass.Error, "no response (ConnectionError)"), verdict);
    }

    [Fact]
    public async Task Echo_SendsTheDeterministicBody_AndChecksTheEcho()
    {
        var request = new SoakRequest(SoakKind.Echo, "loadtest/echo", 5000, 7);
        byte[]? sent = null;

        var verdict = await ExecuteAsync(request, message =>
        {
            sent = message.Content!.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            return Respond(HttpStatusCode.OK, sent, contentLength: sent.Length);
        });

        Assert.Equal(SoakVerdict.Ok, verdict);
        var expected = new byte[5000];
        SoakContent.FillBytes(expected, 0, 7);
        Assert.Equal(expected, sent);
    }

    [Fact]
    public void Mix_DrawsEveryKind_WithConsistentExpectations()
    {
        var random = new Random(3);
        var requests = Enumerable.Range(0, 2000).Select(_ => SoakRequest.Next(random)).ToList();

        Assert.Equal(Enum.GetValues<SoakKind>().Order(), requests.Select(static r => r.Kind).Distinct().Order());
        Assert.All(requests.Where(static r => r.Kind == SoakKind.Bytes), static r => Assert.StartsWith($"loadtest/bytes/{r.ExpectedLength}?seed={r.Seed}", r.PathAndQuery, StringComparison.Ordinal));
    }

    [Fact]
    public void Analysis_ErrorsOverlappingAKill_Attributed_OthersUnexplained()
    {
        var load = Load(
            bad: 0,
            new SoakRecord(10_100, 10_150, SoakKind.Get, SoakClass.Error, "status 502", "a"),     // in flight at kill 1
            new SoakRecord(9_000, 10_900, SoakKind.Stream, SoakClass.Error, "aborted mid-body", "b"),
            new SoakRecord(11_500, 14_600, SoakKind.Get, SoakClass.Error, "status 503", "c"),     // arrived in the gap, waited
            new SoakRecord(40_000, 40_010, SoakKind.Get, SoakClass.Error, "status 502", "d"));    // nowhere near a kill
        SoakKill[] kills = [new(1, 10_000, 11_000), new(2, 30_000, 31_000)];

        var result = SoakAnalysis.Analyze(load, kills, [], new SoakAnalysisOptions { Grace = TimeSpan.FromSeconds(1) });

        Assert.Equal(3, result.Kills[0].Errors);
        Assert.Equal(4.6, result.Kills[0].WindowSec, 3);
        Assert.Equal(1.0, result.Kills[0].ReadySec);
        Assert.Equal(0, result.Kills[1].Errors);
        Assert.Equal(0, result.Kills[1].WindowSec);
        Assert.Equal(1, result.UnexplainedErrors);
        Assert.Equal("d", Assert.Single(result.UnexplainedSamples).PathAndQuery);
        Assert.False(result.Pass);
    }

    [Fact]
    public void Analysis_BadResponse_Fails()
    {
        var result = SoakAnalysis.Analyze(Load(bad: 1), [], [], new SoakAnalysisOptions());

        Assert.False(result.Pass);
        Assert.Contains(result.Failures, static f => f.Contains("BAD", StringComparison.Ordinal));
    }

    [Fact]
    public void Analysis_ResourceDrift_MediansAfterTheWarmUp_CountsGetSlack()
    {
        // Load from 0 to 100 s; warm-up 10 s, compare window 20 s: start = [10, 30), end = (80, 100].
        var samples = new List<SoakSample>();
        for (var second = 0; second <= 100; second++)
        {
            var rss = second < 10 ? 50_000 : second <= 80 ? 100_000 : 115_000;   // +15 % at the end
            var fds = second <= 80 ? 20 : 24;                                   // +4: inside the slack of 5
            var unpaired = second <= 80 ? 0 : 9;                                // +9: a leak
            var estab = second <= 80 ? 180 : 50;                                // the generator's pool shrank
            samples.Add(new SoakSample(second * 1000L, new Dictionary<string, double>
            {
                ["rss_kb"] = rss,
                ["fds_other"] = fds,
                ["tcp_unpaired"] = unpaired,
                ["tcp_estab"] = estab,
            }));
        }

        var result = SoakAnalysis.Analyze(Load(bad: 0), [], samples, new SoakAnalysisOptions { WarmUp = TimeSpan.FromSeconds(10), CompareWindow = TimeSpan.FromSeconds(20) });

        var rssDelta = Assert.Single(result.Resources, static r => r.Metric == "rss_kb");
        Assert.Equal(100_000, rssDelta.Start);
        Assert.Equal(115_000, rssDelta.End);
        Assert.False(rssDelta.Pass);
        var fdDelta = Assert.Single(result.Resources, static r => r.Metric == "fds_other");
        Assert.Equal(20, fdDelta.DeltaPercent);
        Assert.True(fdDelta.Pass);
        Assert.False(Assert.Single(result.Resources, static r => r.Metric == "tcp_unpaired").Pass);
        var pool = Assert.Single(result.Resources, static r => r.Metric == "tcp_estab");
        Assert.True(pool.Breakdown);
        Assert.Equal(2, result.Failures.Count);
        Assert.DoesNotContain(result.Failures, static f => f.Contains("tcp_estab", StringComparison.Ordinal));
    }

    [Fact]
    public void Analysis_RssBreakdown_ReportedButNeverTheVerdict()
    {
        // RSS flat overall while its parts move (file-backed pages faulted in, anonymous pages given back): the parts
        // explain, the total decides.
        var samples = new List<SoakSample>();
        for (var second = 0; second <= 100; second++)
        {
            var late = second > 80;
            samples.Add(new SoakSample(second * 1000L, new Dictionary<string, double>
            {
                ["rss_kb"] = 100_000,
                ["rss_anon_kb"] = late ? 30_000 : 40_000,
                ["rss_file_kb"] = late ? 70_000 : 60_000,
            }));
        }

        var result = SoakAnalysis.Analyze(Load(bad: 0), [], samples, new SoakAnalysisOptions { WarmUp = TimeSpan.FromSeconds(10), CompareWindow = TimeSpan.FromSeconds(20) });

        var file = Assert.Single(result.Resources, static r => r.Metric == "rss_file_kb");
        Assert.True(file.Breakdown);
        Assert.False(file.Pass);
        Assert.Equal(-25, Assert.Single(result.Resources, static r => r.Metric == "rss_anon_kb").DeltaPercent);
        Assert.False(Assert.Single(result.Resources, static r => r.Metric == "rss_kb").Breakdown);
        Assert.True(result.Pass);
    }

    [Fact]
    public void Parse_KillLogAndSamples_AsTheScriptWritesThem()
    {
        var kills = SoakAnalysis.ParseKills(["# event\tunix_ms\tpid", "kill\t1000\t11", "ready\t1800\t12", "kill\t5000\t12"]);
        var samples = SoakAnalysis.ParseSamples(["unix_ms\trss_kb\tfds\ttcp_estab\ttcp_all", "1000\t80000\t40\t6\t8", "broken line"]);

        Assert.Equal([new SoakKill(1, 1000, 1800), new SoakKill(2, 5000, null)], kills);
        var sample = Assert.Single(samples);
        Assert.Equal(1000, sample.UnixMs);
        Assert.Equal(80000, sample.Values["rss_kb"]);
        Assert.Equal(8, sample.Values["tcp_all"]);
    }

    [Fact]
    public void Command_Parses()
    {
        var result = LoadTestsCommand.Create().Parse(
            "soak --url http://127.0.0.1:12100/session/22222222-2222-2222-2222-222222222222 --rps 50 --duration 30m --timeout 20s --seed 3 " +
            "--kill-log k.tsv --samples s.tsv --warm-up 2m --compare-window 60s --grace 5s --tolerance 10 --out /tmp/soak");

        Assert.Empty(result.Errors);
        Assert.NotEmpty(LoadTestsCommand.Create().Parse("soak --url http://x/ --rps 0 --out /tmp/soak").Errors);
        Assert.NotEmpty(LoadTestsCommand.Create().Parse("soak --rps 5 --out /tmp/soak").Errors);
    }

    private static SoakRequest Bytes(long n) => new(SoakKind.Bytes, $"loadtest/bytes/{n}?seed=5", n, 5);

    private static byte[] Expected(int n)
    {
        var body = new byte[n];
        SoakContent.FillBytes(body, 0, 5);
        return body;
    }

    private static HttpResponseMessage Respond(HttpStatusCode status, byte[] body, long? contentLength = null)
    {
        // StreamContent announces no length of its own: a short body then "ends cleanly", as a chunked one would.
        var response = new HttpResponseMessage(status) { Content = new StreamContent(new MemoryStream(body)) };
        response.Content.Headers.ContentLength = contentLength;
        return response;
    }

    private static async Task<SoakVerdict> ExecuteAsync(SoakRequest request, Func<HttpRequestMessage, HttpResponseMessage> respond)
    {
        using var invoker = new HttpMessageInvoker(new StubHandler((message, _) => Task.FromResult(respond(message))));
        return await request.ExecuteAsync(invoker, BaseUrl, TimeSpan.FromSeconds(10), CancellationToken.None).DefaultTimeout();
    }

    private static SoakLoadResult Load(long bad, params SoakRecord[] errors)
        => new(0, 100_000, 100, 100 - errors.Length - bad, errors.Length, bad, 0, new Dictionary<string, long>(), errors, [], false);

    /// <summary>Gives its bytes, then fails the next read as a reset connection would.</summary>
    private sealed class FailingStream(byte[] prefix) : MemoryStream(prefix)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await base.ReadAsync(buffer, cancellationToken);
            return read > 0 ? read : throw new IOException("Connection reset by peer");
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
