using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tunnel2.Client;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.FunctionalTests.Reliability;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>
/// The client's built-in HTTP/1.1 hop to plain-http backends (docs/adr/0010-builtin-http1-backend-hop.md): pooled
/// connections that the backend closed, interim responses, trailers, close-delimited bodies, early answers to
/// chunked uploads; and a representative set of requests through both <see cref="BackendHttpClient"/> settings.
/// </summary>
public sealed class BackendHttp1Tests(ITestOutputHelper output)
{
    [Fact]
    public async Task StaleKeepAliveConnection_ClosedByTheBackendWhileIdle_NextRequestOnAFreshOne()
    {
        var firstClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var backend = new ScriptedBackend(async connection =>
        {
            while (await connection.ReadRequestAsync() is not null)
            {
                await connection.SendAsync($"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{connection.Index}");
                if (connection.Index == 0)
                {
                    // Keep-alive was promised; the backend closes the idle connection anyway (its idle timeout).
                    connection.Close();
                    firstClosed.TrySetResult();
                    return;
                }
            }
        });
        await using var tunnel = await StartAsync(o => o.Routes["/raw"] = backend.Url);

        Assert.Equal("0", await tunnel.Http.GetStringAsync(tunnel.Url("/raw/first")).DefaultTimeout());
        await firstClosed.Task.DefaultTimeout();
        using var second = await tunnel.Http.GetAsync(tunnel.Url("/raw/second")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("1", await second.Content.ReadAsStringAsync().DefaultTimeout());
        Assert.Equal(2, backend.Accepted);
    }

    [Fact]
    public async Task StaleKeepAliveConnection_ClosedAsTheNextRequestArrives_RetriedOnceOnAFreshOne()
    {
        var requestsOnFirst = 0;
        await using var backend = new ScriptedBackend(async connection =>
        {
            while (await connection.ReadRequestAsync() is not null)
            {
                if (connection.Index == 0 && connection.Requests == 2)
                {
                    // The race HttpClient retries for: the idle connection looked fine, the backend closed it as the
                    // request arrived, nothing was answered.
                    Volatile.Write(ref requestsOnFirst, 2);
                    return;
                }

                await connection.SendAsync($"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n{connection.Index}");
            }
        });
        await using var tunnel = await StartAsync(o => o.Routes["/raw"] = backend.Url);

        Assert.Equal("0", await tunnel.Http.GetStringAsync(tunnel.Url("/raw/first")).DefaultTimeout());
        using var second = await tunnel.Http.GetAsync(tunnel.Url("/raw/second")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal("1", await second.Content.ReadAsStringAsync().DefaultTimeout());
        Assert.Equal(2, Volatile.Read(ref requestsOnFirst));
        Assert.Equal(2, backend.Accepted);
    }

    [Fact]
    public async Task InterimResponses_100And103_Skipped_FinalResponseForwarded()
    {
        await using var backend = new ScriptedBackend(async connection =>
        {
            if (await connection.ReadRequestAsync() is not null)
            {
                await connection.SendAsync("HTTP/1.1 100 Continue\r\n\r\n");
                await connection.SendAsync("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n");
                await connection.SendAsync("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nfinal");
            }
        });
        await using var tunnel = await StartAsync(o => o.Routes["/raw"] = backend.Url);

        using var response = await tunnel.Http.PostAsync(tunnel.Url("/raw/upload"), new StringContent("body")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("final", await response.Content.ReadAsStringAsync().DefaultTimeout());
        Assert.False(response.Headers.Contains("Link"), "Fields of an interim response must not leak into the final one.");
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")]
    [InlineData("HTTP/1.0 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")]
    public async Task CloseDelimitedBody_ForwardedWhole_ConnectionNotReused(string head)
    {
        var body = Convert.ToHexString(RandomNumberGenerator.GetBytes(50_000));
        await using var backend = new ScriptedBackend(async connection =>
        {
            if (await connection.ReadRequestAsync() is not null)
            {
                await connection.SendAsync(head + body);
            }
        });
        await using var tunnel = await StartAsync(o => o.Routes["/raw"] = backend.Url);

        var first = await tunnel.Http.GetStringAsync(tunnel.Url("/raw/a")).DefaultTimeout();
        var second = await tunnel.Http.GetStringAsync(tunnel.Url("/raw/b")).DefaultTimeout();

        Assert.Equal(body, first);
        Assert.Equal(body, second);
        Assert.Equal(2, backend.Accepted);
    }

    [Fact]
    public async Task ChunkedResponseWithTrailers_BodyAndTrailersForwarded()
    {
        await using var backend = new ScriptedBackend(async connection =>
        {
            while (await connection.ReadRequestAsync() is not null)
            {
                await connection.SendAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5;ext=1\r\nhello\r\n");
                await connection.SendAsync("6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Count: 2\r\n\r\n");
            }
        });
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            // Trailers reach a public client over HTTP/2.
            ServerCertificate = certificate,
            ConfigureClient = o =>
            {
                o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate);
                o.Routes["/raw"] = backend.Url;
            },
        });

        using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/raw/trailers")) { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
        var body = await response.Content.ReadAsStringAsync().DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello world", body);
        Assert.Equal(["abc"], response.TrailingHeaders.GetValues("X-Checksum"));
        Assert.Equal(["2"], response.TrailingHeaders.GetValues("X-Count"));
        Assert.False(response.Headers.Contains("Trailer"));
    }

    [Fact]
    public async Task EarlyResponse_ToAChunkedUpload_ForwardedBeforeTheBodyEnds()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // An upload of unknown length (chunked to the backend too): the backend refuses after the first chunk.
        await raw.SendAsync($"POST {tunnel.Target("early/413")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nTransfer-Encoding: chunked\r\n\r\n");
        await raw.SendAsync($"10000\r\n{new string('x', 0x10000)}\r\n");
        await backend.NextArrivalAsync();
        var response = await raw.ReadResponseAsync();

        Assert.Equal(413, response?.StatusCode);
        Assert.Equal("early", response?.BodyText);
    }

