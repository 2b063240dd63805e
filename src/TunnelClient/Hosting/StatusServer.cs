using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Prometheus;
using Tunnel2.Client.Forwarding;
using Tunnel2.Client.Uplink;

namespace Tunnel2.Client.Hosting;

/// <summary>
/// The client's local status endpoint: <c>/status</c> (what it serves, uplinks, queue) and <c>/metrics</c>. A port in
/// use is logged and skipped: status is a convenience, never a reason for the tunnel not to run.
/// </summary>
internal sealed partial class StatusServer(
    IOptions<TunnelClientOptions> options,
    SessionState session,
    UplinkSupervisor uplinks,
    BackendForwarder forwarder,
    ClientMetrics metrics,
    ILogger<StatusServer> logger) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public string? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var url = options.Value.StatusUrl;
        if (string.IsNullOrWhiteSpace(url))
        {
            return;
        }

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.ClearProviders();
        var app = builder.Build();
        metrics.Registry.AddBeforeCollectCallback(UpdateGauges);
        app.MapGet("/status", () =>
        {
            UpdateGauges();
            var o = options.Value;
            return Results.Json(new StatusDocument(
                session.PublicUrl,
                session.SessionId is { } id ? Tunnel2.Protocol.SessionIdRedaction.Redact(id) : null,
                o.ServerList[0],
                o.ServerList,
                uplinks.ConnectedServers,
                o.Backend,
                o.Routes,
                uplinks.ConnectedCount,
                o.Uplinks,
                forwarder.Admitted,
                forwarder.QueueDepth,
                o.MaxConcurrentRequests), StatusJsonContext.Default.StatusDocument);
        });
        app.MapMetrics("/metrics", metrics.Registry);
        try
        {
            await app.StartAsync(cancellationToken);
            _app = app;
            Address = app.Urls.FirstOrDefault();
        }
        catch (IOException ex)
        {
            LogStatusUnavailable(logger, url, ex.Message);
            await app.DisposeAsync();
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }
    }

    private void UpdateGauges()
    {
        metrics.QueueDepth.Set(forwarder.QueueDepth);
        metrics.Admitted.Set(forwarder.Admitted);
        metrics.Uplinks.Set(uplinks.ConnectedCount);
    }

    [LoggerMessage(240, LogLevel.Warning, "The status endpoint could not listen on {Url}: {Reason}. The tunnel runs without it.", EventName = "StatusUnavailable")]
    private static partial void LogStatusUnavailable(ILogger logger, string url, string reason);
}

internal sealed record StatusDocument(
    string? PublicUrl,
    string? Session,
    string Server,
    IReadOnlyList<string> Servers,
    IReadOnlyList<string> ConnectedServers,
    string Backend,
    IReadOnlyDictionary<string, string> Routes,
    int UplinksConnected,
    int UplinksWanted,
    int RequestsInFlight,
    int QueueDepth,
    int MaxConcurrentRequests);

[System.Text.Json.Serialization.JsonSerializable(typeof(StatusDocument))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
internal sealed partial class StatusJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
