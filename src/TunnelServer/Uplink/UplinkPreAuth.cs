using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Tunnel2.Server.Uplink;

/// <summary>
/// The uplink's pre-authentication budget (docs/adr/0008-uplink-pre-auth-budget.md): Kestrel connection middleware that
/// closes a connection presenting itself as an uplink when it has not authenticated within
/// <c>Tunnel:UplinkPreAuth:Timeout</c> or sends more than <c>Tunnel:UplinkPreAuth:MaxBytes</c> before. On a shared port
/// a connection presents itself as an uplink by the target of its first request line; on the dedicated listener
/// (<c>Tunnel:UplinkListenUrl</c>) every connection does, from its accept. Public traffic passes through untouched.
/// </summary>
internal sealed class UplinkPreAuth
{
    /// <summary>The name of the Kestrel endpoint that the dedicated uplink listener is bound as.</summary>
    public const string DedicatedEndpointName = "Tunnel2Uplink";

    private readonly byte[] _uplinkPath;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private readonly List<ListenOptions> _dedicated = [];
    private long _closedForBytes;
    private long _closedForTimeout;

    public UplinkPreAuth(IOptions<TunnelServerOptions> options, TimeProvider time, ILogger<UplinkPreAuth> logger)
    {
        var settings = options.Value;
        _uplinkPath = UplinkPreAuthBudget.EncodePath(settings.UplinkPath);
        MaxBytes = settings.UplinkPreAuth.MaxBytes;
        Timeout = settings.UplinkPreAuth.Timeout;
        HasDedicatedListener = !string.IsNullOrEmpty(settings.UplinkListenUrl);
        Time = time;
        _logger = logger;
    }

    public TimeProvider Time { get; }

    public int MaxBytes { get; }

    public TimeSpan Timeout { get; }

    /// <summary>True when the uplink has a listener of its own; the public listeners then carry no budget.</summary>
    public bool HasDedicatedListener { get; }

    /// <summary>Connections closed for sending too many bytes before authenticating, since start.</summary>
    public long ClosedForBytes => Interlocked.Read(ref _closedForBytes);

    /// <summary>Connections closed for not authenticating in time, since start.</summary>
    public long ClosedForTimeout => Interlocked.Read(ref _closedForTimeout);

    /// <summary>The addresses of the dedicated uplink listener as Kestrel reports them (bound ports once started).</summary>
    public IReadOnlyList<string> DedicatedAddresses
    {
        get
        {
            lock (_lock)
            {
                return [.. _dedicated.Select(static listen => listen.ToString() ?? string.Empty)];
            }
        }
    }

    /// <summary>
    /// Puts the budget on <paramref name="listen"/>; called for every endpoint through Kestrel's endpoint defaults.
    /// Which kind of endpoint it is gets decided when Kestrel builds its pipeline, after <see cref="MarkDedicated"/>.
    /// </summary>
    public void Attach(ListenOptions listen) => listen.Use(next => Build(listen, next));

    /// <summary>Marks <paramref name="listen"/> as the dedicated uplink listener.</summary>
    public void MarkDedicated(ListenOptions listen)
    {
        lock (_lock)
        {
            _dedicated.Add(listen);
        }
    }

    /// <summary>True when <paramref name="listen"/> is the dedicated uplink listener; known once Kestrel builds its pipeline.</summary>
    public bool IsDedicated(ListenOptions listen)
    {
        lock (_lock)
        {
            return _dedicated.Contains(listen);
        }
    }

    public UplinkPreAuthBudget CreateBudget(bool sniff) => new(_uplinkPath, MaxBytes, sniff);

    public void OnClosed(PreAuthConnection connection, PreAuthCloseReason reason, long bytes, TimeSpan elapsed)
    {
        Interlocked.Increment(ref reason == PreAuthCloseReason.Bytes ? ref _closedForBytes : ref _closedForTimeout);
        Log.UplinkPreAuthExceeded(
            _logger,
            connection.ConnectionId,
            (connection.RemoteEndPoint as IPEndPoint)?.Address,
            reason == PreAuthCloseReason.Bytes ? $"more than {MaxBytes} bytes" : $"not authenticated within {Timeout}",
            bytes,
            elapsed);
    }

    private ConnectionDelegate Build(ListenOptions listen, ConnectionDelegate next)
    {
        var dedicated = IsDedicated(listen);

        // With a listener of its own the uplink is not served on the others: nothing to look at there.
        if (!dedicated && HasDedicatedListener)
        {
            return next;
        }

        return context => RunAsync(context, next, dedicated);
    }

    private async Task RunAsync(ConnectionContext context, ConnectionDelegate next, bool dedicated)
    {
        var connection = new PreAuthConnection(context, this, dedicated);
        try
        {
            await next(connection);
        }
        finally
        {
            connection.End();
        }
    }
}
