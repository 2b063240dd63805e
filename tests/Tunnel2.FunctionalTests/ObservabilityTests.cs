using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Client.Hosting;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Protocol;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>/metrics on the server, /status and /metrics on the client, /healthz and /readyz.</summary>
public sealed class ObservabilityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task ServerMetrics_CountersMoveWithTraffic()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        var session = SessionIdRedaction.Redact(tunnel.SessionId);
        var before = await ScrapeAsync(tunnel.Http, new Uri(tunnel.ServerUrl, "metrics"));

        for (var i = 0; i < 3; i++)
        {
            using var ok = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using (await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, $"session/{Guid.NewGuid():D}/")).DefaultTimeout())
        {
        }

        var after = await ScrapeAsync(tunnel.Http, new Uri(tunnel.ServerUrl, "metrics"));

        Assert.Equal(3, Value(after, $"tunnel2_requests_total{{session=\"{session}\",outcome=\"ok\"}}") - Value(before, $"tunnel2_requests_total{{session=\"{session}\",outcome=\"ok\"}}"));
        Assert.Equal(1, Value(after, "tunnel2_requests_total{session=\"none\",outcome=\"session_not_found\"}") - Value(before, "tunnel2_requests_total{session=\"none\",outcome=\"session_not_found\"}"));
        Assert.Equal(2, Value(after, $"tunnel2_uplinks{{session=\"{session}\"}}"));
        Assert.True(Value(after, "tunnel2_response_head_seconds_count") >= 3);
        Assert.True(Value(after, "tunnel2_backend_seconds_count") >= 3);
        Assert.True(Value(after, "tunnel2_uplink_bytes{direction=\"out\"}") > Value(before, "tunnel2_uplink_bytes{direction=\"out\"}"));
        Assert.DoesNotContain(tunnel.SessionId.ToString("D"), after, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task BackendTimeField_NeverReachesThePublicClient()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();

        Assert.False(response.Headers.Contains(UplinkHandshake.BackendTimeField));
    }

    [Fact]
    public async Task ClientStatus_ReportsUplinksAndQueue_AndMetricsCountRequests()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureClient = o => o.StatusUrl = "http://127.0.0.1:0",
        });
        var address = tunnel.Client!.Services.GetRequiredService<StatusServer>().Address;
        Assert.NotNull(address);
        using (await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout())
        {
        }

        using var status = JsonDocument.Parse(await tunnel.Http.GetStringAsync(new Uri(new Uri(address), "status")).DefaultTimeout());
        var metrics = await ScrapeAsync(tunnel.Http, new Uri(new Uri(address), "metrics"));

        Assert.Equal(2, status.RootElement.GetProperty("uplinksConnected").GetInt32());
        Assert.Equal(0, status.RootElement.GetProperty("queueDepth").GetInt32());
        Assert.EndsWith($"/session/{tunnel.SessionId:D}/", status.RootElement.GetProperty("publicUrl").GetString(), StringComparison.Ordinal);
        Assert.True(Value(metrics, "tunnel2_client_requests_total{outcome=\"ok\"}") >= 1);
        Assert.Equal(2, Value(metrics, "tunnel2_client_uplinks"));
    }

    [Fact]
    public async Task Health_And_Readiness()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartClient = false });

        using var health = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "healthz")).DefaultTimeout();
        using var ready = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "readyz")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }

    private static async Task<string> ScrapeAsync(HttpClient http, Uri url)
    {
        using var response = await http.GetAsync(url).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync().DefaultTimeout();
    }

    /// <summary>The value of one sample line (name with labels exactly as exposed), or 0 when absent.</summary>
    private static double Value(string exposition, string series)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return double.Parse(line.AsSpan(series.Length + 1), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return 0;
    }
}
