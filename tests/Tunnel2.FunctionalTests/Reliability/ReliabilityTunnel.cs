using Microsoft.AspNetCore.Builder;
using Tunnel2.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>A <see cref="TestTunnel"/> whose backend also has the <see cref="RecordingBackend"/> endpoints.</summary>
internal static class ReliabilityTunnel
{
    public static Task<TestTunnel> StartAsync(
        ITestOutputHelper output,
        RecordingBackend backend,
        Action<WebApplicationBuilder>? serverHost = null,
        Action<Tunnel2.Server.TunnelServerOptions>? server = null,
        Action<Tunnel2.Client.TunnelClientOptions>? client = null,
        Action<WebApplication>? mapBackend = null,
        bool startClient = true,
        int uplinks = 2)
        => TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app =>
            {
                backend.Map(app);
                mapBackend?.Invoke(app);
            },
            ConfigureServerHost = serverHost,
            ConfigureServer = server,
            ConfigureClient = client,
            StartClient = startClient,
            Uplinks = uplinks,
        });

    /// <summary>The origin-form target of <paramref name="rest"/> in the test session, for raw requests.</summary>
    public static string Target(this TestTunnel tunnel, string rest) => $"/session/{tunnel.SessionId:D}/{rest.TrimStart('/')}";

    /// <summary>The Host header value a browser would send to the server.</summary>
    public static string Host(this TestTunnel tunnel) => tunnel.ServerUrl.Authority;
}
