using System.Diagnostics;
using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Bench;

/// <summary>What a fixed-count burst did.</summary>
internal sealed record FixedCountResult(long Requests, long Ok, long Failed, double DurationSec, IReadOnlyDictionary<string, long> Failures)
{
    public double Rps => DurationSec > 0 ? Ok / DurationSec : 0;
}

/// <summary>
/// Exactly <c>count</c> requests, <c>concurrency</c> at a time, each worker sending the next as soon as its previous
/// one finished (closed loop). For a per-request cost such as allocations the exact count matters, not the rate.
/// </summary>
internal static class FixedCountLoad
{
    public static async Task<FixedCountResult> RunAsync(HttpLoadClient client, RequestTemplate request, long count, int concurrency, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);

        long next = 0;
        long ok = 0;
        var failures = new Dictionary<string, long>(StringComparer.Ordinal);
        var started = Stopwatch.GetTimestamp();

        async Task WorkerAsync()
        {
            while (Interlocked.Increment(ref next) <= count)
            {
                var outcome = await client.SendAsync(request, cancellationToken);
                if (outcome.Failure is { } failure)
                {
                    lock (failures)
                    {
                        var label = failure.ToString();
                        failures[label] = failures.GetValueOrDefault(label) + 1;
                    }
                }
                else
                {
                    Interlocked.Increment(ref ok);
                }

                cancellationToken.ThrowIfCancellationRequested();
            }
        }

        var workers = new Task[(int)Math.Min(concurrency, Math.Max(count, 1))];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = Task.Run(WorkerAsync, cancellationToken);
        }

        await Task.WhenAll(workers);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var failed = failures.Values.Sum();
        return new FixedCountResult(ok + failed, ok, failed, seconds, failures);
    }
}
