namespace Tunnel2.LoadTests.Engine;

/// <summary>Runs one request and records it, with latency measured from the INTENDED start.</summary>
internal sealed class RequestExecutor
{
    private readonly HttpLoadClient _client;
    private readonly TimeProvider _time;

    public RequestExecutor(HttpLoadClient client, TimeProvider time)
    {
        _client = client;
        _time = time;
    }

    /// <summary>
    /// Sends <paramref name="request"/> and records: latency = end − intended (includes any time the generator
    /// was late: coordinated-omission corrected), service time = end − actual start, and for open-loop arrivals
    /// the scheduling lag = actual start − intended.
    /// </summary>
    /// <param name="intendedTimestamp">A <see cref="TimeProvider.GetTimestamp"/> value; closed-loop copies pass "now".</param>
    public async Task ExecuteAsync(ScenarioStats stats, RequestTemplate request, long intendedTimestamp, bool openLoop, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        stats.OnStarted(openLoop ? _time.GetElapsedTime(intendedTimestamp, started) : null);
        var outcome = await _client.SendAsync(request, cancellationToken);
        var ended = _time.GetTimestamp();
        stats.OnCompleted(outcome, _time.GetElapsedTime(intendedTimestamp, ended), _time.GetElapsedTime(started, ended));
    }
}
