using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Server.Tcp;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>Raw TCP services: a public port on the server, a local address on the client, bytes both ways.</summary>
public sealed class TcpTunnelTests(ITestOutputHelper output)
{
    [Fact]
    public async Task TcpService_EchoesBytes_AndReleasesTheConnection()
    {
        await using var echo = EchoServer.Start();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.Tcp.Enabled = true,
            ConfigureClient = o => o.TcpServices["echo"] = $"127.0.0.1:{echo.Port}",
        });
        var listener = Listener(tunnel, "echo");
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.ConnectionClosed += () => closed.TrySetResult();

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, listener.Port).DefaultTimeout();
            var stream = client.GetStream();
            var payload = RandomNumberGenerator.GetBytes(256 * 1024);
            var send = stream.WriteAsync(payload).AsTask();
            var received = new byte[payload.Length];
            await stream.ReadExactlyAsync(received).AsTask().DefaultTimeout();
            await send.DefaultTimeout();

            Assert.Equal(payload, received);
            Assert.Equal(1, listener.ActiveConnections);
        }

        await closed.Task.DefaultTimeout();
        Assert.Equal(0, listener.ActiveConnections);
        await echo.AllClosed.DefaultTimeout();
    }

    [Fact]
    public async Task TcpService_LocalServiceDown_PublicConnectionClosed()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.Tcp.Enabled = true,
            ConfigureClient = o => o.TcpServices["nothing"] = "127.0.0.1:9",
        });
        var listener = Listener(tunnel, "nothing");

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, listener.Port).DefaultTimeout();
        var read = await ReadOrResetAsync(client.GetStream());

        Assert.Equal(0, read);
    }

    [Fact]
    public async Task TcpService_PortSurvivesClientReconnect()
    {
        await using var echo = EchoServer.Start();
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            ConfigureServer = o => o.Tcp.Enabled = true,
            ConfigureClient = o => o.TcpServices["echo"] = $"127.0.0.1:{echo.Port}",
        });
        var port = Listener(tunnel, "echo").Port;

        await tunnel.StopClientAsync();
        await tunnel.WaitForUplinkCountAsync(0);
        await tunnel.StartClientAsync();

        Assert.Equal(port, Listener(tunnel, "echo").Port);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port).DefaultTimeout();
        await client.GetStream().WriteAsync("ping"u8.ToArray()).AsTask().DefaultTimeout();
        var buffer = new byte[4];
        await client.GetStream().ReadExactlyAsync(buffer).AsTask().DefaultTimeout();
        Assert.Equal("ping"u8.ToArray(), buffer);
    }

    private static TcpServiceListener Listener(TestTunnel tunnel, string service)
    {
        Assert.True(tunnel.Server.Services.GetRequiredService<TcpServiceRegistry>().TryGet(tunnel.SessionId, service, out var listener));
        return listener!;
    }

    private static async Task<int> ReadOrResetAsync(NetworkStream stream)
    {
        try
        {
            return await stream.ReadAsync(new byte[16]).AsTask().DefaultTimeout();
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>A loopback TCP echo server that knows when all its connections have closed.</summary>
    private sealed class EchoServer : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly Task _loop;
        private readonly TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _open;

        private EchoServer()
        {
            _listener = new TcpListener(IPAddress.Loopback, 0);
            _listener.Start();
            _loop = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Completes once a connection was accepted and every accepted connection has closed.</summary>
        public Task AllClosed => _allClosed.Task;

        public static EchoServer Start() => new();

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _loop;
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private async Task AcceptAsync()
        {
            while (true)
            {
                var socket = await _listener.AcceptSocketAsync();
                Interlocked.Increment(ref _open);
                _ = EchoAsync(socket);
            }
        }

        private async Task EchoAsync(Socket socket)
        {
            using (socket)
            {
                var buffer = new byte[16 * 1024];
                try
                {
                    int read;
                    while ((read = await socket.ReceiveAsync(buffer)) > 0)
                    {
                        await socket.SendAsync(buffer.AsMemory(0, read));
                    }
                }
                catch (SocketException)
                {
                }
            }

            if (Interlocked.Decrement(ref _open) == 0)
            {
                _allClosed.TrySetResult();
            }
        }
    }
}
