using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Server.Sessions;

namespace Tunnel2.Server.Tcp;

/// <summary>
/// One public TCP port of one session's service: each accepted connection becomes a stream (CONNECT /name) on the
/// session's uplinks, and the client connects it to its local service; bytes then flow both ways (OpaqueRelay).
/// </summary>
internal sealed class TcpServiceListener : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Session _session;
    private readonly TunnelServerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private int _active;

    private TcpServiceListener(Socket socket, string name, Session session, TunnelServerOptions options, TimeProvider time, ILogger logger)
    {
        _socket = socket;
        Name = name;
        Port = ((IPEndPoint)socket.LocalEndPoint!).Port;
        _session = session;
        _options = options;
        _time = time;
        _logger = logger;
        _acceptLoop = AcceptLoopAsync();
    }

    public string Name { get; }

    public int Port { get; }

    public int ActiveConnections => Volatile.Read(ref _active);

    /// <summary>Raised when a public connection has been closed and its resources released.</summary>
    public event Action? ConnectionClosed;

    /// <summary>Binds the first free port of the configured range.</summary>
    /// <returns>The listener, or null when every port of the range is taken.</returns>
    public static TcpServiceListener? Start(string name, Session session, TunnelServerOptions options, TimeProvider time, ILogger logger, ref int cursor)
    {
        var tcp = options.Tcp;
        var address = IPAddress.Parse(tcp.BindAddress);
        var ephemeral = tcp.PortRangeStart == 0;
        var size = ephemeral ? 1 : tcp.PortRangeEnd - tcp.PortRangeStart + 1;
        for (var attempt = 0; attempt < size; attempt++)
        {
            var port = ephemeral ? 0 : tcp.PortRangeStart + ((cursor + attempt) % size);
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(address, port));
                socket.Listen(512);
                cursor = (cursor + attempt + 1) % size;
                return new TcpServiceListener(socket, name, session, options, time, logger);
            }
            catch (SocketException)
            {
                socket.Dispose();
            }
        }

        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _socket.Dispose();
        await _acceptLoop;
        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _socket.AcceptAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested)
                {
                    return;
                }

                continue;
            }

            if (Interlocked.Increment(ref _active) > _options.Tcp.MaxConnectionsPerService)
            {
                Interlocked.Decrement(ref _active);
                connection.Dispose();
                continue;
            }

            _ = HandleAsync(connection);
        }
    }

    private async Task HandleAsync(Socket connection)
    {
        try
        {
            connection.NoDelay = true;
            connection.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            var stream = await _session.WaitToOpenStreamAsync(_options.UplinkWaitTimeout, _time, _stopping.Token);
            if (stream is null)
            {
                TcpLog.NoUplink(_logger, _session.RedactedId, Name);
                return;
            }

            if (!SendConnectHead(stream, connection.RemoteEndPoint as IPEndPoint))
            {
                stream.Reset(TunnelErrorCode.Cancel);
                return;
            }

            if (!await IsAcceptedAsync(stream))
            {
                TcpLog.ServiceRefused(_logger, _session.RedactedId, Name, stream.AbortReason?.Message ?? "refused");
                return;
            }

            await using var network = new NetworkStream(connection, ownsSocket: false);
            if (!await OpaqueRelay.RunAsync(stream, network, _options.Tcp.IdleTimeout))
            {
                // A cut on one side is a reset on the other, not a clean close.
                connection.LingerState = new LingerOption(true, 0);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException or TunnelStreamException)
        {
            connection.LingerState = new LingerOption(true, 0);
        }
        finally
        {
            connection.Dispose();
            Interlocked.Decrement(ref _active);
            ConnectionClosed?.Invoke();
        }
    }

    private bool SendConnectHead(TunnelStream stream, IPEndPoint? remote)
    {
        var size = Math.Min(HeaderBlockWriter.TypicalBlockSize, stream.MaxHeaderBlockSize);
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        var writer = new HeaderBlockWriter(buffer.AsSpan(0, size));
        writer.WriteRequestHead(UplinkHandshake.TcpConnectMethod, "/" + Name);
        if (remote is not null)
        {
            writer.WriteField("X-Forwarded-For", (remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address).ToString());
        }

        if (writer.Overflowed)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }

        return stream.TrySendHeaders(buffer, writer.Length, endStream: false);
    }

    private async Task<bool> IsAcceptedAsync(TunnelStream stream)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(_options.ResponseHeadersTimeout);
        ReceivedHeaderBlock head;
        try
        {
            head = await stream.ReadHeadersAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or TunnelStreamException)
        {
            stream.Reset(TunnelErrorCode.Cancel);
            return false;
        }

        using (head)
        {
            var status = new StatusReader();
            var error = HeaderBlockReader.Read(head.Span, ref status, _options.Limits.MaxHeaderListSize);
            if (error is not null || status.StatusCode != 200 || head.EndStream)
            {
                stream.Reset(TunnelErrorCode.Cancel);
                return false;
            }
        }

        return true;
    }

    private struct StatusReader : IHeaderBlockHandler
    {
        public int StatusCode { get; private set; }

        public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        {
        }

        public void OnResponseHead(int statusCode) => StatusCode = statusCode;

        public void OnTrailersHead()
        {
        }

        public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }
    }
}

internal static partial class TcpLog
{
    [LoggerMessage(130, LogLevel.Information, "Session {Session} serves TCP service {Service} on port {Port}.", EventName = "TcpServiceListening")]
    public static partial void Listening(ILogger logger, string session, string service, int port);

    [LoggerMessage(131, LogLevel.Warning, "Session {Session} asked for TCP service {Service}, but no port of the range is free.", EventName = "TcpPortsExhausted")]
    public static partial void PortsExhausted(ILogger logger, string session, string service);

    [LoggerMessage(132, LogLevel.Information, "TCP connection to {Service} of session {Session} closed: no uplink.", EventName = "TcpNoUplink")]
    public static partial void NoUplink(ILogger logger, string session, string service);

    [LoggerMessage(133, LogLevel.Information, "TCP connection to {Service} of session {Session} refused by the client: {Reason}", EventName = "TcpServiceRefused")]
    public static partial void ServiceRefused(ILogger logger, string session, string service, string reason);
}
