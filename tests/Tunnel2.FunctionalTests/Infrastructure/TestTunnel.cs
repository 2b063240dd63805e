using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tunnel2.Client;
using Tunnel2.Client.Hosting;
using Tunnel2.Server;
using Tunnel2.Server.Hosting;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;
using Tunnel2.TestBackend;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>What a <see cref="TestTunnel"/> starts with; every part runs as a real host on 127.0.0.1:0.</summary>
internal sealed class TestTunnelOptions
{
    public bool StartBackend { get; init; } = true;

    public bool StartClient { get; init; } = true;

    /// <summary>Adjusts the backend host before it is built.</summary>
    public Action<WebApplicationBuilder>? ConfigureBackend { get; init; }

    /// <summary>Maps extra backend endpoints before it starts.</summary>
    public Action<WebApplication>? MapBackend { get; init; }

    /// <summary>Backend URL for the client instead of the started backend (e.g. a closed port).</summary>
    public string? BackendUrl { get; init; }

    public Action<TunnelServerOptions>? ConfigureServer { get; init; }

    /// <summary>
    /// Command-line arguments for the server after <c>--urls</c>: for settings read when the host is built, such as
    /// <c>--Tunnel:UplinkListenUrl=http://127.0.0.1:0</c>.
    /// </summary>
    public IReadOnlyList<string> ServerArgs { get; init; } = [];

    /// <summary>Adjusts the server host before it is built (Kestrel, certificates, logging).</summary>
    public Action<WebApplicationBuilder>? ConfigureServerHost { get; init; }

    /// <summary>A certificate for the server: public entry and uplink then speak HTTPS on the same port.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? ServerCertificate { get; init; }

    public Action<TunnelClientOptions>? ConfigureClient { get; init; }

    public int Uplinks { get; init; } = 2;
}

/// <summary>
/// Backend, TunnelServer and TunnelClient in one test process, each a real Kestrel/host on loopback port 0, with
/// logs in the test output. The client gets a fresh random token that the server grants the fixed test session.
/// </summary>
internal sealed class TestTunnel : IAsyncDisposable
{
    public static readonly Guid DefaultSessionId = Guid.Parse("22222222-2222-2222-2222-222222222222");

    private readonly ITestOutputHelper _output;
    private readonly TestTunnelOptions _options;
    private int _serverPort;

    private TestTunnel(ITestOutputHelper output, TestTunnelOptions options)
    {
        _output = output;
        _options = options;
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            RequestHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
            ResponseHeaderEncodingSelector = static (_, _) => System.Text.Encoding.Latin1,
        };
        if (options.ServerCertificate is { } certificate)
        {
            // The public client trusts exactly the test's self-signed certificate.
            handler.SslOptions.RemoteCertificateValidationCallback = (_, presented, _, _) =>
                presented is not null && presented.GetCertHashString() == certificate.GetCertHashString();
        }

