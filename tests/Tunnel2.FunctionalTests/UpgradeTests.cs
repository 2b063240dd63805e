using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>WebSocket and other HTTP/1.1 upgrades through the tunnel: after the 101, opaque bytes both ways.</summary>
public sealed class UpgradeTests(ITestOutputHelper output)
{
    [Fact]
    public async Task WebSocket_EchoesMessages_AndCloseHandshakePropagates()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(WsUrl(tunnel, "/loadtest/ws"), CancellationToken.None).DefaultTimeout();

        foreach (var message in new[] { "hello", new string('x', 100_000), "" })
        {
            await socket.SendAsync(Encoding.UTF8.GetBytes(message), WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).DefaultTimeout();
            Assert.Equal(message, await ReceiveTextAsync(socket));
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None).DefaultTimeout();

        Assert.Equal(WebSocketState.Closed, socket.State);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
        Assert.Equal("bye", socket.CloseStatusDescription);

        // The tunnel is fine afterwards, and the stream is gone from the uplink.
        using var response = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task WebSocket_BackendClosesFirst_PublicClientSeesTheClose()
    {
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app =>
            {
                app.UseWebSockets();
                app.Map("/closer", async (HttpContext context) =>
                {
                    using var server = await context.WebSockets.AcceptWebSocketAsync();
                    await server.CloseAsync(WebSocketCloseStatus.PolicyViolation, "go away", context.RequestAborted);
                });
            },
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(WsUrl(tunnel, "/closer"), CancellationToken.None).DefaultTimeout();

        var result = await socket.ReceiveAsync(new byte[16], CancellationToken.None).DefaultTimeout();

        Assert.Equal(WebSocketMessageType.Close, result.MessageType);
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, result.CloseStatus);
        Assert.Equal("go away", result.CloseStatusDescription);
    }

    [Fact]
    public async Task WebSocket_BackendDiesAbruptly_PublicClientSeesAnAbortNotAClose()
    {
        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var tunnel = await TestTunnel.StartAsync(output, new TestTunnelOptions
        {
            MapBackend = app =>
            {
                app.UseWebSockets();
                app.Map("/dies", async (HttpContext context) =>
                {
                    using var server = await context.WebSockets.AcceptWebSocketAsync();
                    accepted.SetResult();
                    var buffer = new byte[16];
                    await server.ReceiveAsync(buffer, context.RequestAborted);
                    context.Abort();
                });
            },
        });
        using var socket = new ClientWebSocket();
        await socket.ConnectAsync(WsUrl(tunnel, "/dies"), CancellationToken.None).DefaultTimeout();
        await accepted.Task.DefaultTimeout();

        await socket.SendAsync("x"u8.ToArray(), WebSocketMessageType.Binary, endOfMessage: true, CancellationToken.None).DefaultTimeout();

        await Assert.ThrowsAsync<WebSocketException>(() => socket.ReceiveAsync(new byte[16], CancellationToken.None).DefaultTimeout());
        Assert.Equal(WebSocketState.Aborted, socket.State);
    }

    [Fact]
    public async Task UpgradeRefusedByBackend_ResponsePassesThrough()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/loadtest/get"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("websocket"));

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Hello from TestBackend", await response.Content.ReadAsStringAsync().DefaultTimeout(), StringComparison.Ordinal);

        using var next = await tunnel.Http.GetAsync(tunnel.Url("/loadtest/get")).DefaultTimeout();
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
    }

    [Fact]
    public async Task H2cUpgrade_IsNotForwarded()
    {
        await using var tunnel = await TestTunnel.StartAsync(output);
        using var request = new HttpRequestMessage(HttpMethod.Get, tunnel.Url("/loadtest/info"));
        request.Headers.Connection.Add("Upgrade");
        request.Headers.Connection.Add("HTTP2-Settings");
        request.Headers.Upgrade.Add(new System.Net.Http.Headers.ProductHeaderValue("h2c"));
        request.Headers.TryAddWithoutValidation("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA");

        using var response = await tunnel.Http.SendAsync(request).DefaultTimeout();
        var body = await response.Content.ReadAsStringAsync().DefaultTimeout();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("h2c", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("HTTP2-Settings", body, StringComparison.OrdinalIgnoreCase);
    }

    private static Uri WsUrl(TestTunnel tunnel, string path)
        => new UriBuilder(tunnel.Url(path)) { Scheme = "ws" }.Uri;

    private static async Task<string> ReceiveTextAsync(ClientWebSocket socket)
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (true)
        {
            var result = await socket.ReceiveAsync(buffer, CancellationToken.None).DefaultTimeout();
            Assert.Equal(WebSocketMessageType.Text, result.MessageType);
            message.Write(buffer, 0, result.Count);
            if (result.EndOfMessage)
            {
                return Encoding.UTF8.GetString(message.ToArray());
            }
        }
    }
}