    [Theory]
    [InlineData(BackendHttpClient.Builtin)]
    [InlineData(BackendHttpClient.HttpClient)]
    public async Task RepresentativeRequests_BothBackendClients(BackendHttpClient client)
    {
        await using var tunnel = await StartAsync(o => o.BackendHttpClient = client);
        var http = tunnel.Http;

        // GET, keep-alive: every request of the sequence on one backend connection.
        var connectionIds = new HashSet<string>();
        for (var i = 0; i < 3; i++)
        {
            using var info = await ReadJsonAsync(await http.GetAsync(tunnel.Url($"/loadtest/info/get{i}?q=a%20b")).DefaultTimeout());
            Assert.Equal($"/loadtest/info/get{i}?q=a%20b", info.RootElement.GetProperty("rawTarget").GetString());
            connectionIds.Add(info.RootElement.GetProperty("connectionId").GetString()!);
        }

        Assert.Single(connectionIds);

        // HEAD: no body, the length passes through.
        using (var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, tunnel.Url("/loadtest/get"))).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync().DefaultTimeout());
        }

        // POST with a length, echoed.
        var payload = RandomNumberGenerator.GetBytes(300_000);
        using (var echo = await http.PostAsync(tunnel.Url("/loadtest/echo"), new ByteArrayContent(payload)).DefaultTimeout())
        {
            Assert.Equal(payload, await echo.Content.ReadAsByteArrayAsync().DefaultTimeout());
        }

        // POST without a length (chunked both hops), fields forwarded, cookies joined.
        using var upload = new HttpRequestMessage(HttpMethod.Post, tunnel.Url("/loadtest/info/chunked"))
        {
            Content = new StreamContent(new MemoryStream(payload)),
        };
        upload.Headers.Add("X-Custom", "custom value");
        upload.Headers.Add("Cookie", "a=1");
        upload.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        using (var info = await ReadJsonAsync(await http.SendAsync(upload).DefaultTimeout()))
        {
            var root = info.RootElement;
            Assert.Equal(payload.Length, root.GetProperty("bodyLength").GetInt64());
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(payload)), root.GetProperty("bodySha256").GetString()!.ToLowerInvariant());
            Assert.Equal("custom value", root.GetProperty("headers").GetProperty("X-Custom")[0].GetString());
            Assert.Equal("a=1", root.GetProperty("headers").GetProperty("Cookie")[0].GetString());
            Assert.Equal("application/octet-stream", root.GetProperty("contentType").GetString());
        }

        // A chunked response, a 204, an error status with a body.
        using (var stream = await http.GetAsync(tunnel.Url("/loadtest/stream/5?size=1000")).DefaultTimeout())
        {
            Assert.Equal(5000, (await stream.Content.ReadAsByteArrayAsync().DefaultTimeout()).Length);
        }

        using (var noContent = await http.GetAsync(tunnel.Url("/loadtest/status/204")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.NoContent, noContent.StatusCode);
        }

        using (var notFound = await http.GetAsync(tunnel.Url("/loadtest/status/404")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        }
    }

    private Task<TestTunnel> StartAsync(Action<TunnelClientOptions> client)
        => TestTunnel.StartAsync(output, new TestTunnelOptions { ConfigureClient = client });

    private static async Task<JsonDocument> ReadJsonAsync(HttpResponseMessage response)
    {
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return JsonDocument.Parse(await response.Content.ReadAsStringAsync().DefaultTimeout());
        }
    }
}
