using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// A hostile or broken public client at the entry (reliability.md §2 D1, D2, D5, D14, D15, D22, D24): each test sends
/// what a well-behaved client never would, asserts the exact answer and what the backend saw, then proves the session
/// is unharmed: a normal request through the same session works and no uplink was dropped.
/// </summary>
public sealed class PublicClientAbuseTests(ITestOutputHelper output)
{
    [Fact]
    public async Task D1_Slowloris_HeadNeverCompletes_408AndClosed_BackendNeverSeesIt()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend,
            serverHost: b => b.WebHost.ConfigureKestrel(k => k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(1)));
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("rec/slowloris")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nX-Slow: ");
        var closed = raw.ReadUntilClosedAsync();

        // Slowloris keeps the head open by trickling: one byte per 200 ms, at most 25 bytes (5 s), stopping as soon
        // as the server closes. The delay paces the attack; what the test waits for is the server's close.
        for (var i = 0; i < 25 && !closed.IsCompleted; i++)
        {
            await Task.WhenAny(closed, raw.SendAsync("a").ContinueWith(static _ => { }, TaskScheduler.Default));
            await Task.WhenAny(closed, Task.Delay(200));
        }

        var answer = System.Text.Encoding.Latin1.GetString(await closed.DefaultTimeout());

        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D2_SlowBody_BelowMinRate_408_BackendRequestAborted()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend,
            serverHost: b => b.WebHost.ConfigureKestrel(k => k.Limits.MinRequestBodyDataRate = new MinDataRate(bytesPerSecond: 2_000, gracePeriod: TimeSpan.FromSeconds(2))));
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // 5,000 bytes first, so the backend has certainly seen the request before the trickle starts.
        await raw.SendAsync($"POST {tunnel.Target("rec/slow-body")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: 10000\r\n\r\n");
        await raw.SendAsync(new byte[5_000]);
        var arrived = await backend.NextArrivalAsync();
        var response = raw.ReadResponseAsync();

        // R-U-Dead-Yet: one byte per 250 ms, at most 40 bytes, until the server answers. Kestrel averages over the whole
        // read, so the first 5,000 bytes carry the rate for 2.5 s against the 2,000 B/s minimum, then it falls below.
        for (var i = 0; i < 40 && !response.IsCompleted; i++)
        {
            await Task.WhenAny(response, raw.SendAsync("x").ContinueWith(static _ => { }, TaskScheduler.Default));
            await Task.WhenAny(response, Task.Delay(250));
        }

        var answer = await response.DefaultTimeout();

        Assert.Equal(408, answer?.StatusCode);
        Assert.True(await arrived.Finished.DefaultTimeout(), "The backend's request should have been aborted, not completed.");
        Assert.True(arrived.BodyLength < 10_000);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D2_StreamedRequestBody_FirstBytesReachBackend_BeforeTheBodyEnds()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // A streaming upload (a log tail, a progress feed) that has sent its head and a first small piece.
        await raw.SendAsync($"POST {tunnel.Target("rec/stream-up")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n");

        // Found by this test: the backend used to see nothing until 4 KiB of body had accumulated in the client's
        // HttpClient write buffer (fixed in 0c579b2: TunnelRequestContent flushes what has arrived, as YARP's
        // StreamCopier does whenever its source has nothing more ready).
        var arrived = await backend.NextArrivalAsync();
        await raw.SendAsync("0\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal("POST", arrived.Method);
        Assert.Equal(200, response?.StatusCode);
        Assert.Equal("ok 10", response?.BodyText);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D5_ClientDisconnectsMidUpload_BackendRequestAborted_SessionHealthy()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"POST {tunnel.Target("rec/upload")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: 10000000\r\n\r\n");
        await raw.SendAsync(new byte[64 * 1024]);
        var arrived = await backend.NextArrivalAsync();
        raw.Abort();

        Assert.True(await arrived.Finished.DefaultTimeout(), "The backend's request should have been aborted.");
        Assert.True(arrived.BodyLength < 10_000_000);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D5_ClientDisconnectsMidDownload_BackendRequestAborted_SessionHealthy()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("download/big")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
        var arrived = await backend.NextArrivalAsync();
        var status = await raw.ReadHeadAndSomeBodyAsync(bodyBytes: 64 * 1024);
        raw.Abort();

        Assert.Equal(200, status);
        Assert.True(await arrived.Finished.DefaultTimeout(), "The backend's download should have been aborted.");
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("request line over 8 KiB", 414)]
    [InlineData("headers over 32 KiB", 431)]
    [InlineData("more than 100 headers", 431)]
    [InlineData("one 40 KiB cookie", 431)]
    public async Task D14_OversizedHeads_RejectedByKestrel_BackendNeverSeesThem(string shape, int expected)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var target = tunnel.Target("rec/limits");
        var head = shape switch
        {
            "request line over 8 KiB" => $"GET {target}/{new string('a', 9000)} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n",
            "headers over 32 KiB" => $"GET {target} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n{string.Concat(Enumerable.Range(0, 40).Select(i => $"X-Big-{i}: {new string('v', 1000)}\r\n"))}\r\n",
            "more than 100 headers" => $"GET {target} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n{string.Concat(Enumerable.Range(0, 101).Select(i => $"X-Many-{i}: v\r\n"))}\r\n",
            _ => $"GET {target} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nCookie: c={new string('c', 40 * 1024)}\r\n\r\n",
        };

        await raw.SendAsync(head);
        var response = await raw.ReadResponseAsync();

        Assert.Equal(expected, response?.StatusCode);
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("bare CR in a value", "X-Bad: a\rb")]
    [InlineData("NUL in a value", "X-Bad: a\0b")]
    [InlineData("obs-fold continuation line", "X-Bad: a\r\n b")]
    [InlineData("space inside a name", "X Bad: v")]
    [InlineData("space before the colon", "X-Bad : v")]
    public async Task D15_ControlCharactersAndBrokenFieldSyntax_400_BackendNeverSeesThem(string what, string field)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("rec/crlf")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n{field}\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.True(response?.StatusCode == 400, $"{what}: expected 400, got {response}.");
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("\u0001")]
    [InlineData("\u001f")]
    [InlineData("\u007f")]
    public async Task D15_ControlCharacterKestrelAccepts_EntryDropsTheField(string control)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // Kestrel lets these through (observed: 200); the entry's encoder re-validates every value (HeaderValidation)
        // and drops the field, so it never reaches an HTTP/1.1 backend.
        await raw.SendAsync($"GET {tunnel.Target("rec/ctl")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nX-Bad: a{control}b\r\nX-Good: kept\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(200, response?.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Null(seen.Header("X-Bad"));
        Assert.Equal("kept", seen.Header("X-Good"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D22_ConnectAuthorityForm_400_NeverForwarded()
        => await AssertConnectRefusedAsync("CONNECT 127.0.0.1:1 HTTP/1.1", "authority-form CONNECT", expected: 400);

    /// <summary>
    /// Found by this test: CONNECT with an origin-form /session/ target used to be forwarded over the uplink, where the
    /// client's HttpClient failed and the entry answered 502 blaming the backend (fixed in 0c579b2: 405 at the entry).
    /// </summary>
    [Fact]
    public async Task D22_ConnectOriginForm_405_NeverForwarded()
        => await AssertConnectRefusedAsync("CONNECT {target} HTTP/1.1", "CONNECT with an origin-form target", expected: 405);

    private async Task AssertConnectRefusedAsync(string requestLine, string what, int expected)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"{requestLine.Replace("{target}", tunnel.Target("rec/connect"), StringComparison.Ordinal)}\r\nHost: {tunnel.Host()}\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.True(response?.StatusCode == expected, $"{what}: expected {expected}, got {response?.ToString() ?? "a closed connection"}.");
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D22_AbsoluteForm_RoutesByPathOnly_NeverByAuthority()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // The authority names a host the tunnel must never dial; Kestrel requires Host to match it.
        await raw.SendAsync($"GET http://127.0.0.1:1{tunnel.Target("rec/absolute?q=1")} HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(200, response?.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal("/rec/absolute?q=1", seen.RawTarget);
        Assert.Equal(tunnel.BackendUrl.Authority, seen.Header("Host"));
        Assert.Equal("127.0.0.1:1", seen.Header("X-Forwarded-Host"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    /// <summary>
    /// TRACE echoes the request back, so a page that can send it reads the cookies and credentials the browser attached
    /// (Cross-Site Tracing); TRACK is IIS's TRACE. The entry refuses both, in any case, before any session is touched
    /// (docs/adr/0009-host-filtering-and-trace.md), and the connection carries on.
    /// </summary>
    [Theory]
    [InlineData("TRACE")]
    [InlineData("TRACK")]
    [InlineData("trace")]
    public async Task D22_TraceAndTrack_405_NeverForwarded_ConnectionKeepsServing(string method)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var refusedBefore = await CountAsync(tunnel, "trace_not_allowed");
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"{method} {tunnel.Target("rec/trace")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n"
            + "Cookie: sid=secret-cookie\r\nAuthorization: Bearer secret-token\r\n\r\n");
        var refused = await raw.ReadResponseAsync();

        Assert.NotNull(refused);
        Assert.True(refused.StatusCode == 405, $"{method}: expected 405, got {refused}.");
        Assert.Contains("TRACE and TRACK are not forwarded", refused.BodyText, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", refused.BodyText, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);

        // The same keep-alive connection serves the next request; watch.AssertHealthyAsync then uses a new one.
        await raw.SendAsync($"GET {tunnel.Target("rec/after-trace")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: close\r\n\r\n");
        var next = await raw.ReadResponseAsync();

        Assert.Equal(200, next?.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(("GET", "/rec/after-trace"), (seen.Method, seen.RawTarget));
        Assert.Equal(1, await CountAsync(tunnel, "trace_not_allowed") - refusedBefore);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D22_Trace_AllowTrace_ForwardedToTheBackend()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, server: o => o.AllowTrace = true);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"TRACE {tunnel.Target("rec/trace")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: close\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.Equal(200, response?.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(("TRACE", "/rec/trace"), (seen.Method, seen.RawTarget));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D24_RandomAndMalformedSessionIds_UniformNotFound()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        var probes = Enumerable.Range(0, 40).Select(_ => Guid.NewGuid().ToString("D"))
            .Concat([
                "not-a-session",
                tunnel.SessionId.ToString("N"),
                tunnel.SessionId.ToString("B"),
                tunnel.SessionId.ToString("D").ToUpperInvariant().Replace('2', '3'),
                tunnel.SessionId.ToString("D") + "0",
                tunnel.SessionId.ToString("D")[..35],
                "%32" + tunnel.SessionId.ToString("D")[1..],
                string.Empty,
            ]);

        var answers = new List<(string Probe, int Status, string Body, string? ContentType, string? CacheControl)>();
        foreach (var probe in probes)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri($"{tunnel.ServerUrl}session/{probe}/rec/probe", new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true }));
            using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
            answers.Add((probe, (int)response.StatusCode, await response.Content.ReadAsStringAsync().DefaultTimeout(), response.Content.Headers.ContentType?.ToString(), response.Headers.CacheControl?.ToString()));
        }

        Assert.All(answers, a => Assert.True(a.Status == 404, $"Session probe '{a.Probe}' got {a.Status}."));
        Assert.Single(answers.Select(a => (a.Body, a.ContentType, a.CacheControl)).Distinct());
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    /// <summary>The server's <c>tunnel2_requests_total</c> for requests refused before any session, by outcome.</summary>
    private static async Task<double> CountAsync(TestTunnel tunnel, string outcome)
    {
        var series = $"tunnel2_requests_total{{session=\"none\",outcome=\"{outcome}\"}} ";
        var exposition = await tunnel.Http.GetStringAsync(new Uri(tunnel.ServerUrl, "metrics")).DefaultTimeout();
        var line = exposition.Split('\n').FirstOrDefault(l => l.StartsWith(series, StringComparison.Ordinal));
        return line is null ? 0 : double.Parse(line.AsSpan(series.Length), System.Globalization.CultureInfo.InvariantCulture);
    }
}
