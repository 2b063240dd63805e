using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tunnel2.Client.Uplink;
using Tunnel2.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.ScaleOut;

/// <summary>Several nodes with the Redis session directory: forwarding to the holder, origin headers, ownership across nodes.</summary>
[Collection(ScaleOutCollection.Name)]
public sealed class ScaleOutTests(ITestOutputHelper output)
{
    [RedisFact]
    public async Task EveryNode_ReachesSessionHeldByOne_TargetAndOriginPreserved()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");
        var c = await cluster.StartNodeAsync("C");
        await cluster.StartClientAsync([a.Url], uplinks: 2);
        await a.WaitForUplinkCountAsync(2);

        const string Target = "/loadtest/info/a%2Fb/%252F/%E2%82%AC?x=%41&y=%2F&flag";
        foreach (var node in new[] { a, b, c })
        {
            using var response = await cluster.Http.GetAsync(ScaleOutCluster.Url(node.Url, Target)).DefaultTimeout();

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var info = await ReadJsonAsync(response);
            Assert.Equal(Target, info.GetProperty("rawTarget").GetString());
            var headers = info.GetProperty("headers");

            // The owner writes X-Forwarded-* for the public client (127.0.0.2), never for the node that forwarded.
            Assert.Equal(["127.0.0.2"], Values(headers, "X-Forwarded-For"));
            Assert.Equal(["http"], Values(headers, "X-Forwarded-Proto"));
            Assert.Equal([node.Url.Authority], Values(headers, "X-Forwarded-Host"));
            Assert.Equal([$"/session/{ScaleOutCluster.SessionId:D}"], Values(headers, "X-Forwarded-Prefix"));
            Assert.DoesNotContain(headers.EnumerateObject(), h => h.Name.StartsWith("Tunnel2-", StringComparison.OrdinalIgnoreCase));
            Assert.False(response.Headers.Contains("Tunnel2-Node-Refused"));
        }

        // A streamed request body crosses the extra hop intact.
        var body = RandomNumberGenerator.GetBytes(300_000);
        using (var post = await cluster.Http.PostAsync(ScaleOutCluster.Url(c.Url, "/loadtest/info"), new ByteArrayContent(body)).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, post.StatusCode);
            var info = await ReadJsonAsync(post);
            Assert.Equal(body.Length, info.GetProperty("bodyLength").GetInt64());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), info.GetProperty("bodySha256").GetString());
        }

        var bMetrics = await MetricsAsync(cluster, b);
        Assert.Contains("tunnel2_forwarded_requests_total{outcome=\"completed\"} 1", bMetrics, StringComparison.Ordinal);
        Assert.Matches("tunnel2_directory_lookups_total\\{result=\"hit\"\\} [1-9]", bMetrics);
        var aMetrics = await MetricsAsync(cluster, a);
        Assert.Contains("tunnel2_forwarded_in_requests_total 3", aMetrics, StringComparison.Ordinal);
        Assert.Contains("tunnel2_directory_sessions 1", aMetrics, StringComparison.Ordinal);
    }

    [RedisFact]
    public async Task ForgedNodeHeaders_FromPublicClient_AreIgnoredAndNeverReachTheBackend()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");
        await cluster.StartClientAsync([a.Url], uplinks: 1);
        await a.WaitForUplinkCountAsync(1);

        foreach (var node in new[] { a, b })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, ScaleOutCluster.Url(node.Url, "/loadtest/info"));
            request.Headers.TryAddWithoutValidation("Tunnel2-Node", "not-the-secret-" + new string('x', 40));
            request.Headers.TryAddWithoutValidation("Tunnel2-Forwarded", "for=6.6.6.6;proto=https");
            request.Headers.TryAddWithoutValidation("X-Forwarded-For", "7.7.7.7");

            using var response = await cluster.Http.SendAsync(request).DefaultTimeout();

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var headers = (await ReadJsonAsync(response)).GetProperty("headers");
            Assert.Equal(["127.0.0.2"], Values(headers, "X-Forwarded-For"));
            Assert.Equal(["http"], Values(headers, "X-Forwarded-Proto"));
            Assert.DoesNotContain(headers.EnumerateObject(), h => h.Name.StartsWith("Tunnel2-", StringComparison.OrdinalIgnoreCase));
        }

        // Only the forwarded request counts as one at the owner; the forged one at A does not.
        Assert.Contains("tunnel2_forwarded_in_requests_total 1", await MetricsAsync(cluster, a), StringComparison.Ordinal);
    }

    [RedisFact]
    public async Task SameToken_HoldsSessionOnTwoNodes_OtherTokenGets409FromTheDirectory()
    {
        const string OtherToken = "t2test_other_0123456789abcdef0123456789abcdef0123456789abcdef";

        // Both nodes grant both tokens the fixed id, so only the directory knows that the first claim wins.
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A", o => o.Tokens.Add(ScaleOutCluster.Grant("other", OtherToken)));
        var b = await cluster.StartNodeAsync("B", o => o.Tokens.Add(ScaleOutCluster.Grant("other", OtherToken)));
        await cluster.StartClientAsync([a.Url, b.Url], uplinks: 2);
        await a.WaitForUplinkCountAsync(1);
        await b.WaitForUplinkCountAsync(1);

        var intruder = await cluster.StartClientAsync([b.Url], uplinks: 1, token: OtherToken);
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        intruder.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());
        await stopping.Task.DefaultTimeout();

        Assert.Equal(ExitCodes.Rejected, intruder.Services.GetRequiredService<ClientExit>().Code);
        Assert.Equal(1, a.UplinkCount);
        Assert.Equal(1, b.UplinkCount);
        using var response = await cluster.Http.GetAsync(ScaleOutCluster.Url(b.Url, "/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [RedisFact]
    public async Task UnknownSession_404OnEveryNode_KnownWithoutUplinks503()
    {
        await using var cluster = await ScaleOutCluster.StartAsync(output);
        var a = await cluster.StartNodeAsync("A");
        var b = await cluster.StartNodeAsync("B");

        using (var unknown = await cluster.Http.GetAsync(new Uri(b.Url, $"session/{Guid.NewGuid():D}/loadtest/get")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        }

        var client = await cluster.StartClientAsync([a.Url], uplinks: 1);
        await a.WaitForUplinkCountAsync(1);
        await client.StopAsync().DefaultTimeout();
        await a.WaitForUplinkCountAsync(0);

        // A withdrew its lease; the directory still knows the session (retention), so B says "not connected", not "unknown".
        using var idle = await cluster.Http.GetAsync(ScaleOutCluster.Url(b.Url, "/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, idle.StatusCode);
        Assert.NotNull(idle.Headers.RetryAfter);
    }

    internal static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
        => JsonDocument.Parse(await response.Content.ReadAsStringAsync().DefaultTimeout()).RootElement.Clone();

    internal static string[] Values(JsonElement headers, string name)
    {
        foreach (var header in headers.EnumerateObject())
        {
            if (header.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return [.. header.Value.EnumerateArray().Select(v => v.GetString()!)];
            }
        }

        return [];
    }

    internal static async Task<string> MetricsAsync(ScaleOutCluster cluster, ClusterNode node)
    {
        using var response = await cluster.Http.GetAsync(new Uri(node.Url, "metrics")).DefaultTimeout();
        return Encoding.UTF8.GetString(await response.Content.ReadAsByteArrayAsync().DefaultTimeout());
    }
}

/// <summary>The scale-out tests run one at a time: each starts several hosts and some put the machine under load.</summary>
[CollectionDefinition(Name)]
public sealed class ScaleOutCollection
{
    public const string Name = "ScaleOut";
}
