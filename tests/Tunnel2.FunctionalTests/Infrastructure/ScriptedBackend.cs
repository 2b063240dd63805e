using System.Net;
using System.Net.Sockets;
using System.Text;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Infrastructure;

/// <summary>
/// A backend on a raw socket that serves each accepted connection with a script: for responses and connection
/// behaviour Kestrel never shows (interim responses, trailers, close-delimited bodies, closing idle keep-alive
/// connections at chosen moments).
/// </summary>
internal sealed class ScriptedBackend : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Func<ScriptedConnection, Task> _serve;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _accepted;

    public ScriptedBackend(Func<ScriptedConnection, Task> serve)
    {
        _serve = serve;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        Url = $"http://{_listener.LocalEndPoint}";
        _accepting = AcceptAsync();
    }

    public string Url { get; }

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _accepting;
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll(connections).WaitAsync(TimeoutExtensions.DefaultTimeoutValue);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        // Bounded: a test opens a handful of connections.
        for (var index = 0; index < 64; index++)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            var connection = new ScriptedConnection(socket, index, _stop.Token);
            lock (_connections)
            {
                _connections.Add(RunAsync(connection));
            }
        }
    }

    private async Task RunAsync(ScriptedConnection connection)
    {
        try
        {
            await _serve(connection);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            connection.Close();
        }
    }
}

/// <summary>One accepted connection of a <see cref="ScriptedBackend"/>.</summary>
internal sealed class ScriptedConnection(Socket socket, int index, CancellationToken stopping)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    /// <summary>0 for the first connection accepted.</summary>
    public int Index => index;

    /// <summary>Requests read on this connection.</summary>
    public int Requests { get; private set; }

    /// <summary>Reads one request (head and Content-Length body); null when the peer closed the connection first.</summary>
    public async Task<ScriptedRequest?> ReadRequestAsync()
    {
        int headEnd;
        while ((headEnd = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n\r\n"u8)) < 0)
        {
            if (!await FillAsync())
            {
                return null;
            }
        }

        var head = Encoding.Latin1.GetString(_buffer, _start, headEnd + 4);
        _start += headEnd + 4;
        var length = 0;
        foreach (var line in head.Split("\r\n"))
        {
            if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            {
                length = int.Parse(line.AsSpan(15).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        while (_end - _start < length)
        {
            if (!await FillAsync())
            {
                return null;
            }
        }

        var body = _buffer.AsSpan(_start, length).ToArray();
        _start += length;
        Requests++;
        return new ScriptedRequest(head, body);
    }

    public async Task SendAsync(string text)
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        await socket.SendAsync(bytes, SocketFlags.None, stopping);
    }

    /// <summary>Closes the connection gracefully (FIN).</summary>
    public void Close()
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    private async Task<bool> FillAsync()
    {
        if (_start > 0)
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
            _end -= _start;
            _start = 0;
        }

        var read = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, stopping);
        _end += read;
        return read > 0;
    }
}

/// <summary>A request as a <see cref="ScriptedBackend"/> read it.</summary>
internal sealed record ScriptedRequest(string Head, byte[] Body)
{
    public string RequestLine => Head[..Head.IndexOf('\r', StringComparison.Ordinal)];
}
