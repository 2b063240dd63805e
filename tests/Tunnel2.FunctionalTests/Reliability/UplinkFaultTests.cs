using System.Net;
using Tunnel2.FaultProxy;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;
using TcpFaultProxy = Tunnel2.FaultProxy.FaultProxy;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// The uplink itself fails (reliability.md §2 E1, E2), produced by the TCP fault proxy placed between TunnelClient and
/// TunnelServer: in-flight requests end with the right status (or an aborted body), the client re-dials by itself,
/// and the same session serves requests again.
/// </summary>
public sealed class UplinkFaultTests(ITestOutputHelper output)
{
    [Fact]
    public async Task E1_UplinkResetBeforeResponseHead_502_ClientReconnects_NextRequestOk()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false, uplinks: 1);
        await using var proxy = await StartProxyAsync(tunnel);
        using var watch = new UplinkWatch(tunnel);

        var pending = tunnel.Http.GetAsync(tunnel.Url("/hang/e1"));
        var arrived = await backend.NextArrivalAsync();
        Assert.Equal(1, proxy.BreakAll(BreakMode.Reset));
        using var response = await pending.DefaultTimeout();

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Contains("connection to the session's client was lost", await response.Content.ReadAsStringAsync().DefaultTimeout(), StringComparison.Ordinal);
        Assert.True(await arrived.Finished.DefaultTimeout(), "The backend request of a lost stream should have been cancelled.");
        await watch.WaitForReplacementAsync(expected: 1);
        Assert.Equal(2, proxy.AcceptedCount);
        await watch.AssertHealthyAsync(expectedUplinks: 1, uplinksMayChange: true);
    }

    [Fact]
    public async Task E1_UplinkResetMidResponseBody_PublicResponseAborted_ClientReconnects_NextRequestOk()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false, uplinks: 1);
        await using var proxy = await StartProxyAsync(tunnel);
        var first = Assert.Single(proxy.Connections);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // Cut the uplink once the public client has the head and 256 KiB of the body (the download never ends by
        // itself). Cutting at a byte count in the proxy instead races the server's read of the head: a kernel drops
        // unread bytes when the RST arrives, and "uplink lost before the head" is then a 502, rightly.
        await raw.SendAsync($"GET {tunnel.Target("download/e1")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n");
        Assert.Equal(200, await raw.ReadHeadAndSomeBodyAsync(256 * 1024).DefaultTimeout());
        Assert.Equal(1, proxy.BreakAll(BreakMode.Reset));
        var response = await raw.ReadResponseAsync().DefaultTimeout();
        await first.Completion.DefaultTimeout();

        Assert.Equal(200, response?.StatusCode);
        Assert.False(response?.BodyComplete, "A body cut by the uplink's loss must end in an aborted connection, not look complete.");
        Assert.Equal(BreakMode.Reset, first.BrokenBy);
        var download = Assert.Single(backend.Requests);
        Assert.True(await download.Finished.DefaultTimeout(), $"The backend download should have been cancelled; it wrote all {download.BodyLength} bytes.");
        await watch.WaitForReplacementAsync(expected: 1);
        await watch.AssertHealthyAsync(expectedUplinks: 1, uplinksMayChange: true);
    }

    [Fact]
    public async Task E2_HalfOpenUplink_DetectedByKeepAlive_InFlight502_ClientReconnects()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend, startClient: false, uplinks: 1,
            server: o =>
            {
                o.Limits.KeepAliveInterval = TimeSpan.FromMilliseconds(500);
                o.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(2);
            },
            client: o =>
            {
                o.Limits.KeepAliveInterval = TimeSpan.FromMilliseconds(500);
                o.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(2);
            });
        await using var proxy = await StartProxyAsync(tunnel);
        using var watch = new UplinkWatch(tunnel);

        var pending = tunnel.Http.GetAsync(tunnel.Url("/hang/e2"));
        var arrived = await backend.NextArrivalAsync();

        // The link goes silent both ways: no FIN, no RST. Only the PING keep-alive on each side can notice (500 ms
        // interval, 2 s timeout here: long enough that a loaded CI machine never starves a healthy uplink past it).
        Assert.Equal(1, proxy.BreakAll(BreakMode.HalfOpen));
        using var response = await pending.DefaultTimeout();
        await watch.WaitForReplacementAsync(expected: 1);

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.True(await arrived.Finished.DefaultTimeout(), "The client should have cancelled the backend request of its dead uplink.");
        Assert.True(proxy.AcceptedCount >= 2, $"The client should have re-dialled through the proxy ({proxy.AcceptedCount} connections).");
        Assert.Equal(BreakMode.HalfOpen, proxy.Connections[0].BrokenBy);
        await watch.AssertHealthyAsync(expectedUplinks: 1, uplinksMayChange: true);
    }

    /// <summary>A fault proxy in front of the server, and the client dialling through it.</summary>
    private async Task<TcpFaultProxy> StartProxyAsync(TestTunnel tunnel)
    {
        var proxy = await TcpFaultProxy.StartAsync(tunnel.ServerUrl, new FaultProxyOptions { Logger = new XunitLogger(output, "[proxy]") });
        try
        {
            await tunnel.StartClientAsync(o => o.Server = proxy.Url.ToString());
            await proxy.WhenAcceptedAsync(1).DefaultTimeout();
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }
}
