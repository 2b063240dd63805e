using System.Diagnostics;
using System.Net;

namespace Tunnel2.DeployTests;

/// <summary>
/// The dev system in containers, end to end from the host: compose up, requests through the tunnel to both backends,
/// a restart of the tunnel client, requests through the tunnel again, compose down. Skipped, with the reason, where
/// Docker cannot run.
/// </summary>
public sealed class ComposeSystemTests
{
    private const string Session = "22222222-2222-2222-2222-222222222222";
    private static readonly TimeSpan FirstReady = TimeSpan.FromSeconds(90);
    private static readonly TimeSpan Reconnect = TimeSpan.FromSeconds(60);

    [SkippableFact]
    public async Task ComposeUp_RequestsThroughTheTunnel_SucceedAgainAfterTheClientRestarts()
    {
        var (prepared, skipReason) = await ComposeSystem.PrepareAsync();
        Skip.If(prepared is null, $"Docker cannot run this test here: {skipReason}");
        await using var system = prepared;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var tunnel = $"http://127.0.0.1:{system.TunnelPort}/session/{Session}/";

        await system.UpAsync();
        await WaitForOkAsync(http, tunnel + "loadtest/ping", FirstReady, system);

        await AssertRequestsSucceedAsync(http, tunnel, system);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{system.BackendPort}/loadtest/ping"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(new Uri($"http://127.0.0.1:{system.HttpbinPort}/get"))).StatusCode);

        var before = await system.StartedAtAsync("tunnel_client");
        await system.RestartAsync("tunnel_client");
        var after = await system.StartedAtAsync("tunnel_client");
        Assert.NotEqual(before, after);
        Assert.EndsWith(" running", after, StringComparison.Ordinal);

        await WaitForOkAsync(http, tunnel + "loadtest/ping", Reconnect, system);
        await AssertRequestsSucceedAsync(http, tunnel, system);
    }

    /// <summary>Twenty requests to TestBackend (route /loadtest) and one to httpbin (the default backend) through the tunnel.</summary>
    private static async Task AssertRequestsSucceedAsync(HttpClient http, string tunnel, ComposeSystem system)
    {
        for (var i = 0; i < 20; i++)
        {
            using var response = await http.GetAsync(new Uri(tunnel + "loadtest/get"));
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK && body.Contains("Hello from TestBackend", StringComparison.Ordinal),
                $"GET {tunnel}loadtest/get #{i}: {(int)response.StatusCode} {body}\n{await system.LogsAsync()}");
        }

        using var httpbin = await http.GetAsync(new Uri(tunnel + "anything?probe=deploy-test"));
        var echoed = await httpbin.Content.ReadAsStringAsync();
        Assert.True(httpbin.StatusCode == HttpStatusCode.OK && echoed.Contains("deploy-test", StringComparison.Ordinal),
            $"GET {tunnel}anything: {(int)httpbin.StatusCode} {echoed}\n{await system.LogsAsync()}");
    }

    /// <summary>Polls <paramref name="url"/> every 250 ms until it answers 200, for at most <paramref name="limit"/>.</summary>
    private static async Task WaitForOkAsync(HttpClient http, string url, TimeSpan limit, ComposeSystem system)
    {
        var clock = Stopwatch.StartNew();
        var last = "no answer yet";
        while (clock.Elapsed < limit)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(url));
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }

                last = $"{(int)response.StatusCode} {response.ReasonPhrase}";
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                last = $"{e.GetType().Name}: {e.Message}";
            }

            await Task.Delay(250);
        }

        Assert.Fail($"GET {url} did not answer 200 within {limit.TotalSeconds:0} s (last: {last})\n{await system.LogsAsync()}");
    }
}
