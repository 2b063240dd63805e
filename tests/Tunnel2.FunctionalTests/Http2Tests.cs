using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>HTTP/2 on the public side (h2 over TLS) and gRPC-style exchanges: HTTP/2 to the backend, response trailers.</summary>
public sealed class Http2Tests(ITestOutputHelper output)
{
    [Fact]
    public async Task PublicHttp2OverTls_GetAndPost_Work()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
        });

        using var get = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/loadtest/info")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var getResponse = await tunnel.Http.SendAsync(get).DefaultTimeout();
        using var post = new HttpRequestMessage(HttpMethod.Post, tunnel.Url("/loadtest/echo"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(new byte[100_000]),
        };
        using var postResponse = await tunnel.Http.SendAsync(post).DefaultTimeout();

        Assert.Equal(HttpVersion.Version20, getResponse.Version);
        Assert.Equal(HttpStatusCode.OK, getResponse.StatusCode);
        Assert.Contains("\"protocol\":\"HTTP/1.1\"", await getResponse.Content.ReadAsStringAsync().DefaultTimeout(), StringComparison.Ordinal);
        Assert.Equal(100_000, (await postResponse.Content.ReadAsByteArrayAsync().DefaultTimeout()).Length);
    }

    [Fact]
    public async Task GrpcStyleExchange_UsesHttp2ToTheBackend_AndForwardsTrailers()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),

            // gRPC backends speak h2c (prior knowledge) on a cleartext port.
            ConfigureBackend = builder => builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2)),
            MapBackend = app => app.MapPost("/grpc.Echo/Say", async (HttpContext context) =>
            {
                using var reader = new StreamReader(context.Request.Body);
                var request = await reader.ReadToEndAsync();
                context.Response.ContentType = "application/grpc";
                context.Response.Headers["X-Backend-Protocol"] = context.Request.Protocol;
                context.Response.Headers["X-Backend-TE"] = context.Request.Headers.TE.ToString();
                await context.Response.WriteAsync("reply:" + request);
                context.Response.AppendTrailer("grpc-status", "0");
                context.Response.AppendTrailer("grpc-message", "all good");
            }),
        });

        using var call = new HttpRequestMessage(HttpMethod.Post, tunnel.Url("/grpc.Echo/Say"))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new StringContent("ping", Encoding.ASCII, "application/grpc"),
        };
        call.Headers.TE.ParseAdd("trailers");

        using var response = await tunnel.Http.SendAsync(call, HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();
        var body = await response.Content.ReadAsStringAsync().DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("reply:ping", body);
        Assert.Equal(["HTTP/2"], response.Headers.GetValues("X-Backend-Protocol"));
        Assert.Equal(["trailers"], response.Headers.GetValues("X-Backend-TE"));
        Assert.Equal(["0"], response.TrailingHeaders.GetValues("grpc-status"));
        Assert.Equal(["all good"], response.TrailingHeaders.GetValues("grpc-message"));
    }

    [Fact]
    public async Task ServerSentEvents_ArriveOneByOne()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/sse?count=3&intervalMs=50"), HttpCompletionOption.ResponseHeadersRead).DefaultTimeout();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync().DefaultTimeout());
        var events = new List<string>();
        while (await reader.ReadLineAsync().DefaultTimeout() is { } line)
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add(line);
            }
        }

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(["data: 0", "data: 1", "data: 2"], events);
    }
}
