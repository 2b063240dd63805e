using System.Net;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Fields nominated in <c>Connection</c> next to <c>keep-alive</c>, <c>close</c> or <c>Upgrade</c> (reliability.md D16;
/// docs/adr/0013-connection-field-as-sent.md): Kestrel shows only that token, so the entry reads the field from the
/// request head as sent. Each request on a connection loses exactly the fields its own head nominated, whatever came
/// before it on the connection (bodies that look like heads, other requests' nominations, TLS).
/// </summary>
public sealed class ConnectionFieldTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("Connection: keep-alive, X-Secret")]
    [InlineData("Connection: close, X-Secret")]
    [InlineData("Connection: X-Secret, Keep-Alive")]
    [InlineData("Connection: keep-alive,X-Secret")]
    [InlineData("Connection: keep-alive\r\nConnection: X-Secret")]
    public async Task D16_NominatedFieldNextToAKeptToken_Removed(string connection)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("rec/nominated")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n{connection}\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(200, response?.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Null(seen.Header("X-Secret"));
        Assert.Null(seen.Header("Connection"));
        Assert.Equal("k", seen.Header("X-Kept"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D16_OneConnection_EachRequestLosesOnlyWhatItsOwnHeadNominated()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // A body that looks like a head nominating X-B: only a head may nominate.
        const string Forged = "GET /forged HTTP/1.1\r\nConnection: keep-alive, X-B\r\n\r\n";
        var fields = "X-A: a\r\nX-B: b\r\n";

        await SendAsync(raw, $"GET {tunnel.Target("rec/1")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-A\r\n{fields}\r\n");
        await SendAsync(raw, $"POST {tunnel.Target("rec/2")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive\r\n{fields}Content-Length: {Forged.Length}\r\n\r\n{Forged}");
        await SendAsync(raw, $"POST {tunnel.Target("rec/3")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-B\r\n{fields}Transfer-Encoding: chunked\r\n\r\n{Forged.Length:x}\r\n{Forged}\r\n0\r\n\r\n");
        await SendAsync(raw, $"GET {tunnel.Target("rec/4")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive\r\n{fields}\r\n");

        AssertFields(backend, "/rec/1", xa: false, xb: true);
        AssertFields(backend, "/rec/2", xa: true, xb: true);
        Assert.Equal(Forged, Assert.Single(backend.Matching("/rec/2")).BodyText);
        AssertFields(backend, "/rec/3", xa: true, xb: false);
        AssertFields(backend, "/rec/4", xa: true, xb: true);
        Assert.False(raw.ClosedByPeer);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D16_Pipelined_EachRequestLosesOnlyWhatItsOwnHeadNominated()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync(
            $"GET {tunnel.Target("rec/1")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-A\r\nX-A: a\r\n\r\n"
            + $"GET {tunnel.Target("rec/2")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive\r\nX-A: a\r\n\r\n");
        var first = await raw.ReadResponseAsync();
        var second = await raw.ReadResponseAsync();

        Assert.Equal(200, first?.StatusCode);
        Assert.Equal(200, second?.StatusCode);
        Assert.Null(Assert.Single(backend.Matching("/rec/1")).Header("X-A"));
        Assert.Equal("a", Assert.Single(backend.Matching("/rec/2")).Header("X-A"));
    }

    [Fact]
    public async Task D16_AfterRequestsTheEntryDidNotForward_NominationsStillApplyToTheirOwnRequest()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var unknown = $"/session/{Guid.NewGuid():D}/x";

        // A request the server answers itself, and one refused (404) whose body Kestrel reads past, then tunnel ones.
        Assert.Equal(200, (await SendAsync(raw, $"GET /healthz HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-A\r\n\r\n")).StatusCode);
        Assert.Equal(404, (await SendAsync(raw, $"POST {unknown} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-A\r\nContent-Length: 5\r\n\r\nhello")).StatusCode);
        await SendAsync(raw, $"GET {tunnel.Target("rec/1")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive\r\nX-A: a\r\nX-B: b\r\n\r\n");
        await SendAsync(raw, $"GET {tunnel.Target("rec/2")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: keep-alive, X-B\r\nX-A: a\r\nX-B: b\r\n\r\n");

        AssertFields(backend, "/rec/1", xa: true, xb: true);
        AssertFields(backend, "/rec/2", xa: true, xb: false);
    }

    [Fact]
    public async Task D16_OverTls_NominatedFieldNextToKeepAlive_Removed_OnEveryRequestOfTheConnection()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        var backend = new RecordingBackend();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
            MapBackend = backend.Map,
        });

        // Bounded: three requests on the client's pooled HTTP/1.1 connection.
        for (var i = 0; i < 3; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url($"/rec/tls{i}")) { Version = HttpVersion.Version11 };
            request.Headers.Connection.Add("keep-alive");
            if (i != 1)
            {
                request.Headers.Connection.Add("X-Secret");
            }

            request.Headers.Add("X-Secret", "s");
            using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Null(Assert.Single(backend.Matching("/rec/tls0")).Header("X-Secret"));
        Assert.Equal("s", Assert.Single(backend.Matching("/rec/tls1")).Header("X-Secret"));
        Assert.Null(Assert.Single(backend.Matching("/rec/tls2")).Header("X-Secret"));
    }

    private static async Task<RawHttpResponse> SendAsync(RawHttpConnection raw, string request)
    {
        await raw.SendAsync(request);
        var response = await raw.ReadResponseAsync();
        Assert.NotNull(response);
        return response;
    }

    private static void AssertFields(RecordingBackend backend, string path, bool xa, bool xb)
    {
        var seen = Assert.Single(backend.Matching(path));
        Assert.Equal(xa ? "a" : null, seen.Header("X-A"));
        Assert.Equal(xb ? "b" : null, seen.Header("X-B"));
    }
}
