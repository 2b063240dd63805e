using HdrHistogram;
using System.Net;
using System.Threading.Channels;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Engine;

/// <summary>
/// The window runner on fake time: the test advances the clock only while the scheduler is parked on its timer,
/// so every arrival's time is exact.
/// </summary>
public class WindowRunnerTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task RunAsync_OpenLoop_StartsEveryArrivalOnScheduleWhileEarlierOnesAreStillRunning()
    {
        var time = new TimerTrackingTimeProvider();
        var release = new TaskCompletionSource();
        var arrivals = Channel.CreateUnbounded<TimeSpan>();
        var runner = CreateRunner(time, BlockingHandler(time, arrivals, release), maxInFlight: 100);

        var run = Task.Run(() => runner.RunAsync(Spec(rate: 10, seconds: 1), null, CancellationToken.None));
        var seen = await DriveAsync(time, arrivals, Every100Ms(10), _ => 1);

        // All ten started although none had finished: the open model.
        Assert.Equal(Enumerable.Range(0, 10).Select(i => Step * i), seen);
        release.SetResult();
        var result = await run.DefaultTimeout();

        Assert.Equal(10, result.Total.Requests);
        Assert.Equal(10, result.Total.Ok);
        Assert.Equal(10, result.OfferedRps);
        Assert.Equal(0, result.Total.LagHistogram.GetMaxValue());
        // Released at 900 ms: the first arrival waited 900 ms, the last 0 ms, all measured from their intended start.
        Assert.Equal(result.Total.LatencyHistogram.LowestEquivalentValue(900_000), result.Total.LatencyHistogram.LowestEquivalentValue(result.Total.LatencyHistogram.GetMaxValue()));
        Assert.Equal(0, LatencyMin(result));
    }

    [Fact]
    public async Task RunAsync_InFlightCapReached_CountsTheRestAsDroppedFailures()
    {
        var time = new TimerTrackingTimeProvider();
        var release = new TaskCompletionSource();
        var arrivals = Channel.CreateUnbounded<TimeSpan>();
        var runner = CreateRunner(time, BlockingHandler(time, arrivals, release), maxInFlight: 3);

        var run = Task.Run(() => runner.RunAsync(Spec(rate: 10, seconds: 1), null, CancellationToken.None));
        var seen = await DriveAsync(time, arrivals, Every100Ms(10), due => due < TimeSpan.FromMilliseconds(300) ? 1 : 0);
        release.SetResult();
        var result = await run.DefaultTimeout();

        Assert.Equal(3, seen.Count);
        Assert.Equal(10, result.Total.Requests);
        Assert.Equal(3, result.Total.Ok);
        Assert.Equal(7, result.Total.Failures["dropped"]);
        Assert.Equal(7, result.Total.FailuresOf(FailureKind.Dropped));
    }

    [Fact]
    public async Task RunAsync_WeightedMix_SplitsTheStageRateBetweenScenarios()
    {
        var time = new TimerTrackingTimeProvider();
        var arrivals = Channel.CreateUnbounded<TimeSpan>();
        var runner = CreateRunner(time, new StubHandler((_, _) =>
        {
            arrivals.Writer.TryWrite(time.Elapsed);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));
        }), maxInFlight: 100);
        var spec = Spec(rate: 20, seconds: 1) with
        {
            Scenarios =
            [
                new ScenarioPlan("heavy", new RequestTemplate(HttpMethod.Get, new Uri("http://127.0.0.1:1/a")), 3),
                new ScenarioPlan("light", new RequestTemplate(HttpMethod.Get, new Uri("http://127.0.0.1:1/b")), 1),
            ],
        };

        // 15/s and 5/s: the light scenario's arrivals coincide with every third heavy one.
        var expected = InjectionSchedule.Create(new Inject(15, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)), 0, ArrivalSpread.Even, 0)
            .Concat(InjectionSchedule.Create(new Inject(5, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1)), 0, ArrivalSpread.Even, 0))
            .Order()
            .ToList();

        var run = Task.Run(() => runner.RunAsync(spec, null, CancellationToken.None));
        var seen = await DriveAsync(time, arrivals, expected.Distinct().ToList(), due => expected.Count(t => t == due));
        var result = await run.DefaultTimeout();

        Assert.Equal(expected.Select(CeilToMillisecond), seen.Order());
        Assert.Equal(15, result.Scenarios.Single(s => s.Name == "heavy").Ok);
        Assert.Equal(5, result.Scenarios.Single(s => s.Name == "light").Ok);
        Assert.Equal(20, result.Total.Ok);
    }

    private static WindowRunner CreateRunner(TimerTrackingTimeProvider time, HttpMessageHandler handler, int maxInFlight)
    {
        var client = new HttpLoadClient(new HttpLoadClientOptions { RequestTimeout = Timeout.InfiniteTimeSpan }, time, handler);
        return new WindowRunner(client, time, new EngineOptions { MaxInFlight = maxInFlight, DrainTimeout = TimeSpan.FromMinutes(5) });
    }

    private static WindowSpec Spec(double rate, double seconds) => new(
        "backend-direct",
        1,
        new Inject(rate, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(seconds)),
        0,
        0,
        [new ScenarioPlan("get", new RequestTemplate(HttpMethod.Get, new Uri("http://127.0.0.1:1/loadtest/get")), 1)],
        false,
        TimeSpan.Zero);

    private static StubHandler BlockingHandler(TimerTrackingTimeProvider time, Channel<TimeSpan> arrivals, TaskCompletionSource release) =>
        new(async (_, _) =>
        {
            arrivals.Writer.TryWrite(time.Elapsed);
            await release.Task;
            return new HttpResponseMessage(HttpStatusCode.OK);
        });

    /// <summary>
    /// For each expected due time: waits until the scheduler is parked on its timer (and checks it waits exactly
    /// until that time), advances the clock to it, then waits for the arrivals due then. The clock never moves
    /// while an arrival is still on its way, so every recorded time is exact.
    /// </summary>
    private static async Task<List<TimeSpan>> DriveAsync(
        TimerTrackingTimeProvider time, Channel<TimeSpan> arrivals, IReadOnlyList<TimeSpan> dueTimes, Func<TimeSpan, int> arrivalsAt)
    {
        var seen = new List<TimeSpan>();
        for (var i = 0; i < dueTimes.Count; i++)
        {
            if (i > 0)
            {
                // Timers tick in whole milliseconds, so the scheduler sleeps until the due time rounded up.
                var wait = await time.OneShotTimers.ReadAsync().DefaultTimeout();
                Assert.Equal(CeilToMillisecond(dueTimes[i]) - time.Elapsed, wait);
                time.Advance(wait);
            }

            for (var k = 0; k < arrivalsAt(dueTimes[i]); k++)
            {
                seen.Add(await arrivals.Reader.ReadAsync().DefaultTimeout());
            }
        }

        return seen;
    }

    private static TimeSpan CeilToMillisecond(TimeSpan value) => TimeSpan.FromMilliseconds(Math.Ceiling(value.TotalMilliseconds - 1e-9));

    private static List<TimeSpan> Every100Ms(int count) => Enumerable.Range(0, count).Select(i => Step * i).ToList();

    private static long LatencyMin(WindowResult result)
    {
        foreach (var value in result.Total.LatencyHistogram.RecordedValues())
        {
            return value.ValueIteratedTo;
        }

        return -1;
    }
}
