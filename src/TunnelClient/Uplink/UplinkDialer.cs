using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Tunnel2.Protocol;

namespace Tunnel2.Client.Uplink;

internal enum DialOutcome
{
    Connected,

    /// <summary>A failure worth retrying (network, 5xx, 429).</summary>
    Failed,

    /// <summary>The server refused this client for good (401/403/409): retrying cannot help.</summary>
    Rejected,
}

internal sealed record DialResult(DialOutcome Outcome, Stream? Stream, Guid SessionId, string? PublicUrl, int StatusCode, string Message)
{
    /// <summary>"name=port" pairs of the TCP services the server opened, or null.</summary>
    public string? TcpPorts { get; init; }
}

/// <summary>Opens one uplink: TCP (and TLS) to the server, then the HTTP/1.1 upgrade of docs/protocol.md §2.</summary>
internal sealed class UplinkDialer : IDisposable
{
    private const int MaxErrorBodyLength = 4096;

    private readonly TunnelClientOptions _options;
    private readonly TokenSource _token;
    private readonly HttpMessageInvoker _invoker;
    private readonly Uri[] _connectUris;

    public UplinkDialer(IOptions<TunnelClientOptions> options, TokenSource token)
    {
        _options = options.Value;
        _token = token;
        _connectUris = [.. _options.ServerList.Select(server => new Uri(new Uri(server.TrimEnd('/') + "/"), UplinkHandshake.DefaultPath.TrimStart('/')))];
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = _options.ServerConnectTimeout,
            PooledConnectionLifetime = TimeSpan.Zero,
            ConnectCallback = ConnectAsync,
        };

        if (_options.DangerousAcceptAnyServerCertificate)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (!string.IsNullOrWhiteSpace(_options.ServerCertificateSha256))
        {
            var pinned = Convert.FromHexString(_options.ServerCertificateSha256.Replace(":", string.Empty, StringComparison.Ordinal));
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                certificate is not null && CryptographicOperations.FixedTimeEquals(SHA256.HashData(certificate.GetRawCertData()), pinned);
        }

        _invoker = new HttpMessageInvoker(handler);
    }

    /// <summary>How many servers the uplinks may dial (<see cref="TunnelClientOptions.ServerList"/>).</summary>
    public int ServerCount => _connectUris.Length;

    /// <summary>The base URL of server <paramref name="server"/>, for logs and status.</summary>
    public string ServerName(int server) => _options.ServerList[server];

    public Task<DialResult> DialAsync(Guid? sessionId, Guid instanceId, CancellationToken cancellationToken)
        => DialAsync(server: 0, sessionId, instanceId, cancellationToken);

    /// <summary>Dials server <paramref name="server"/> of <see cref="TunnelClientOptions.ServerList"/>.</summary>
    public async Task<DialResult> DialAsync(int server, Guid? sessionId, Guid instanceId, CancellationToken cancellationToken)
    {
        var connectUri = _connectUris[server];
        using var request = new HttpRequestMessage(HttpMethod.Get, connectUri)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new ProductHeaderValue(UplinkHandshake.UpgradeToken));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token.GetToken());
        request.Headers.TryAddWithoutValidation(UplinkHandshake.VersionHeader, UplinkHandshake.CurrentVersion);
        request.Headers.TryAddWithoutValidation(UplinkHandshake.InstanceHeader, instanceId.ToString("D"));
        if (sessionId is { } id)
        {
            request.Headers.TryAddWithoutValidation(UplinkHandshake.SessionHeader, id.ToString("D"));
        }

        if (_options.TcpServices.Count > 0)
        {
            request.Headers.TryAddWithoutValidation(UplinkHandshake.TcpServicesHeader, string.Join(',', _options.TcpServices.Keys));
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ServerConnectTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(request, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new DialResult(DialOutcome.Failed, null, default, null, 0, $"no answer from {connectUri} within {_options.ServerConnectTimeout.TotalSeconds:0.#} s");
        }
        catch (HttpRequestException ex)
        {
            var detail = ex.HttpRequestError == HttpRequestError.SecureConnectionError
                ? " (TLS failed: is the server certificate trusted, or does Tunnel:ServerCertificateSha256 match it?)"
                : string.Empty;
            return new DialResult(DialOutcome.Failed, null, default, null, 0, $"{connectUri}: {ex.Message}{detail}");
        }

        if (response.StatusCode == HttpStatusCode.SwitchingProtocols)
        {
            var headers = response.Headers;
            var assigned = headers.TryGetValues(UplinkHandshake.SessionHeader, out var values) && Guid.TryParse(values.FirstOrDefault(), out var parsed)
                ? parsed
                : Guid.Empty;
            var publicUrl = headers.TryGetValues(UplinkHandshake.PublicUrlHeader, out var urls) ? urls.FirstOrDefault() : null;
            if (assigned == Guid.Empty)
            {
                response.Dispose();
                return new DialResult(DialOutcome.Failed, null, default, null, 101, "the server did not say which session it assigned");
            }

            var tcpPorts = headers.TryGetValues(UplinkHandshake.TcpPortsHeader, out var ports) ? ports.FirstOrDefault() : null;
            var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            return new DialResult(DialOutcome.Connected, stream, assigned, publicUrl, 101, "connected") { TcpPorts = tcpPorts };
        }

        using (response)
        {
            var message = await ReadMessageAsync(response, timeout.Token);
            var status = (int)response.StatusCode;
            var outcome = status is 401 or 403 or 409 or 426 ? DialOutcome.Rejected : DialOutcome.Failed;
            var hint = status switch
            {
                401 => " Check the token (TUNNEL2_TOKEN, Tunnel:Token or --token-file).",
                403 => " The token may not claim this session.",
                409 => " Another client credential holds this session id.",
                426 => " Is --server pointing at a TunnelServer?",
                _ => string.Empty,
            };
            return new DialResult(outcome, null, default, null, status, $"{message}{hint}");
        }
    }

    public void Dispose() => _invoker.Dispose();

    private static async Task<string> ReadMessageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[MaxErrorBodyLength];
            var total = 0;
            int read;
            while (total < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(total), cancellationToken)) > 0)
            {
                total += read;
            }

            var text = System.Text.Encoding.UTF8.GetString(buffer, 0, total).Trim();
            return $"{(int)response.StatusCode} {response.ReasonPhrase}: {text}";
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or OperationCanceledException)
        {
            return $"{(int)response.StatusCode} {response.ReasonPhrase}";
        }
    }

    /// <summary>TCP_NODELAY (no Nagle/delayed-ACK stalls, performance.md §2.4) and TCP keep-alive on the uplink socket.</summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, 30);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, 10);
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