        Http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
    }

    public string Token { get; } = "t2test_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public Guid SessionId { get; } = DefaultSessionId;

    public WebApplication? Backend { get; private set; }

    public Uri BackendUrl { get; private set; } = new("http://127.0.0.1:1/");

    public WebApplication Server { get; private set; } = null!;

    public Uri ServerUrl { get; private set; } = null!;

    /// <summary>The dedicated uplink listener (<c>Tunnel:UplinkListenUrl</c>), if the server has one; the client dials it.</summary>
    public Uri? UplinkListenerUrl { get; private set; }

    public IHost? Client { get; private set; }

    /// <summary>A client for the public side, as a user's would be.</summary>
    public HttpClient Http { get; }

    public UplinkEndpoint Uplinks => Server.Services.GetRequiredService<UplinkEndpoint>();

    public int UplinkCount => UplinkCounts.Of(Server.Services, SessionId);

    public static async Task<TestTunnel> StartAsync(ITestOutputHelper output, TestTunnelOptions? options = null)
    {
        var tunnel = new TestTunnel(output, options ?? new TestTunnelOptions());
        try
        {
            await tunnel.StartCoreAsync();
            return tunnel;
        }
        catch
        {
            await tunnel.DisposeAsync();
            throw;
        }
    }

    /// <summary>The public URL of <paramref name="pathAndQuery"/> in the test session.</summary>
    public Uri Url(string pathAndQuery) => new($"{ServerUrl}session/{SessionId:D}/{pathAndQuery.TrimStart('/')}");

    public async Task StartClientAsync(Action<TunnelClientOptions>? configure = null)
    {
        var registered = WaitForUplinkCountAsync(_options.Uplinks);
        Client = TunnelClientHost.Build([], ConfigureClientOptions(configure), builder =>
        {
            RemoveJsonSources(builder.Configuration);
            builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(_output, "[client]")).SetMinimumLevel(LogLevel.Debug);
        });
        await Client.StartAsync().DefaultTimeout();
        await registered;
    }

    public Action<TunnelClientOptions> ConfigureClientOptions(Action<TunnelClientOptions>? configure = null) => o =>
    {
        o.Server = (UplinkListenerUrl ?? ServerUrl).ToString();
        o.Backend = _options.BackendUrl ?? BackendUrl.ToString();
        o.Routes.Clear();
        o.Token = Token;
        o.TokenFile = null;
        o.Session = SessionId.ToString("D");
        o.Uplinks = _options.Uplinks;
        o.ReconnectBaseDelay = TimeSpan.FromMilliseconds(50);
        o.ReconnectMaxDelay = TimeSpan.FromMilliseconds(500);
        _options.ConfigureClient?.Invoke(o);
        configure?.Invoke(o);
    };

    public async Task StopClientAsync()
    {
        if (Client is { } client)
        {
            Client = null;
            await client.StopAsync().DefaultTimeout();
            client.Dispose();
        }
    }

    /// <summary>Completes when the test session has exactly <paramref name="count"/> uplinks.</summary>
    public Task WaitForUplinkCountAsync(int count) => UplinkCounts.WaitAsync(Server.Services, SessionId, count);

    /// <summary>Stops the server and starts a new one on the same port, as an operator restarting it would.</summary>
    public async Task RestartServerAsync()
    {
        await Server.StopAsync().DefaultTimeout();
        await Server.DisposeAsync();
        await StartServerAsync(_serverPort);
    }

    public async ValueTask DisposeAsync()
    {
        await StopClientAsync();
        if (Server is not null)
        {
            await Server.StopAsync().DefaultTimeout();
            await Server.DisposeAsync();
        }

        if (Backend is not null)
        {
            await Backend.StopAsync().DefaultTimeout();
            await Backend.DisposeAsync();
        }

        Http.Dispose();
    }

    private async Task StartCoreAsync()
    {
        if (_options.StartBackend)
        {
            Backend = TestBackendApp.Create(["--urls", "http://127.0.0.1:0"], builder =>
            {
                builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(_output, "[backend]"));
                _options.ConfigureBackend?.Invoke(builder);
            });
            _options.MapBackend?.Invoke(Backend);
            await Backend.StartAsync().DefaultTimeout();
            BackendUrl = new Uri(BoundAddress(Backend));
        }

        await StartServerAsync(port: 0);
        if (_options.StartClient)
        {
            await StartClientAsync();
        }
    }

    private async Task StartServerAsync(int port)
    {
        var scheme = _options.ServerCertificate is null ? "http" : "https";
        Server = TunnelServerHost.Build(["--urls", $"{scheme}://127.0.0.1:{port}", .. _options.ServerArgs], builder =>
        {
            if (_options.ServerCertificate is { } certificate)
            {
                builder.WebHost.ConfigureKestrel(k => k.ConfigureHttpsDefaults(https => https.ServerCertificate = certificate));
            }

            _options.ConfigureServerHost?.Invoke(builder);
            RemoveJsonSources(builder.Configuration);
            builder.Logging.ClearProviders().AddProvider(new XunitLoggerProvider(_output, "[server]")).SetMinimumLevel(LogLevel.Debug);
            builder.Services.PostConfigure<TunnelServerOptions>(o =>
            {
                var grant = new TunnelTokenOptions { Name = "test", Sha256 = TokenValidator.HashToken(Token) };
                grant.Sessions.Add(SessionId.ToString("D"));
                o.Tokens.Add(grant);

                // Answer "no uplink" at once unless a test is about waiting for one.
                o.UplinkWaitTimeout = TimeSpan.Zero;
                _options.ConfigureServer?.Invoke(o);
            });
        });
        await Server.StartAsync().DefaultTimeout();
        var uplinkListener = Server.Services.GetRequiredService<UplinkPreAuth>().DedicatedAddresses;
        ServerUrl = new Uri(BoundAddress(Server, exclude: uplinkListener));
        UplinkListenerUrl = uplinkListener.Count == 0 ? null : new Uri(uplinkListener.Single().TrimEnd('/') + "/");
        _serverPort = ServerUrl.Port;
    }

    private static string BoundAddress(WebApplication app, IReadOnlyList<string>? exclude = null)
        => app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses
            .Single(address => exclude is null || !exclude.Contains(address)).TrimEnd('/') + "/";

    private static void RemoveJsonSources(IConfigurationBuilder configuration)
    {
        // The test output folder holds the server's and the client's appsettings.json: neither belongs to a test host.
        for (var i = configuration.Sources.Count - 1; i >= 0; i--)
        {
            if (configuration.Sources[i] is JsonConfigurationSource)
            {
                configuration.Sources.RemoveAt(i);
            }
        }
    }
}
