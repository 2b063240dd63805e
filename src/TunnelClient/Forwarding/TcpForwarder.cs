using System.Buffers;
using System.Collections.Frozen;
using System.Net.Sockets;
using Microsoft.Extensions.Options;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Forwarding;

/// <summary>
/// Carries a raw TCP connection from a service port of the server: a CONNECT stream names the service, this side
/// connects to its local address (O(1) lookup, TCP_NODELAY and keep-alive on), answers 200, then relays bytes both
/// ways until either end closes.
/// </summary>
internal sealed partial class TcpForwarder
{
    private readonly FrozenDictionary<string, (string Host, int Port)> _services;
    private readonly TunnelClientOptions _options;
    private readonly ILogger _logger;

    public TcpForwarder(IOptions<TunnelClientOptions> options, ILogger<TcpForwarder> logger)
    {
        _options = options.Value;
        _logger = logger;
        _services = _options.TcpServices
            .Select(s => (s.Key, Parsed: TunnelClientOptionsValidator.TryParseEndpoint(s.Value, out var host, out var port) ? (host, port) : (string.Empty, 0)))
            .Where(s => s.Parsed.Item2 != 0)
            .ToFrozenDictionary(s => s.Key, s => s.Parsed, StringComparer.Ordinal);
    }

    /// <param name="connected">Called once the service accepted the connection: from then on it is an opaque stream that holds no request slot.</param>
    public async Task ForwardAsync(TunnelStream stream, string service, Action? connected = null)
    {
        if (!_services.TryGetValue(service, out var endpoint))
        {
            LogUnknownService(_logger, service);
            stream.Reset(TunnelErrorCode.BackendUnavailable, $"No TCP service '{service}'.");
            return;
        }

        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted))
            {
                connect.CancelAfter(_options.BackendConnectTimeout);
                await socket.ConnectAsync(endpoint.Host, endpoint.Port, connect.Token);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            socket.Dispose();
            LogConnectFailed(_logger, service, ex.Message);
            stream.Reset(TunnelErrorCode.BackendUnavailable, $"TCP service '{service}' refused: {ex.Message}");
            return;
        }

        var buffer = ArrayPool<byte>.Shared.Rent(16);
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);
        stream.TrySendHeaders(buffer, writer.Length, endStream: false);
        connected?.Invoke();

        await using var network = new NetworkStream(socket, ownsSocket: true);
        if (!await OpaqueRelay.RunAsync(stream, network))
        {
            socket.LingerState = new LingerOption(true, 0);
        }
    }

    [LoggerMessage(230, LogLevel.Warning, "The server asked for TCP service {Service}, which this client does not serve.", EventName = "TcpUnknownService")]
    private static partial void LogUnknownService(ILogger logger, string service);

    [LoggerMessage(231, LogLevel.Information, "TCP service {Service} could not be reached: {Reason}", EventName = "TcpConnectFailed")]
    private static partial void LogConnectFailed(ILogger logger, string service, string reason);
}
