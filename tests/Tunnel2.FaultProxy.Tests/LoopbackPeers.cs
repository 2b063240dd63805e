using System.Net;
using System.Net.Sockets;
using Tunnel2.Testing;

namespace Tunnel2.FaultProxy.Tests;

/// <summary>A target for the proxy: a loopback listener whose accepted sockets the test drives by hand.</summary>
internal sealed class LoopbackServer : IDisposable
{
    private readonly Socket _listener = new(SocketType.Stream, ProtocolType.Tcp);

    public LoopbackServer()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(16);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
    }

    public IPEndPoint EndPoint { get; }

    public async Task<Socket> AcceptAsync()
    {
        var socket = await _listener.AcceptAsync().DefaultTimeout();
        socket.NoDelay = true;
        return socket;
    }

    public void Dispose() => _listener.Dispose();
}

internal static class SocketTestExtensions
{
    public static async Task<Socket> ConnectAsync(this FaultProxy proxy)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(proxy.EndPoint).DefaultTimeout();
        return socket;
    }

    /// <summary>A connection through the proxy: the client end and the target's end.</summary>
    public static async Task<(Socket Client, Socket Server)> ConnectPairAsync(this FaultProxy proxy, LoopbackServer server)
    {
        var expected = proxy.AcceptedCount + 1;
        var client = await proxy.ConnectAsync();
        var accepted = await server.AcceptAsync();

        // The target can accept before the proxy has registered the connection: wait for the proxy's own count.
        await proxy.WhenAcceptedAsync(expected).DefaultTimeout();
        return (client, accepted);
    }

    public static Task SendAllAsync(this Socket socket, byte[] data)
        => socket.SendAsync(data, SocketFlags.None).DefaultTimeout();

    /// <summary>Reads exactly <paramref name="count"/> bytes; fails if the stream ends first.</summary>
    public static async Task<byte[]> ReceiveExactlyAsync(this Socket socket, int count)
    {
        var buffer = new byte[count];
        var total = 0;
        while (total < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None).AsTask().DefaultTimeout();
            Assert.True(read > 0, $"The stream ended after {total} of {count} bytes.");
            total += read;
        }

        return buffer;
    }

    /// <summary>Reads until the stream ends (0) or fails; returns what arrived and the failure, if any.</summary>
    public static async Task<(int Received, SocketException? Error)> ReceiveToEndAsync(this Socket socket)
    {
        var buffer = new byte[64 * 1024];
        var total = 0;
        try
        {
            // Bounded: each read takes at least one byte or ends the loop, and every read has a deadline.
            for (var reads = 0; reads < 100_000; reads++)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None).DefaultTimeout();
                if (read == 0)
                {
                    return (total, null);
                }

                total += read;
            }

            throw new InvalidOperationException("The stream did not end.");
        }
        catch (SocketException ex)
        {
            return (total, ex);
        }
    }

    /// <summary>
    /// A bounded "nothing happens" check: <paramref name="pending"/> must still be incomplete after
    /// <paramref name="window"/>. Only for asserting absence; presence is always awaited on a signal.
    /// </summary>
    public static async Task AssertStillPendingAsync(this Task pending, TimeSpan window, string what)
    {
        var finished = await Task.WhenAny(pending, Task.Delay(window));
        Assert.True(finished != pending, $"Expected nothing within {window.TotalMilliseconds} ms, but {what} completed ({pending.Status}).");
    }
}
