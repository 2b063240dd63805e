using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration.Json;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tunnel2.TestBackend;

/// <summary>
/// Builds the test backend: the neutral, allocation-light HTTP server used by load tests (as a process, on
/// <see cref="DefaultUrl"/>) and by functional tests (in-process, usually on <c>http://127.0.0.1:0</c>).
/// </summary>
/// <example>
/// <code>
/// await using var backend = TestBackendApp.Create(["--urls", "http://127.0.0.1:0"]);
/// await backend.StartAsync();
/// var baseAddress = new Uri(backend.Urls.Single()); // the bound port, e.g. http://127.0.0.1:41234
/// </code>
/// </example>
public static class TestBackendApp
{
    /// <summary>Address used when neither <c>--urls</c> nor <c>ASPNETCORE_URLS</c>/<c>DOTNET_URLS</c> is given.</summary>
    public const string DefaultUrl = "http://127.0.0.1:12007";

    /// <summary>Logger category of everything the backend logs itself.</summary>
    public const string LoggerCategory = "Tunnel2.TestBackend";

    private static readonly string[] GetOrHead = [HttpMethods.Get, HttpMethods.Head];
    private static readonly string[] BodyMethods = [HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch];

    /// <summary>
    /// Creates the backend host with its Kestrel limits, logging defaults and all <c>/loadtest</c> endpoints mapped.
    /// The caller starts it (<c>RunAsync</c>/<c>StartAsync</c>) and disposes it.
    /// </summary>
    /// <param name="args">Command-line arguments, e.g. <c>--urls http://127.0.0.1:0</c>.</param>
    /// <param name="configure">
    /// Runs after the backend's defaults and before <c>Build</c>, so it can override any of them (addresses, Kestrel
    /// limits, logging providers).
    /// </param>
    /// <remarks>
    /// Configuration comes from defaults, environment variables and the command line only; <c>appsettings*.json</c>
    /// sources are removed, because in-process the content root is the test's output folder, which holds other
    /// projects' settings files (TunnelClient copies its <c>appsettings*.json</c> there).
    /// </remarks>
    public static WebApplication Create(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(args);

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = args,
            ApplicationName = typeof(TestBackendApp).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });

        var sources = builder.Configuration.Sources;
        for (var i = sources.Count - 1; i >= 0; i--)
        {
            if (sources[i] is JsonConfigurationSource)
            {
                sources.RemoveAt(i);
            }
        }

        // Lowest-priority defaults: environment variables and the command line override them.
        sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                [WebHostDefaults.ServerUrlsKey] = DefaultUrl,
                ["Logging:LogLevel:Default"] = nameof(LogLevel.Information),
                ["Logging:LogLevel:Microsoft"] = nameof(LogLevel.Warning),

                // While this category is enabled at any level, hosting starts an Activity and a log scope for every
                // request (HostingApplicationDiagnostics.BeginRequest checks IsEnabled(Critical)). Measured with
                // pipelined /loadtest/ping requests: 904 bytes allocated per request with it on, 0 with it off.
                // Startup failures still surface as exceptions from StartAsync/RunAsync.
                ["Logging:LogLevel:Microsoft.AspNetCore.Hosting.Diagnostics"] = nameof(LogLevel.None),
            },
        });

        builder.WebHost.ConfigureKestrel(options =>
        {
            // The limits of the original load report's backend.
            options.Limits.MaxConcurrentConnections = 10_000;
            options.Limits.MaxConcurrentUpgradedConnections = 10_000;
            options.Limits.KeepAliveTimeout = TimeSpan.FromMinutes(2);
            options.AllowSynchronousIO = false;

            // Echo and info must take multi-GB uploads (reliability.md D4); Kestrel's default would answer 413 at 30 MB.
            options.Limits.MaxRequestBodySize = null;
        });

        configure?.Invoke(builder);

        var app = builder.Build();
        app.MapTestBackend();

        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger(LoggerCategory);
        app.Lifetime.ApplicationStarted.Register(() => Log.Listening(logger, string.Join(", ", app.Urls)));
        return app;
    }

    /// <summary>
    /// Maps the <c>/loadtest/*</c> endpoints onto an existing host. Handlers are plain <see cref="RequestDelegate"/>s
    /// (no request delegate factory, no model binding).
    /// </summary>
    /// <remarks>
    /// <list type="table">
    ///   <item><term>GET|HEAD /loadtest/ping</term><description>200 text/plain "pong".</description></item>
    ///   <item><term>GET|HEAD /loadtest/get</term><description>200 small cached JSON; other methods 405.</description></item>
    ///   <item><term>GET|HEAD /loadtest/fast</term><description>200 pre-serialized JSON.</description></item>
    ///   <item><term>GET /loadtest/delay/{ms}</term><description>waits ms in [0, 60000], then 200 small JSON; else 400.</description></item>
    ///   <item><term>POST|PUT|PATCH /loadtest/echo</term><description>streams the body back, same Content-Type and Content-Length.</description></item>
    ///   <item><term>* /loadtest/info[/{**rest}]</term><description>JSON description of the request, body length and SHA-256.</description></item>
    ///   <item><term>GET|HEAD /loadtest/bytes/{n}?seed=S&amp;sha=1</term><description>n deterministic bytes (see <see cref="FillDeterministic"/>).</description></item>
    ///   <item><term>GET /loadtest/stream/{chunks}?size=N&amp;delayMs=D</term><description>chunked, flushed per chunk.</description></item>
    ///   <item><term>* /loadtest/status/{code}</term><description>that status, 200..599, body not read.</description></item>
    ///   <item><term>GET /loadtest/abort-after/{bytes}?graceMs=G</term><description>Content-Length 2×bytes, sends bytes, waits G ms (default 50), aborts; bytes = 0 aborts before the head.</description></item>
    ///   <item><term>GET /loadtest/headers?name=value</term><description>query pairs become response headers.</description></item>
    ///   <item><term>GET /loadtest/sse?count=N&amp;intervalMs=M</term><description>text/event-stream, "data: i" events.</description></item>
    ///   <item><term>/loadtest/ws</term><description>WebSocket echo.</description></item>
    /// </list>
    /// </remarks>
    public static void MapTestBackend(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);

        var loggerFactory = endpoints.ServiceProvider.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
        var logger = loggerFactory.CreateLogger(LoggerCategory);
        var hotPath = new HotPathHandlers(logger);
        var diagnostics = new DiagnosticHandlers(logger);
        var streaming = new StreamingHandlers(logger);
        var webSockets = new WebSocketEchoHandler(logger);

        // Explicit RequestDelegate variables so overload resolution can never pick the Delegate (RDF) overloads.
        RequestDelegate ping = HotPathHandlers.PingAsync;
        RequestDelegate get = HotPathHandlers.GetAsync;
        RequestDelegate fast = HotPathHandlers.FastAsync;
        RequestDelegate delay = HotPathHandlers.DelayAsync;
        RequestDelegate echo = hotPath.EchoAsync;
        RequestDelegate info = diagnostics.InfoAsync;
        RequestDelegate status = DiagnosticHandlers.StatusAsync;
        RequestDelegate headers = DiagnosticHandlers.HeadersAsync;
        RequestDelegate bytes = streaming.BytesAsync;
        RequestDelegate stream = streaming.StreamAsync;
        RequestDelegate sse = streaming.ServerSentEventsAsync;
        RequestDelegate abortAfter = streaming.AbortAfterAsync;

        endpoints.MapMethods("/loadtest/ping", GetOrHead, ping);
        endpoints.MapMethods("/loadtest/get", GetOrHead, get);
        endpoints.MapMethods("/loadtest/fast", GetOrHead, fast);
        endpoints.MapGet("/loadtest/delay/{ms}", delay);
        endpoints.MapMethods("/loadtest/echo", BodyMethods, echo);
        endpoints.Map("/loadtest/info", info);
        endpoints.Map("/loadtest/info/{**rest}", info);
        endpoints.MapMethods("/loadtest/bytes/{n}", GetOrHead, bytes);
        endpoints.MapGet("/loadtest/stream/{chunks}", stream);
        endpoints.Map("/loadtest/status/{code}", status);
        endpoints.MapGet("/loadtest/abort-after/{bytes}", abortAfter);
        endpoints.MapGet("/loadtest/headers", headers);
        endpoints.MapGet("/loadtest/sse", sse);

        // The WebSocket middleware runs only on this endpoint, so the hot endpoints pay nothing for it.
        var webSocketApp = endpoints.CreateApplicationBuilder();
        webSocketApp.UseWebSockets();
        webSocketApp.Run(webSockets.EchoAsync);
        endpoints.Map("/loadtest/ws", webSocketApp.Build());
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with the content <c>/loadtest/bytes/{n}?seed=<paramref name="seed"/></c>
    /// sends from byte <paramref name="offset"/> on. The content is a pure function of (seed, offset): the
    /// SplitMix64 stream for the seed, each 64-bit word little-endian.
    /// </summary>
    /// <param name="destination">Where to write; its length is the number of bytes produced.</param>
    /// <param name="offset">Offset of <c>destination[0]</c> in the body; not negative.</param>
    /// <param name="seed">The <c>seed</c> query value (1 when absent).</param>
    public static void FillDeterministic(Span<byte> destination, long offset, ulong seed)
        => DeterministicContent.Fill(destination, offset, seed);

    /// <summary>
    /// Lower-case hex SHA-256 of the first <paramref name="length"/> bytes of the deterministic content for
    /// <paramref name="seed"/>: what <c>/loadtest/bytes/{length}?seed=S&amp;sha=1</c> puts in <c>X-Content-Sha256</c>.
    /// </summary>
    public static string ComputeDeterministicSha256(long length, ulong seed)
        => DeterministicContent.ComputeSha256Hex(length, seed);
}
