using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Prometheus;
using Tunnel2.Server.ProxyEntry;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Sessions;
using Tunnel2.Server.Uplink;

namespace Tunnel2.Server.Hosting;

/// <summary>Composition of the TunnelServer, shared by Program and the tests (which bind 127.0.0.1:0).</summary>
public static class TunnelServerHost
{
    /// <summary>Where the server listens when no URL is configured.</summary>
    public const string DefaultUrl = "http://127.0.0.1:12000";

    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Also set in TunnelServer.csproj for the published app; here for hosts built in-process (tests, embedding).
        AppContext.SetSwitch("Microsoft.AspNetCore.Server.Kestrel.DisableHttp1LineFeedTerminators", true);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        if (string.IsNullOrEmpty(builder.Configuration["urls"]) && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"]))
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        AddUplinkListener(builder);
        AddTransportMemoryPool(builder);

        // The slim builder leaves HTTPS out; the entry and the uplink share one TLS certificate when configured
        // (Kestrel:Certificates:Default or an https:// URL with Kestrel:Endpoints).
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.ConfigureKestrel(ConfigureKestrel);
        builder.Services.AddTunnelServer(builder.Configuration);
        configure?.Invoke(builder);

        var app = builder.Build();
        app.MapTunnelServer();
        return app;
    }

    internal static void ConfigureKestrel(KestrelServerOptions kestrel)
    {
        kestrel.AddServerHeader = false;

        // The uplink's pre-authentication budget and, inside it, the request head recorder go on every endpoint, however
        // it is configured (URLs, Kestrel:Endpoints, the default URL); both find their way under TLS by themselves
        // (DelegatingConnectionContext). Endpoint defaults are a single callback: a later ConfigureEndpointDefaults
        // replaces this one.
        kestrel.ConfigureEndpointDefaults(static listen =>
        {
            listen.ApplicationServices.GetRequiredService<UplinkPreAuth>().Attach(listen);
            listen.ApplicationServices.GetRequiredService<RequestHeadRecording>().Attach(listen);
        });
        kestrel.ConfigurationLoader?.Endpoint(
            UplinkPreAuth.DedicatedEndpointName,
            static endpoint => endpoint.ListenOptions.ApplicationServices.GetRequiredService<UplinkPreAuth>().MarkDedicated(endpoint.ListenOptions));

        // Header bytes pass through byte for byte (docs/protocol.md §4.2); Kestrel's default would reject obs-text.
        kestrel.RequestHeaderEncodingSelector = static _ => Encoding.Latin1;
        kestrel.ResponseHeaderEncodingSelector = static _ => Encoding.Latin1;
    }

    /// <summary>
    /// Larger transport buffers than Kestrel's 4 KiB blocks (<see cref="TunnelServerOptions.TransportBlockSize"/>, and
    /// <see cref="TunnelServerOptions.TransportLargeBlockSize"/> within <see cref="TunnelServerOptions.TransportLargeBlockMemory"/>).
    /// Read from configuration here because the transport takes its pool factory from the container before options
    /// exist; a value outside the valid range leaves Kestrel's pool in place and fails the options validation at start.
    /// </summary>
    private static void AddTransportMemoryPool(WebApplicationBuilder builder)
    {
        var size = Setting(nameof(TunnelServerOptions.TransportBlockSize), TunnelServerOptions.DefaultTransportBlockSize);
        var largeSize = Setting(nameof(TunnelServerOptions.TransportLargeBlockSize), TunnelServerOptions.DefaultTransportLargeBlockSize);
        var largeMemory = Setting(nameof(TunnelServerOptions.TransportLargeBlockMemory), TunnelServerOptions.DefaultTransportLargeBlockMemory);
        if (size is > TunnelServerOptions.KestrelTransportBlockSize and <= TunnelServerOptions.MaxTransportBlockSize
            && largeSize >= size && largeSize <= TunnelServerOptions.MaxTransportBlockSize
            && largeMemory is >= 0 and <= TunnelServerOptions.MaxTransportLargeBlockMemory)
        {
            builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>>(new TransportMemoryPoolFactory(size, largeSize, largeMemory));
        }

        T Setting<T>(string name, T defaultValue) =>
            builder.Configuration.GetValue($"{TunnelServerOptions.SectionName}:{name}", defaultValue)!;
    }

