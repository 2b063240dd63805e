using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.Client.Uplink;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>TLS on the shared port, certificate pinning, and the entry's rate limits.</summary>
public sealed class SecurityTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Tls_PinnedSelfSignedCertificate_UplinkAndPublicEntryWork()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ServerCertificate = certificate,
            ConfigureClient = o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(certificate),
        });

        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();

        Assert.Equal("https", tunnel.ServerUrl.Scheme);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Tls_UntrustedCertificateWithoutPin_ClientRefusesToConnect()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { ServerCertificate = certificate, StartClient = false });
        using var client = Tunnel2.Client.Hosting.TunnelClientHost.Build([], tunnel.ConfigureClientOptions());
        var dialFailed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Services.GetRequiredService<UplinkSupervisor>().DialFailed += message => dialFailed.TrySetResult(message);

        await client.StartAsync().DefaultTimeout();
        var reason = await dialFailed.Task.DefaultTimeout();
        await client.StopAsync().DefaultTimeout();

        Assert.Contains("TLS failed", reason, StringComparison.Ordinal);
        Assert.Equal(0, tunnel.UplinkCount);
    }

    [Fact]
    public async Task Tls_WrongPin_ClientRefusesToConnect()
    {
        using var certificate = TestCertificates.CreateSelfSigned();
        using var other = TestCertificates.CreateSelfSigned("CN=someone-else");
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { ServerCertificate = certificate, StartClient = false });
        using var client = Tunnel2.Client.Hosting.TunnelClientHost.Build([], tunnel.ConfigureClientOptions(o => o.ServerCertificateSha256 = TestCertificates.Sha256Hex(other)));
        var dialFailed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Services.GetRequiredService<UplinkSupervisor>().DialFailed += message => dialFailed.TrySetResult(message);

        await client.StartAsync().DefaultTimeout();
        var reason = await dialFailed.Task.DefaultTimeout();
        await client.StopAsync().DefaultTimeout();

        Assert.Contains("TLS failed", reason, StringComparison.Ordinal);
        Assert.Equal(0, tunnel.UplinkCount);
    }

    [Fact]
    public async Task RateLimit_SessionOverItsRate_Gets429WithRetryAfter()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o =>
            {
                o.RateLimit.SessionRequestsPerSecond = 1;
                o.RateLimit.SessionBurst = 2;
            },
        });

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 6 && limited is null; i++)
        {
            var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited = response;
            }
            else
            {
                response.Dispose();
            }
        }

        // Burst of 2, refilled at 1/s: six back-to-back requests cannot all pass.
        Assert.NotNull(limited);
        Assert.NotNull(limited.Headers.RetryAfter);
        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        limited.Dispose();
    }

    [Fact]
    public async Task RateLimit_AddressGuessingSessionIds_Gets429()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            StartClient = false,
            ConfigureServer = o => o.RateLimit.NotFoundPerMinutePerAddress = 3,
        });

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 5; i++)
        {
            using var response = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, $"session/{Guid.NewGuid():D}/")).DefaultTimeout();
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.NotFound, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
    }
}
