using System.Net;
using System.Net.Sockets;
using System.Text;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Backend faults seen by the TunnelClient and reported over the uplink (reliability.md §2 C1–C5, C8). Each asserts
/// the public status (or an aborted body), then that the session is unharmed: a backend failure is never an uplink
/// failure, so no uplink may drop and the next request through the same session works.
/// </summary>
public sealed class BackendFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task C1_BackendRefusesConnection_502_SessionHealthy()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false);
        var closedPort = GetClosedPort();
        await tunnel.StartClientAsync(o =>
        {
            o.Backend = $"http://127.0.0.1:{closedPort}/";
            o.Routes["/loadtest"] = tunnel.BackendUrl.ToString();
        });
        using var watch = new UplinkWatch(tunnel);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/refused")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("could not reach its backend", await response.Content.ReadAsStringAsync().DefaultTimeout(), StringComparison.Ordinal);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C2_BackendNeverAnswers_504_BackendRequestCancelled()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, client: o => o.BackendTimeout = TimeSpan.FromMilliseconds(500));
        using var watch = new UplinkWatch(tunnel);

        var pending = tunnel.Http.GetAsync(tunnel.Url("/hang/forever"));
        var arrived = await backend.NextArrivalAsync();
        using var response = await pending.DefaultTimeout();

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.True(await arrived.Finished.DefaultTimeout(), "The backend's request should have been cancelled, not left running.");
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C3_BackendResetsMidResponse_PublicResponseAborted_NeverLooksComplete()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // 100,000 bytes of a declared 200,000, then the backend aborts its connection.
        await raw.SendAsync($"GET {tunnel.Target("loadtest/abort-after/100000")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(200, response?.StatusCode);
        Assert.Equal("200000", response?.Header("Content-Length"));
        Assert.False(response?.BodyComplete, "A truncated body must end in an aborted connection, not look complete.");
        Assert.True(raw.ClosedByPeer);
        Assert.InRange(response!.Body.Length, 0, 100_000);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C4_BackendResetsBeforeHeaders_502()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/abort-after/0")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("not HTTP at all", "HELLO\r\n\r\n")]
    [InlineData("status code 2000", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("status line without a code", "HTTP/1.1 OK\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("200 KiB header", "HTTP/1.1 200 OK\r\nX-Huge: {huge}\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("Content-Length that is not a number", "HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nabc")]
    [InlineData("chunked body with a bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")]
    public async Task C5_BackendSendsAnInvalidResponse_502(string what, string answer)
    {
        var served = 0;
        await using var fake = AnsweringBackend(answer.Replace("{huge}", new string('h', 200 * 1024), StringComparison.Ordinal), () => Interlocked.Increment(ref served));
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false);
        await tunnel.StartClientAsync(o => o.Routes["/bad"] = fake.Url + "/");
        using var watch = new UplinkWatch(tunnel);

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/bad/response")).DefaultTimeout();

        Assert.True(response.StatusCode == HttpStatusCode.BadGateway, $"{what}: expected 502, got {(int)response.StatusCode}.");
        Assert.Equal(1, Volatile.Read(ref served));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C5_BackendFieldWithBareCR_NeverEmitted_NoInjectedField()
    {
        await using var fake = AnsweringBackend("HTTP/1.1 200 OK\r\nX-Bad: a\rX-Injected: 1\r\nX-Good: g\r\nContent-Length: 2\r\n\r\nok");
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false);
        await tunnel.StartClientAsync(o => o.Routes["/bad"] = fake.Url + "/");
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("bad/cr")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        // Observed: the client's HttpClient replaces the bare CR with a space (RFC 9112 §2.2 allows it), so the value
        // is harmless and no X-Injected field appears (reliability.md A12: never emitted into an HTTP/1.1 response).
        Assert.Equal(200, response?.StatusCode);
        Assert.Equal("ok", response?.BodyText);
        Assert.Equal("g", response?.Header("X-Good"));
        Assert.Equal("a X-Injected: 1", response?.Header("X-Bad"));
        Assert.Null(response?.Header("X-Injected"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C5_BackendConflictingContentLengths_502()
    {
        await using var fake = AnsweringBackend("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false);
        await tunnel.StartClientAsync(o => o.Routes["/bad"] = fake.Url + "/");
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("bad/lengths")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(502, response?.StatusCode);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C8_BackendAnswersEarly_WholeBodySent_ResponseForwarded_NoDeadlock()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // A client that writes its whole 4 MiB body before reading (a browser form post): the backend refuses it
        // without reading, and the refusal still arrives.
        await raw.SendAsync($"POST {tunnel.Target("early/413")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: {4 * 1024 * 1024}\r\n\r\n");
        var upload = raw.SendAsync(new byte[4 * 1024 * 1024]);
        var response = await raw.ReadResponseAsync();
        await upload;

        Assert.Equal(413, response?.StatusCode);
        Assert.Equal("early", response?.BodyText);
        Assert.Single(backend.Matching("/early/413"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task C8_BackendAnswersEarlyWhileUploading_ResponseForwardedBeforeTheBodyEnds()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // A 100 MB upload of which only 256 KiB is sent before the client waits for an answer (as after
        // Expect: 100-continue, or any client that reads while it writes). The backend refuses without reading.
        await raw.SendAsync($"POST {tunnel.Target("early/413")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: 100000000\r\n\r\n");
        await raw.SendAsync(new byte[256 * 1024]);
        await backend.NextArrivalAsync();
        var response = await raw.ReadResponseAsync();

        Assert.Equal(413, response?.StatusCode);
        Assert.Equal("early", response?.BodyText);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    private static int GetClosedPort()
    {
        using var probe = new Socket(SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>
    /// A backend that answers each connection's request with the same bytes and closes: for responses Kestrel would
    /// never send. <paramref name="served"/>, when given, runs once per request read.
    /// </summary>
    private static ScriptedBackend AnsweringBackend(string answer, Action? served = null) => new(async connection =>
    {
        if (await connection.ReadRequestAsync() is not null)
        {
            served?.Invoke();
            await connection.SendAsync(answer);
        }
    });
}
