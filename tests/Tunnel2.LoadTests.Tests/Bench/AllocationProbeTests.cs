using Tunnel2.LoadTests.Bench;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Tests.Functional;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Bench;

[Collection(SerialCollection.Name)]
public sealed class AllocationProbeTests
{
    [Fact]
    public async Task FixedCountLoad_SendsExactlyTheCount()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);

        var result = await FixedCountLoad.RunAsync(client, new RequestTemplate(HttpMethod.Get, new Uri(backend.BaseUri, "/loadtest/ping")), 137, 8, CancellationToken.None).DefaultTimeout();

        Assert.Equal(137, result.Requests);
        Assert.Equal(137, result.Ok);
        Assert.Equal(0, result.Failed);
        Assert.True(result.Rps > 0);
    }

    [Fact]
    public async Task FixedCountLoad_CountsFailuresByReason()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);

        var result = await FixedCountLoad.RunAsync(client, new RequestTemplate(HttpMethod.Get, new Uri(backend.BaseUri, "/fail")), 10, 3, CancellationToken.None).DefaultTimeout();

        Assert.Equal(10, result.Failed);
        Assert.Equal(new Dictionary<string, long> { ["status 503"] = 10 }, result.Failures);
    }

    /// <summary>
    /// The probe measures this very process (it hosts the backend and the client, so every request allocates here),
    /// through the same EventPipe counters and allocation ticks it reads from TunnelServer and TunnelClient.
    /// </summary>
    [Fact]
    public async Task Probe_OnThisProcess_SeesAllocationPerRequestAndNamesTypes()
    {
        await using var backend = await InProcessBackend.StartAsync();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);
        var probe = new AllocationProbe(new AllocationProbeOptions
        {
            Url = new Uri(backend.BaseUri, "/loadtest/get"),
            Processes = [new ProbedProcess("tests", Environment.ProcessId)],
            Requests = 2_000,
            Concurrency = 4,
            WarmUpRequests = 200,
            IdleIntervals = 1,
            TopTypes = 5,
        });

        var result = await probe.RunAsync(client, _ => { }, CancellationToken.None).DefaultTimeout();

        Assert.Equal(2_000, result.Load.Ok);
        var process = Assert.Single(result.Processes);
        // Kestrel + minimal API JSON + HttpClient in one process: certainly more than 500 B and less than 1 MB each.
        Assert.InRange(process.BytesPerRequest, 500, 1_000_000);
        Assert.NotEmpty(process.TopTypes);
        Assert.All(process.TopTypes, t => Assert.InRange(t.Share, 0, 1));
    }

    [Fact]
    public async Task Probe_NoSuchProcess_IsAnInvalidOperation()
    {
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);
        var probe = new AllocationProbe(new AllocationProbeOptions
        {
            Url = new Uri("http://127.0.0.1:1/"),
            Processes = [new ProbedProcess("ghost", int.MaxValue)],
        });

        await Assert.ThrowsAsync<InvalidOperationException>(() => probe.RunAsync(client, _ => { }, CancellationToken.None)).DefaultTimeout();
    }
}
