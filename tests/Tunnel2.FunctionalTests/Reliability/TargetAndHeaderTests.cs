using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Tricky request targets and header abuse at the entry (reliability.md §2 D11–D13, D16–D19). The tunnel routes on
/// the raw target and forwards its suffix byte for byte (docs/adr/0004-raw-target-forwarding.md): what the backend
/// receives must be exactly what the public client wrote after <c>/session/{id}</c>, or nothing at all.
/// </summary>
public sealed class TargetAndHeaderTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("rec/a%zzb")]
    [InlineData("rec/%C0%AF")]
    [InlineData("rec/a%2Fb")]
    [InlineData("rec/a%252Fb")]
    [InlineData("rec/%E2%82%AC?q=%00&r=%zz")]
    [InlineData("rec/..%2F..%2Fadmin")]
    [InlineData("rec/..%5C..%5Cadmin")]
    [InlineData("rec/%2e%2e%2fadmin")]
    [InlineData("rec/.../x")]
    public async Task D11_D13_EncodedAndOddTargets_ForwardedByteForByte(string suffix)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target(suffix));

        // Encoded separators stay encoded all the way (the D13 policy: forward verbatim; backends must not decode
        // them into separators), so "..%2F" cannot climb out of the backend path it was sent to.
        Assert.Equal(200, response.StatusCode);
        Assert.Equal("/" + suffix, Assert.Single(backend.Requests).RawTarget);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("rec/a%00b")]
    [InlineData("rec/%00")]
    public async Task D11_EncodedNul_400_BackendNeverSeesIt(string suffix)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target(suffix));

        Assert.Equal(400, response.StatusCode);
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("rec/../loadtest/get")]
    [InlineData("rec/%2e%2e/loadtest/get")]
    [InlineData("rec/%2E%2E/loadtest/get")]
    [InlineData("rec/.%2e/loadtest/get")]
    [InlineData("./rec/x")]
    [InlineData("rec/%2e/x")]
    [InlineData("rec/..")]
    [InlineData("rec/x/..?q=1")]
    public async Task D12_DotSegmentsInTheSuffix_400_NeverRoutedElsewhere(string suffix)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target(suffix));

        Assert.Equal(400, response.StatusCode);
        Assert.Contains("dot-segments", response.BodyText, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("/x/../session/{id}/rec/escape")]
    [InlineData("/session/../session/{id}/rec/escape")]
    [InlineData("/session/{id}/../{id}/rec/escape")]
    [InlineData("//session/{id}/rec/escape")]
    [InlineData("/SESSION/{id}/rec/escape")]
    public async Task D12_DotSegmentsAroundTheSessionPrefix_NeverReachTheSession(string target)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        // Kestrel would normalise several of these to /session/{id}/rec/escape; the entry routes on the raw target,
        // so they never match the session (or are refused for their dot-segments).
        var response = await SendRawAsync(tunnel, target.Replace("{id}", tunnel.SessionId.ToString("D"), StringComparison.Ordinal));

        Assert.True(response.StatusCode is 400 or 404, $"{target}: expected 400 or 404, got {response}.");
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D13_RawBackslash_ForwardedVerbatim_NeverBecomesASeparator()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/..\\..\\loadtest/get"));

        // Forwarded byte for byte (the client's Uri keeps a backslash with DangerousDisablePathAndQueryCanonicalization),
        // so the backend sees the backslashes, never a path outside /rec such as /loadtest/get.
        Assert.Equal(200, response.StatusCode);
        Assert.Equal("/rec/..\\..\\loadtest/get", Assert.Single(backend.Requests).RawTarget);

        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D16_ConnectionNominatedFields_Removed_ForwardedHeadersStillSet()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/nominated"),
            "Connection: X-Secret, Authorization, X-Forwarded-For, X-Forwarded-Host\r\nX-Secret: s\r\nAuthorization: Bearer leaked\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Kept: k\r\n");

        Assert.Equal(200, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Null(seen.Header("X-Secret"));
        Assert.Null(seen.Header("Authorization"));
        Assert.Null(seen.Header("Connection"));
        Assert.Equal("k", seen.Header("X-Kept"));

        // Nominating the forwarded fields does not remove the entry's own values (nomination is applied first).
        Assert.Equal("127.0.0.1", seen.Header("X-Forwarded-For"));
        Assert.Equal(tunnel.Host(), seen.Header("X-Forwarded-Host"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D17_ForeignHost_DefaultAnyHost_Forwarded_BackendStillGetsItsOwnHost()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/host"), host: "evil.example");

        // The default AllowedHosts "*": sessions are addressed by path, so any Host reaches them
        // (docs/adr/0009-host-filtering-and-trace.md). The public Host only ever travels as X-Forwarded-Host; the
        // backend's Host is its own.
        Assert.Equal(200, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(tunnel.BackendUrl.Authority, seen.Header("Host"));
        Assert.Equal("evil.example", seen.Header("X-Forwarded-Host"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("evil.example")]
    [InlineData("evil.example:80")]
    [InlineData("tunnel.test.evil.example")]
    [InlineData("eviltunnel.test")]
    [InlineData("apps.test")]
    [InlineData("127.0.0.2")]
    public async Task D17_AllowedHostsSet_ForeignHost_400_BackendNeverSeesIt(string host)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await StartWithAllowedHostsAsync(backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/host"), host: host);
        var health = await SendRawAsync(tunnel, "/healthz", host: host);

        Assert.True(response.StatusCode == 400, $"Host {host}: expected 400, got {response}.");
        Assert.Contains("Invalid Hostname", response.BodyText, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);

        // ASP.NET Core's host filtering runs before every endpoint, not only the entry: probes need a listed Host.
        Assert.Equal(400, health.StatusCode);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("tunnel.test")]
    [InlineData("tunnel.test:8443")]
    [InlineData("TUNNEL.Test")]
    [InlineData("a.apps.test")]
    [InlineData("B.Apps.TEST:443")]
    public async Task D17_AllowedHostsSet_ListedHost_Forwarded(string host)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await StartWithAllowedHostsAsync(backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/host"), host: host);

        // Names match without case, the port is not compared, "*.apps.test" takes any subdomain.
        Assert.True(response.StatusCode == 200, $"Host {host}: expected 200, got {response}.");
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(tunnel.BackendUrl.Authority, seen.Header("Host"));
        Assert.Equal(host, seen.Header("X-Forwarded-Host"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D17_AllowedHostsWithAPort_ServerRefusesToStart()
    {
        // ASP.NET Core would accept the list and then refuse every request (ports are not compared).
        await using var server = Tunnel2.Server.Hosting.TunnelServerHost.Build(["--urls", "http://127.0.0.1:0", "--AllowedHosts", "tunnel.test:8443"]);

        var failure = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => server.StartAsync().DefaultTimeout());

        Assert.Contains("AllowedHosts has 'tunnel.test:8443'", failure.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("two Host fields", "Host: a.example\r\nHost: b.example\r\n")]
    [InlineData("no Host field", "")]
    [InlineData("Host with userinfo", "Host: user@evil.example\r\n")]
    [InlineData("Host with a path", "Host: evil.example/x\r\n")]
    [InlineData("Host with CR", "Host: evil.example\rX-Injected: 1\r\n")]
    public async Task D17_MalformedHost_400_BackendNeverSeesIt(string what, string hostLines)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"GET {tunnel.Target("rec/host")} HTTP/1.1\r\n{hostLines}Connection: close\r\n\r\n");
        var response = await raw.ReadResponseAsync();

        Assert.True(response?.StatusCode == 400, $"{what}: expected 400, got {response}.");
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Fact]
    public async Task D18_ClientForwardedHeaders_Overwritten_ForwardedRemoved()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/xff"),
            "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7, 8.8.8.8\r\nForwarded: for=6.6.6.6;host=evil.example\r\n"
            + "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Prefix: /admin\r\n");

        Assert.Equal(200, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Equal(["127.0.0.1"], seen.Headers["X-Forwarded-For"]);
        Assert.Equal(["http"], seen.Headers["X-Forwarded-Proto"]);
        Assert.Equal([tunnel.Host()], seen.Headers["X-Forwarded-Host"]);
        Assert.Equal([$"/session/{tunnel.SessionId:D}"], seen.Headers["X-Forwarded-Prefix"]);
        Assert.Null(seen.Header("Forwarded"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("Upgrade: h2c")]
    [InlineData("Upgrade: H2C")]
    [InlineData("Upgrade: websocket, h2c")]
    public async Task D19_H2cUpgrade_Stripped_NeverSwitchesProtocols(string upgrade)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);

        var response = await SendRawAsync(tunnel, tunnel.Target("rec/h2c"),
            $"Connection: Upgrade, HTTP2-Settings\r\n{upgrade}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n");

        Assert.Equal(200, response.StatusCode);
        var seen = Assert.Single(backend.Requests);
        Assert.Null(seen.Header("Upgrade"));
        Assert.Null(seen.Header("HTTP2-Settings"));
        Assert.Null(seen.Header("Connection"));
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    /// <summary>
    /// A tunnel whose server answers only the listed hosts (ASP.NET Core's <c>AllowedHosts</c>). 127.0.0.1 is listed
    /// because the test client's uplinks and the follow-up request dial the server by address, as probes would.
    /// </summary>
    private Task<TestTunnel> StartWithAllowedHostsAsync(RecordingBackend backend)
        => ReliabilityTunnel.StartAsync(output, backend, serverHost: b => b.Configuration["AllowedHosts"] = "tunnel.test;*.apps.test;127.0.0.1");

    /// <summary>
    /// One GET (with extra header lines) on its own connection. Adds <c>Connection: close</c> unless the test sends its
    /// own Connection field (a second one would be merged into it and change what is tested).
    /// </summary>
    private static async Task<RawHttpResponse> SendRawAsync(TestTunnel tunnel, string target, string extraHeaders = "", string? host = null)
    {
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var close = extraHeaders.Contains("Connection:", StringComparison.OrdinalIgnoreCase) ? string.Empty : "Connection: close\r\n";
        await raw.SendAsync($"GET {target} HTTP/1.1\r\nHost: {host ?? tunnel.Host()}\r\n{extraHeaders}{close}\r\n");
        var response = await raw.ReadResponseAsync();
        Assert.NotNull(response);
        return response;
    }
}
