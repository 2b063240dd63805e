using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Tunnel2.Client.Uplink;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>Uplink registration, authentication and recovery when either end goes away.</summary>
public sealed class LifecycleTests(ITestOutputHelper output)
{
    [Fact]
    public async Task BadToken_401_ClientStopsWithoutRetrying()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartClient = false });
        using var client = Tunnel2.Client.Hosting.TunnelClientHost.Build([], tunnel.ConfigureClientOptions(o => o.Token = "t2test_wrong_token_" + new string('x', 40)));
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());

        await client.StartAsync().DefaultTimeout();
        await stopping.Task.DefaultTimeout();
        await client.StopAsync().DefaultTimeout();

        // Two uplink slots, one handshake each, and the first 401 stops the client: at most two refusals, never a loop.
        Assert.InRange(tunnel.Uplinks.RejectedCount, 1, 2);
        Assert.Equal(ExitCodes.Rejected, client.Services.GetRequiredService<ClientExit>().Code);
        Assert.Equal(0, tunnel.UplinkCount);
    }

    [Fact]
    public async Task UplinkWithoutToken_Gets401_WithoutUpgrade()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartClient = false });
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(tunnel.ServerUrl, "tunnel/connect"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("tunnel2"));
        request.Headers.TryAddWithoutValidation("Tunnel2-Version", "1");

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Contains("Bearer", response.Headers.WwwAuthenticate.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task PlainGetOnUplinkEndpoint_Gets426()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartClient = false });

        using var response = await tunnel.Http.GetAsync(new Uri(tunnel.ServerUrl, "tunnel/connect")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.UpgradeRequired, response.StatusCode);
    }

    [Fact]
    public async Task ClientKilledAndRestarted_SameUrlWorksAgain()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { StartClient = false, Uplinks = 2 });
        var url = tunnel.Url("/loadtest/get");

        var first = ClientProcess.Start(tunnel, uplinks: 2);
        await using (first)
        {
            await tunnel.WaitForUplinkCountAsync(2);
            using (var response = await tunnel.Http.GetAsync(url).DefaultTimeout())
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }

            await first.KillAsync();
        }

        await tunnel.WaitForUplinkCountAsync(0);
        using (var response = await tunnel.Http.GetAsync(url).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        }

        await using var second = ClientProcess.Start(tunnel, uplinks: 2);
        await tunnel.WaitForUplinkCountAsync(2);
        using (var response = await tunnel.Http.GetAsync(url).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task NewClientInstance_TakesOver_OldInstanceStopsInsteadOfFlapping()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions { Uplinks = 1 });
        var oldClient = tunnel.Client!;
        var oldStopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        oldClient.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => oldStopping.TrySetResult());

        // A second process with the same token and session (a restart whose predecessor looks alive, or a double start).
        await using var replacement = ClientProcess.Start(tunnel, uplinks: 1);
        await oldStopping.Task.DefaultTimeout();
        await tunnel.WaitForUplinkCountAsync(1);
        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ExitCodes.Superseded, oldClient.Services.GetRequiredService<ClientExit>().Code);
    }

    [Fact]
    public async Task RequestWhileClientReconnects_WaitsForTheUplink_InsteadOf503()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.UplinkWaitTimeout = TimeSpan.FromSeconds(20),
        });
        await tunnel.StopClientAsync();
        await tunnel.WaitForUplinkCountAsync(0);
        Assert.True(tunnel.Server.Services.GetRequiredService<Tunnel2.Server.Sessions.SessionRegistry>().TryGetSession(tunnel.SessionId, out var session));
        var waiting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        session.WaitingForUplink += () => waiting.TrySetResult();

        var request = tunnel.Http.GetAsync(tunnel.Url("/loadtest/get"));
        await waiting.Task.DefaultTimeout();
        Assert.False(request.IsCompleted);
        await tunnel.StartClientAsync();
        using var response = await request.DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task ServerRestarted_ClientReconnectsByItself()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using (var before = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout())
        {
            Assert.Equal(HttpStatusCode.OK, before.StatusCode);
        }

        await tunnel.RestartServerAsync();
        await tunnel.WaitForUplinkCountAsync(2);

        using var after = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }
}
