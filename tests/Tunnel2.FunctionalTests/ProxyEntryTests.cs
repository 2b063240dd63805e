using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.TestBackend;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>Requests through the whole tunnel: public client → TunnelServer → uplink → TunnelClient → backend.</summary>
public sealed class ProxyEntryTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("GET")]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    [InlineData("PATCH")]
    [InlineData("OPTIONS")]
    public async Task Method_ReachesBackendUnchanged(string method)
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using var request = new HttpRequestMessage(new HttpMethod(method), tunnel.Url("/loadtest/info"));
        if (method is "POST" or "PUT" or "PATCH")
        {
            request.Content = new StringContent("hello", Encoding.UTF8, "text/plain");
        }

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var info = await ReadJsonAsync(response);
        Assert.Equal(method, info.GetProperty("method").GetString());
        if (request.Content is not null)
        {
            Assert.Equal(5, info.GetProperty("bodyLength").GetInt64());
            Assert.Equal("text/plain; charset=utf-8", info.GetProperty("contentType").GetString());
        }
    }

    [Fact]
    public async Task Head_ReturnsHeadersWithoutBody()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.SendAsync(new HttpRequestMessage(HttpMethod.Head, tunnel.Url("/loadtest/get"))).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(65, response.Content.Headers.ContentLength);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync().DefaultTimeout());
    }

    [Theory]
    [InlineData("/loadtest/info/a%2Fb/c?x=%2F&y=%20z")]
    [InlineData("/loadtest/info/%E2%82%AC/%C3%A9t%C3%A9?q=%E2%9C%93&empty=&flag")]
    [InlineData("/loadtest/info/%252F/x%3Fy?a=b%26c&a=d")]
    [InlineData("/loadtest/info?")]
    public async Task EncodedPathAndQuery_ArriveByteForByte(string target)
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.GetAsync(tunnel.Url(target)).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var info = await ReadJsonAsync(response);
        Assert.Equal(target, info.GetProperty("rawTarget").GetString());
    }

    [Fact]
    public async Task Headers_EndToEndPassed_HopByHopRemoved_ForwardedSet()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            // Kestrel rejects obs-text (bytes 0x80-0xFF) unless told otherwise; this backend accepts it, to see it arrive intact.
            ConfigureBackend = builder => builder.WebHost.ConfigureKestrel(k => k.RequestHeaderEncodingSelector = static _ => Encoding.Latin1),
        });
        using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/loadtest/info"));
        request.Headers.TryAddWithoutValidation("X-Custom", "one");
        request.Headers.TryAddWithoutValidation("X-Custom", "two");
        request.Headers.TryAddWithoutValidation("X-Latin1", "caf\u00e9");
        // Kestrel keeps only the keep-alive/close token of a Connection header that has one, so the nominated name goes alone
        // (docs/adr/0004-raw-target-forwarding.md, known limits).
        request.Headers.TryAddWithoutValidation("Connection", "X-Drop-Me");
        request.Headers.TryAddWithoutValidation("X-Drop-Me", "secret");
        request.Headers.TryAddWithoutValidation("Keep-Alive", "timeout=5");
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "6.6.6.6");
        request.Headers.TryAddWithoutValidation("Forwarded", "for=6.6.6.6");

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        var headers = (await ReadJsonAsync(response)).GetProperty("headers");
        Assert.Equal("one, two", string.Join(", ", Values(headers, "X-Custom")));
        Assert.Equal(["caf\u00e9"], Values(headers, "X-Latin1"));
        Assert.Null(Find(headers, "X-Drop-Me"));
        Assert.Null(Find(headers, "Keep-Alive"));
        Assert.Null(Find(headers, "Forwarded"));
        Assert.Equal(["127.0.0.1"], Values(headers, "X-Forwarded-For"));
        Assert.Equal(["http"], Values(headers, "X-Forwarded-Proto"));
        Assert.Equal([tunnel.ServerUrl.Authority], Values(headers, "X-Forwarded-Host"));
        Assert.Equal([$"/session/{tunnel.SessionId:D}"], Values(headers, "X-Forwarded-Prefix"));
        Assert.Equal([tunnel.BackendUrl.Authority], Values(headers, "Host"));
    }

    [Fact]
    public async Task ResponseHeaders_PassThrough_RepeatedKept()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/headers?X-One=1&Set-Cookie=a%3D1&Set-Cookie=b%3D2")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["1"], response.Headers.GetValues("X-One"));
        Assert.Equal(["a=1", "b=2"], response.Headers.GetValues("Set-Cookie"));
    }

    [Fact]
    public async Task Upload10MiB_ContentLength_ArrivesIntact()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        var body = RandomNumberGenerator.GetBytes(10 * 1024 * 1024);

        using var response = await tunnel.Http.PostAsync(tunnel.Url("/loadtest/info"), new ByteArrayContent(body)).DefaultTimeout();

        var info = await ReadJsonAsync(response);
        Assert.Equal(body.Length, info.GetProperty("bodyLength").GetInt64());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), info.GetProperty("bodySha256").GetString());
    }

    [Fact]
    public async Task Upload10MiB_Chunked_ArrivesIntact()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        var body = RandomNumberGenerator.GetBytes(10 * 1024 * 1024);
        using var content = new StreamContent(new MemoryStream(body));
        using var request = new HttpRequestMessage(HttpMethod.Post, tunnel.Url("/loadtest/info")) { Content = content };
        request.Headers.TransferEncodingChunked = true;

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        var info = await ReadJsonAsync(response);
        Assert.Equal(body.Length, info.GetProperty("bodyLength").GetInt64());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), info.GetProperty("bodySha256").GetString());
    }

    [Fact]
    public async Task ChunkedEcho_StreamsBothWays()
    {
        // Small enough for a half-duplex HTTP/1.1 client (HttpClient sends the whole body before it reads the echo).
        await using var tunnel = await TestTunnel.StartAsync(output);
        var body = RandomNumberGenerator.GetBytes(48 * 1024);
        using var request = new HttpRequestMessage(HttpMethod.Post, tunnel.Url("/loadtest/echo")) { Content = new StreamContent(new MemoryStream(body)) };
        request.Headers.TransferEncodingChunked = true;

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
        var echoed = await response.Content.ReadAsByteArrayAsync().DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(body, echoed);
    }

    [Fact]
    public async Task Download10MiB_ArrivesIntact()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        const int Length = 10 * 1024 * 1024;

        using var response = await tunnel.Http.GetAsync(tunnel.Url($"/loadtest/bytes/{Length}?seed=7"), HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();
        var bytes = await response.Content.ReadAsByteArrayAsync().DefaultTimeout();

        Assert.Equal(Length, response.Content.Headers.ContentLength);
        Assert.Equal(DeterministicContent.ComputeSha256Hex(Length, 7), Convert.ToHexStringLower(SHA256.HashData(bytes)));
    }

    [Fact]
    public async Task TwoHundredConcurrentRequests_AllCorrect()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        var requests = Enumerable.Range(0, 200).Select(async i =>
        {
            using var response = await tunnel.Http.GetAsync(tunnel.Url($"/loadtest/info?i={i}"));
            var info = await ReadJsonAsync(response);
            return (response.StatusCode, Query: info.GetProperty("queryString").GetString());
        });
        var results = await Task.WhenAll(requests).DefaultTimeout();

        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal(HttpStatusCode.OK, results[i].StatusCode);
            Assert.Equal($"?i={i}", results[i].Query);
        }
    }

    [Fact]
    public async Task StreamingResponse_FirstChunkArrivesBeforeBackendFinishes()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app => app.MapGet("/gate", async (HttpContext context) =>
            {
                await context.Response.WriteAsync("first\n");
                await context.Response.Body.FlushAsync();
                await release.Task.WaitAsync(context.RequestAborted);
                await context.Response.WriteAsync("second\n");
            }),
        });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/gate"), HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();
        await using var body = await response.Content.ReadAsStreamAsync().DefaultTimeout();
        var buffer = new byte[64];
        var first = await body.ReadAsync(buffer).DefaultTimeout();

        // The backend is still parked on 'release': the first chunk can only have come through incrementally.
        Assert.Equal("first\n", Encoding.ASCII.GetString(buffer, 0, first));
        release.SetResult();
        var rest = await new StreamReader(body).ReadToEndAsync().DefaultTimeout();
        Assert.Equal("second\n", rest);
        Assert.Null(response.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task UnknownSession_Returns404()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var unknown = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, $"session/{Guid.NewGuid():D}/loadtest/get")).DefaultTimeout();
        using var malformed = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "session/not-a-session/loadtest/get")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, malformed.StatusCode);
        Assert.Equal(await unknown.Content.ReadAsStringAsync(), await malformed.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ClientAbsent_Returns503WithRetryAfter()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        await tunnel.StopClientAsync();
        await tunnel.WaitForUplinkCountAsync(0);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task BackendDown_Returns502()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartBackend = false, BackendUrl = "http://127.0.0.1:9/" });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/anything")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("could not reach its backend", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendSlowerThanTimeout_Returns504()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureClient = o => o.BackendTimeout = TimeSpan.FromMilliseconds(300),
        });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/delay/20000")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
    }

    [Fact]
    public async Task SilentClient_ServerTimeoutReturns504()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.ResponseHeadersTimeout = TimeSpan.FromMilliseconds(300),
        });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/delay/20000")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
    }

    [Fact]
    public async Task BackendFailsAfterResponseStarted_PublicResponseAborted()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/abort-after/100000"), HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Assert.ThrowsAnyAsync<Exception>(() => response.Content.ReadAsByteArrayAsync().DefaultTimeout());
    }

    [Fact]
    public async Task ChunkedBackendFailsAfterResponseStarted_NoTerminatingChunk()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app => app.MapGet("/die", async (HttpContext context) =>
            {
                await context.Response.WriteAsync("partial");
                await context.Response.Body.FlushAsync();
                context.Abort();
            }),
        });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/die"), HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();

        // The failure races the head: if the RESET overtakes it at the entry the answer is 502, otherwise the started
        // 200 must end in an error. Either way the client never sees a complete-looking body.
        if (response.StatusCode != HttpStatusCode.BadGateway)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Null(response.Content.Headers.ContentLength);
            await Assert.ThrowsAnyAsync<Exception>(() => response.Content.ReadAsByteArrayAsync().DefaultTimeout());
        }
    }

    [Fact]
    public async Task DotSegments_Rejected400()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"{tunnel.ServerUrl}session/{tunnel.SessionId:D}/a/%2e%2e/b", new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true }));

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task SessionRootWithoutSlash_ForwardsRoot()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app => app.MapGet("/", (HttpContext context) => context.Request.QueryString.Value ?? string.Empty),
        });

        using var response = await tunnel.Http.GetAsync(new Uri($"{tunnel.ServerUrl}session/{tunnel.SessionId:D}?a=1")).DefaultTimeout();

        Assert.Equal("?a=1", await response.Content.ReadAsStringAsync());
    }

    private static async Task<JsonElement> ReadJsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync().DefaultTimeout();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }

    private static JsonElement? Find(JsonElement headers, string name)
    {
        foreach (var property in headers.EnumerateObject())
        {
            if (string.Equals(property.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return property.Value;
            }
        }

        return null;
    }

    private static string[] Values(JsonElement headers, string name)
        => Find(headers, name) is { } values ? values.EnumerateArray().Select(v => v.GetString()!).ToArray() : [];
}
