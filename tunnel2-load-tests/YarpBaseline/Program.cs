using System.Diagnostics;
using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Configuration.Memory;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Tunnel2.YarpBaseline;

/// <summary>
/// A minimal single-hop YARP proxy that forwards every request to one destination, set up like the YARP team's
/// own benchmark app (dotnet/yarp <c>testassets/BenchmarkApp/Program.cs</c>): <see cref="IHttpForwarder"/> called
/// from one terminal delegate (no routing, no config-based routes), a shared <see cref="HttpMessageInvoker"/> over
/// a <see cref="SocketsHttpHandler"/> as YARP's <c>ForwarderHttpClientFactory</c> builds it, and the default
/// X-Forwarded-* transforms turned off (dotnet/yarp PR #2474: ~17 % RPS on h1→h1).
/// </summary>
/// <remarks>
/// <code>
/// dotnet YarpBaseline.dll [--urls http://127.0.0.1:12010] [--destination http://127.0.0.1:12007]
/// </code>
/// Requests go to the destination over HTTP/1.1 with pooled keep-alive connections, as TunnelClient's forwarder
/// and nginx's <c>keepalive</c> upstream do.
/// </remarks>
internal static class Program
{
    /// <summary>Listening address when neither <c>--urls</c> nor <c>ASPNETCORE_URLS</c> is given.</summary>
    public const string DefaultUrl = "http://127.0.0.1:12010";

    /// <summary>Where requests go when <c>--destination</c> is not given: TestBackend.</summary>
    public const string DefaultDestination = "http://127.0.0.1:12007";

    public static async Task Main(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ContentRootPath = AppContext.BaseDirectory,
        });

        // Configuration from defaults, environment and command line only: no appsettings files to drift.
        var sources = builder.Configuration.Sources;
        for (var i = sources.Count - 1; i >= 0; i--)
        {
            if (sources[i] is JsonConfigurationSource)
            {
                sources.RemoveAt(i);
            }
        }

        sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                [WebHostDefaults.ServerUrlsKey] = DefaultUrl,
                ["destination"] = DefaultDestination,
                ["Logging:LogLevel:Default"] = nameof(LogLevel.Warning),
                ["Logging:LogLevel:Microsoft.Hosting.Lifetime"] = nameof(LogLevel.Information),

                // With this category enabled at any level, hosting starts an Activity and a log scope for every
                // request (the same switch TestBackend and TunnelServer turn off; 904 B/request measured there).
                ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = nameof(LogLevel.None),
            },
        });

        // Bulk uploads of any size, as TestBackend and TunnelServer take them (Kestrel's default answers 413 at 30 MB).
        builder.WebHost.ConfigureKestrel(options => options.Limits.MaxRequestBodySize = null);
        builder.Services.AddHttpForwarder();

        await using var app = builder.Build();

        var destination = app.Configuration["destination"];
        if (!Uri.TryCreate(destination, UriKind.Absolute, out var destinationUri) || destinationUri.Scheme != Uri.UriSchemeHttp)
        {
            throw new ArgumentException($"--destination must be an absolute http:// URL, not '{destination}'.");
        }

        var forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        using var invoker = new HttpMessageInvoker(CreateHandler());
        var transformer = app.Services.GetRequiredService<ITransformBuilder>().Create(context => context.UseDefaultForwarders = false);

        // HTTP/1.1 to the destination, exactly: the default (HTTP/2, or lower) would also end at HTTP/1.1 over
        // plain http, but saying so keeps the comparison with nginx's proxy_http_version 1.1 explicit.
        var requestConfig = new ForwarderRequestConfig
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        var prefix = destinationUri.GetLeftPart(UriPartial.Authority);
        app.Run(context => ForwardAsync(forwarder, context, prefix, invoker, requestConfig, transformer));

        await app.RunAsync();
    }

    private static async Task ForwardAsync(
        IHttpForwarder forwarder, HttpContext context, string prefix, HttpMessageInvoker invoker, ForwarderRequestConfig config, HttpTransformer transformer)
    {
        // Errors are already answered (502/504) or the connection aborted by the forwarder; nothing to add here.
        await forwarder.SendAsync(context, prefix, invoker, config, transformer);
    }

    /// <summary>The handler YARP's <c>ForwarderHttpClientFactory.CreateClient</c> and its benchmark app build.</summary>
    private static SocketsHttpHandler CreateHandler() => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ActivityHeadersPropagator = new ReverseProxyPropagator(DistributedContextPropagator.Current),
        ConnectTimeout = TimeSpan.FromSeconds(15),
    };
}