    /// <summary>
    /// Binds <c>Tunnel:UplinkListenUrl</c>, when set, as a Kestrel endpoint of its own
    /// (<see cref="UplinkPreAuth.DedicatedEndpointName"/>). Kestrel binds either the URLs or its configured endpoints,
    /// never both, so without <c>Kestrel:Endpoints</c> the URLs become configured endpoints too; with them, the URLs
    /// were ignored anyway.
    /// </summary>
    private static void AddUplinkListener(WebApplicationBuilder builder)
    {
        var uplinkUrl = builder.Configuration[$"{TunnelServerOptions.SectionName}:{nameof(TunnelServerOptions.UplinkListenUrl)}"];
        if (string.IsNullOrEmpty(uplinkUrl))
        {
            return;
        }

        var endpoints = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        if (!builder.Configuration.GetSection("Kestrel:Endpoints").GetChildren().Any())
        {
            var urls = builder.Configuration["urls"];
            if (string.IsNullOrEmpty(urls))
            {
                urls = builder.Configuration["ASPNETCORE_URLS"] ?? DefaultUrl;
            }

            var i = 0;
            foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                endpoints[$"Kestrel:Endpoints:Tunnel2Public{i++}:Url"] = url;
            }

            builder.WebHost.UseSetting(WebHostDefaults.ServerUrlsKey, string.Empty);
        }

        endpoints[$"Kestrel:Endpoints:{UplinkPreAuth.DedicatedEndpointName}:Url"] = uplinkUrl;
        builder.Configuration.AddInMemoryCollection(endpoints);
    }

    public static IServiceCollection AddTunnelServer(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TunnelServerOptions>()
            .Bind(configuration.GetSection(TunnelServerOptions.SectionName))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<TunnelServerOptions>, TunnelServerOptionsValidator>();
        services.AddSingleton<IValidateOptions<Microsoft.AspNetCore.HostFiltering.HostFilteringOptions>, AllowedHostsValidator>();
        services.AddOptions<Microsoft.AspNetCore.HostFiltering.HostFilteringOptions>().ValidateOnStart();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<SessionRegistry>();
        services.AddSingleton<EntryRateLimiter>();
        services.AddSingleton<Observability.ServerMetrics>();
        services.AddSingleton<Tcp.TcpServiceRegistry>();
        services.AddSingleton<TokenValidator>();
        services.AddSingleton<UplinkEndpoint>();
        services.AddSingleton<UplinkPreAuth>();
        services.AddSingleton<RequestHeadRecording>();
        services.AddSingleton<DrainState>();
        services.AddSingleton<NodeHeaders>();
        services.AddSingleton<NodeForwarder>();
        services.AddSingleton<SessionDirectory>();
        services.AddHostedService(sp => sp.GetRequiredService<SessionDirectory>());
        services.AddHostedService<ServerDrain>();

        // The host's own deadline must leave Kestrel time after the drain (Kubernetes' default grace period is 30 s).
        services.AddOptions<HostOptions>().Configure<IOptions<TunnelServerOptions>>((host, tunnel) =>
        {
            var needed = tunnel.Value.DrainTimeout + TimeSpan.FromSeconds(5);
            host.ShutdownTimeout = needed > TimeSpan.FromSeconds(30) ? needed : TimeSpan.FromSeconds(30);
        });
        return services;
    }

    public static WebApplication MapTunnelServer(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<TunnelServerOptions>>().Value;
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        var uplinks = app.Services.GetRequiredService<UplinkEndpoint>();
        var drain = app.Services.GetRequiredService<DrainState>();

        if (app.Services.GetRequiredService<TokenValidator>().TokenCount == 0)
        {
            Log.NoTokensConfigured(app.Logger);
        }

        if (!string.IsNullOrEmpty(options.UplinkListenUrl))
        {
            var configured = app.Services.GetRequiredService<IConfiguration>()[$"{TunnelServerOptions.SectionName}:{nameof(TunnelServerOptions.UplinkListenUrl)}"];
            if (configured != options.UplinkListenUrl)
            {
                throw new InvalidOperationException("Tunnel:UplinkListenUrl is read when the host is built: set it in configuration (appsettings, environment, command line), not in code.");
            }

            // The dedicated listener serves the uplink and nothing else; the public listeners serve everything but it.
            var uplinkPath = options.UplinkPath;
            app.Use((context, next) =>
            {
                var onUplinkListener = context.Features.Get<IUplinkAuthenticationFeature>() is { IsDedicatedListener: true };
                if (onUplinkListener != context.Request.Path.StartsWithSegments(uplinkPath, StringComparison.OrdinalIgnoreCase))
                {
                    context.Response.StatusCode = StatusCodes.Status404NotFound;
                    return Task.CompletedTask;
                }

                return next(context);
            });
        }

        // On shutdown (SIGTERM) ServerDrain keeps Kestrel listening while every uplink drains (GOAWAY: in-flight streams
        // finish, no new ones start) and new requests go to other nodes, for at most Tunnel:DrainTimeout.
        // The entry runs before routing, so proxied requests never pay for endpoint matching.
        app.UseMiddleware<ProxyEntryMiddleware>();
        app.UseRouting();
        app.MapGet(options.UplinkPath, uplinks.HandleAsync);
        app.MapGet("/healthz", static () => Results.Text("ok\n"));
        app.MapMetrics("/metrics", app.Services.GetRequiredService<Observability.ServerMetrics>().Registry);
        app.MapGet("/readyz", () => lifetime.ApplicationStopping.IsCancellationRequested || drain.IsDraining
            ? Results.Text("draining\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ready\n"));
        return app;
    }
}
