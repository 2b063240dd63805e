using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Server.Hosting;
using Tunnel2.Server.ScaleOut;
using Tunnel2.Server.Sessions;

namespace Tunnel2.Server.Uplink;

/// <summary>
/// Accepts TunnelClient uplinks: checks the upgrade request and the token, binds the connection to a session, and
/// runs it until it ends (docs/protocol.md §2).
/// </summary>
internal sealed class UplinkEndpoint
{
    private readonly SessionRegistry _registry;
    private readonly TokenValidator _tokens;
    private readonly TunnelServerOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Tcp.TcpServiceRegistry _tcp;
    private readonly DrainState _drain;
    private readonly SessionDirectory _directory;
    private readonly ConcurrentDictionary<TunnelConnection, Session> _live = new();
    private long _nextUplinkId;
    private long _rejected;
    private long _registered;
    private volatile bool _draining;

    public UplinkEndpoint(
        SessionRegistry registry,
        TokenValidator tokens,
        IOptions<TunnelServerOptions> options,
        ILoggerFactory loggerFactory,
        TimeProvider time,
        Tcp.TcpServiceRegistry tcp,
        DrainState drain,
        SessionDirectory directory)
    {
        _tcp = tcp;
        _drain = drain;
        _directory = directory;
        directory.SessionConflict += OnDirectoryConflict;
        registry.SessionForgotten += id => _ = tcp.RemoveSessionAsync(id);
        _registry = registry;
        _tokens = tokens;
        _options = options.Value;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<UplinkEndpoint>();
        _time = time;
    }

    /// <summary>Raised after an uplink joins or leaves a session, with the session id and its new uplink count.</summary>
    public event Action<Guid, int>? UplinkCountChanged;

    public int LiveUplinkCount => _live.Count;

    /// <summary>The live uplinks and their sessions (a moment's view).</summary>
    public IEnumerable<KeyValuePair<TunnelConnection, Session>> LiveConnections => _live;

    /// <summary>Uplinks registered since start, reconnects included.</summary>
    public long RegisteredCount => Interlocked.Read(ref _registered);

    /// <summary>Uplink handshakes refused (bad request, token or session conflict) since start.</summary>
    public long RejectedCount => Interlocked.Read(ref _rejected);

    public async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;

        // Pre-authentication budget (docs/adr/0008-uplink-pre-auth-budget.md): until the token is accepted, the
        // connection is bounded by Tunnel:UplinkPreAuth (the UplinkPreAuth connection middleware) when its first request
        // came here, else by Kestrel's limits like any public connection. A body is refused before anything else,
        // unread: Kestrel would otherwise drain it for up to 5 s after the answer (up to MaxRequestBodySize, 30 MB by
        // default); a zero limit makes that drain fail at once, so the connection closes right after the 400.
        if (HasBody(context))
        {
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
            {
                bodySize.MaxRequestBodySize = 0;
            }

            await RejectAsync(context, StatusCodes.Status400BadRequest, "The uplink upgrade request must not have a body.");
            return;
        }

        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (!HttpMethods.IsGet(request.Method) || upgrade is not { IsUpgradableRequest: true } || !HasUpgradeToken(request))
        {
            context.Response.Headers.Upgrade = UplinkHandshake.UpgradeToken;
            await RejectAsync(context, StatusCodes.Status426UpgradeRequired, "This endpoint accepts only the Tunnel2 uplink upgrade (GET with Upgrade: tunnel2).");
            return;
        }

        if (request.Headers[UplinkHandshake.VersionHeader] != UplinkHandshake.CurrentVersion)
        {
            await RejectAsync(context, StatusCodes.Status400BadRequest, $"Unsupported {UplinkHandshake.VersionHeader}; this server speaks version {UplinkHandshake.CurrentVersion}.");
            return;
        }

        if (_draining || _drain.IsDraining)
        {
            context.Response.Headers.RetryAfter = "1";
            await RejectAsync(context, StatusCodes.Status503ServiceUnavailable, "The server is shutting down.");
            return;
        }

