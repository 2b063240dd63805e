using Microsoft.Extensions.Options;
using Tunnel2.Client.Forwarding;
using Tunnel2.Client.Uplink;

namespace Tunnel2.Client.Hosting;

/// <summary>Composition of the TunnelClient, shared by Program and the tests.</summary>
public static class TunnelClientHost
{
    /// <summary>Environment variable that carries the uplink token (never the command line: it shows in `ps`).</summary>
    public const string TokenEnvironmentVariable = "TUNNEL2_TOKEN";

    public static IHost Build(string[] args, Action<TunnelClientOptions>? overrides = null, Action<HostApplicationBuilder>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        var token = Environment.GetEnvironmentVariable(TokenEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(token))
        {
            builder.Configuration.AddInMemoryCollection([new($"{TunnelClientOptions.SectionName}:Token", token)]);
        }

        builder.Services.AddTunnelClient(builder.Configuration, overrides);
        configure?.Invoke(builder);
        return builder.Build();
    }

    public static IServiceCollection AddTunnelClient(this IServiceCollection services, IConfiguration configuration, Action<TunnelClientOptions>? overrides = null)
    {
        var options = services.AddOptions<TunnelClientOptions>().Bind(configuration.GetSection(TunnelClientOptions.SectionName));
        if (overrides is not null)
        {
            options.PostConfigure(overrides);
        }

        options.ValidateOnStart();
        services.AddSingleton<IValidateOptions<TunnelClientOptions>, TunnelClientOptionsValidator>();
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new SessionState(ParseSession(sp.GetRequiredService<IOptions<TunnelClientOptions>>().Value.Session)));
        services.AddSingleton<ClientExit>();
        services.AddSingleton<ClientMetrics>();
        services.AddSingleton<TokenSource>();
        services.AddSingleton<SessionAnnouncer>();
        services.AddSingleton<BackendRoutes>();
        services.AddSingleton<TcpForwarder>();
        services.AddSingleton<BackendForwarder>();
        services.AddSingleton<UplinkDialer>();
        services.AddSingleton<UplinkSupervisor>();
        services.AddHostedService(sp => sp.GetRequiredService<UplinkSupervisor>());
        services.AddSingleton<StatusServer>();
        services.AddHostedService(sp => sp.GetRequiredService<StatusServer>());
        return services;
    }

    private static Guid? ParseSession(string? session) => Guid.TryParseExact(session, "D", out var id) ? id : null;
}