        var principal = Authenticate(request);
        if (principal is null)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"tunnel2\", error=\"invalid_token\"";
            await RejectAsync(context, StatusCodes.Status401Unauthorized, "The uplink token was not accepted.");
            return;
        }

        // The token is accepted: the pre-authentication budget ends here, so what follows (the directory, the 101, the
        // frames) is not counted. Absent when the connection's first request was public traffic (Kestrel's limits bound
        // it, as any public connection); false when the budget closed the connection meanwhile.
        if (context.Features.Get<IUplinkAuthenticationFeature>() is { } preAuth && !preAuth.TryAuthenticate())
        {
            context.Abort();
            return;
        }

        Guid? requestedId = null;
        var sessionHeader = request.Headers[UplinkHandshake.SessionHeader];
        if (sessionHeader.Count > 0)
        {
            if (!SessionIds.TryParse(sessionHeader.ToString(), out var parsed))
            {
                await RejectAsync(context, StatusCodes.Status400BadRequest, $"{UplinkHandshake.SessionHeader} must be a GUID such as 22222222-2222-2222-2222-222222222222.");
                return;
            }

            requestedId = parsed;
        }

        _ = Guid.TryParse(request.Headers[UplinkHandshake.InstanceHeader].ToString(), out var instanceId);

        // Scale-out: an id this node knows nothing of may be owned by a token on another node (live or tombstone).
        string? directoryOwner = null;
        if (_directory.Enabled && requestedId is { } wanted && !_registry.Knows(wanted))
        {
            var (answered, owner) = await _directory.GetOwnerAsync(wanted);
            if (!answered && !principal.Sessions.Contains(wanted))
            {
                // Neither granted nor checkable: a random id now would move the client's other uplinks off its session.
                context.Response.Headers.RetryAfter = "1";
                await RejectAsync(context, StatusCodes.Status503ServiceUnavailable, "The session directory is unavailable, so the owner of the requested session id cannot be checked; retry shortly.");
                return;
            }

            directoryOwner = owner;
        }

        var status = _registry.Register(principal, requestedId, directoryOwner, out var session);
        if (status == RegistrationStatus.Conflict || session is null)
        {
            await RejectAsync(context, StatusCodes.Status409Conflict, "The requested session id is held by another client credential.");
            return;
        }

        // Record this node as a holder (atomically refused if another token claimed the id meanwhile on another node).
        if (_directory.Enabled && await _directory.ClaimAsync(session) == ClaimStatus.Conflict)
        {
            if (status == RegistrationStatus.Created)
            {
                _registry.RemoveIfUnused(session);
            }

            await RejectAsync(context, StatusCodes.Status409Conflict, "The requested session id is held by another client credential.");
            return;
        }

        var publicBase = string.IsNullOrEmpty(_options.PublicBaseUrl)
            ? $"{request.Scheme}://{request.Host}"
            : _options.PublicBaseUrl.TrimEnd('/');
        context.Response.Headers[UplinkHandshake.SessionHeader] = session.Id.ToString("D");
        context.Response.Headers[UplinkHandshake.PublicUrlHeader] = $"{publicBase}/session/{session.Id:D}/";
        var tcpServices = request.Headers[UplinkHandshake.TcpServicesHeader].ToString();
        if (tcpServices.Length > 0 && _tcp.Enabled)
        {
            context.Response.Headers[UplinkHandshake.TcpPortsHeader] = _tcp.Ensure(session, tcpServices);
        }

        var stream = await upgrade.UpgradeAsync();
        var uplinkId = Interlocked.Increment(ref _nextUplinkId);
        var connection = new TunnelConnection(TunnelTransport.FromStream(stream), new TunnelConnectionOptions
        {
            Role = TunnelRole.Server,
            Limits = _options.Limits,
            Logger = _loggerFactory.CreateLogger<TunnelConnection>(),
            TimeProvider = _time,
            Name = $"#{uplinkId} {session.RedactedId}",
        });

        await using (connection)
        {
            var run = connection.RunAsync();
            try
            {
                await connection.Ready.WaitAsync(_options.UplinkHandshakeTimeout, _time);
            }
            catch (TimeoutException)
            {
                Log.UplinkHandshakeTimeout(_logger, session.RedactedId, _options.UplinkHandshakeTimeout);
                connection.Abort(TunnelErrorCode.SettingsTimeout, "No SETTINGS received in time.");
            }
            catch (TunnelStreamException)
            {
                // Closed before SETTINGS: RunAsync has recorded why.
            }

            if (connection.Ready.IsCompletedSuccessfully)
            {
                _drain.Enter();
                _live[connection] = session;
                Interlocked.Increment(ref _registered);
                var superseded = session.AddUplink(connection, instanceId);
                if (!superseded.IsEmpty)
                {
                    Log.UplinksSuperseded(_logger, session.RedactedId, superseded.Length);
                    foreach (var old in superseded)
                    {
                        old.GoAway(TunnelErrorCode.Superseded, "Superseded by a newer instance of the client.");
                    }
                }

                Log.UplinkRegistered(_logger, session.RedactedId, principal.Name, instanceId, session.UplinkCount);
                _directory.OnUplinkCountChanged(session);
                UplinkCountChanged?.Invoke(session.Id, session.UplinkCount);
                if (_draining || _drain.IsDraining)
                {
                    // Raced with DrainAll: this one drains too.
                    connection.GoAway("The server is shutting down.");
                }
            }

            await run;
            if (_live.TryRemove(connection, out _))
            {
                session.RemoveUplink(connection, _time.GetUtcNow());
                Log.UplinkEnded(_logger, session.RedactedId, connection.CloseErrorCode, session.UplinkCount);
                _directory.OnUplinkCountChanged(session);
                UplinkCountChanged?.Invoke(session.Id, session.UplinkCount);
                _drain.Exit();
            }
            else
            {
                // Never became an uplink: do not leave a claim without uplinks behind in the directory.
                _directory.OnUplinkCountChanged(session);
            }
        }
    }

    /// <summary>Drains every live uplink: GOAWAY, no new streams, close once in-flight streams finish.</summary>
    public void DrainAll(string reason)
    {
        _draining = true;
        Log.DrainingUplinks(_logger, _live.Count);
        foreach (var connection in _live.Keys)
        {
            connection.GoAway(reason);
        }
    }

    private void OnDirectoryConflict(Session session)
    {
        foreach (var (connection, held) in _live)
        {
            if (held == session)
            {
                connection.GoAway("The session id is owned by another client credential.");
            }
        }
    }

    /// <summary>
    /// True when the request carries a body: any Content-Length above zero or any Transfer-Encoding on HTTP/1.x, a
    /// stream not ended with its HEADERS on HTTP/2 and HTTP/3.
    /// </summary>
    private static bool HasBody(HttpContext context)
    {
        var request = context.Request;
        if (request.ContentLength is > 0 || request.Headers.ContainsKey(HeaderNames.TransferEncoding))
        {
            return true;
        }

        return !HttpProtocol.IsHttp11(request.Protocol)
            && !HttpProtocol.IsHttp10(request.Protocol)
            && context.Features.Get<IHttpRequestBodyDetectionFeature>() is { CanHaveBody: true };
    }

    private static bool HasUpgradeToken(HttpRequest request)
    {
        foreach (var value in request.Headers.Upgrade)
        {
            foreach (var token in (value ?? string.Empty).Split(','))
            {
                if (token.Trim().Equals(UplinkHandshake.UpgradeToken, StringComparison.OrdinalIgnoreCase))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private TunnelPrincipal? Authenticate(HttpRequest request)
    {
        var authorization = request.Headers.Authorization.ToString();
        const string Scheme = "Bearer ";
        if (!authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        return _tokens.Validate(authorization.AsSpan(Scheme.Length).Trim());
    }

    private async Task RejectAsync(HttpContext context, int statusCode, string message)
    {
        Interlocked.Increment(ref _rejected);
        Log.UplinkRejected(_logger, context.Connection.RemoteIpAddress, message);
        context.Response.StatusCode = statusCode;
        context.Response.ContentType = "text/plain; charset=utf-8";
        context.Response.Headers[HeaderNames.Connection] = "close";
        await context.Response.WriteAsync(message + "\n");
    }
}
