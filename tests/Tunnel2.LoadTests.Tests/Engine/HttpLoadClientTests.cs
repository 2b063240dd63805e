using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Time.Testing;
using Tunnel2.LoadTests.Engine;
using Tunnel2.LoadTests.Tests.Infrastructure;

namespace Tunnel2.LoadTests.Tests.Engine;

public class HttpLoadClientTests
{
    private static readonly RequestTemplate Get = new(HttpMethod.Get, new Uri("http://127.0.0.1:1/loadtest/get"));

    [Theory]
    [InlineData(200, true)]
    [InlineData(204, true)]
    [InlineData(302, true)]
    [InlineData(404, false)]
    [InlineData(503, false)]
    public async Task SendAsync_StatusOutside2xx3xx_IsAStatusFailure(int status, bool success)
    {
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), new FakeTimeProvider(), StubHandler.Status(status));

        var outcome = await client.SendAsync(Get, CancellationToken.None).DefaultTimeout();

        Assert.Equal(success, outcome.IsSuccess);
        Assert.Equal(success ? null : FailureReason.ForStatus(status), outcome.Failure);
    }

    [Fact]
    public async Task SendAsync_ReadsTheWholeBody()
    {
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), new FakeTimeProvider(), StubHandler.Status(200, new string('x', 100_000)));

        var outcome = await client.SendAsync(Get, CancellationToken.None).DefaultTimeout();

        Assert.Equal(100_000, outcome.BytesReceived);
    }

    [Fact]
    public async Task SendAsync_SendsTheTemplatesBody()
    {
        long received = 0;
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), new FakeTimeProvider(), new StubHandler(async (request, ct) =>
        {
            received = (await request.Content!.ReadAsByteArrayAsync(ct)).Length;
            return new HttpResponseMessage(HttpStatusCode.OK);
        }));

        await client.SendAsync(new RequestTemplate(HttpMethod.Post, Get.Uri, 65_536), CancellationToken.None).DefaultTimeout();

        Assert.Equal(65_536, received);
    }

    [Fact]
    public async Task SendAsync_NoResponseWithinTheTimeout_IsATimeout()
    {
        var time = new FakeTimeProvider();
        using var client = new HttpLoadClient(new HttpLoadClientOptions { RequestTimeout = TimeSpan.FromSeconds(1) }, time, new StubHandler(async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return new HttpResponseMessage(HttpStatusCode.OK);
        }));

        var pending = client.SendAsync(Get, CancellationToken.None);
        Assert.False(pending.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(1));
        var outcome = await pending.DefaultTimeout();

        Assert.Equal(new FailureReason(FailureKind.Timeout), outcome.Failure);
    }

    [Fact]
    public async Task SendAsync_RunCancelled_IsAbortedNotTimeout()
    {
        using var run = new CancellationTokenSource();
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), new FakeTimeProvider(), new StubHandler(async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return new HttpResponseMessage(HttpStatusCode.OK);
        }));

        var pending = client.SendAsync(Get, run.Token);
        await run.CancelAsync();
        var outcome = await pending.DefaultTimeout();

        Assert.Equal(new FailureReason(FailureKind.Aborted), outcome.Failure);
    }

    [Fact]
    public async Task SendAsync_NothingListening_IsAConnectionError()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        using var client = new HttpLoadClient(new HttpLoadClientOptions(), TimeProvider.System);

        var outcome = await client.SendAsync(new RequestTemplate(HttpMethod.Get, new Uri($"http://127.0.0.1:{port}/")), CancellationToken.None).DefaultTimeout();

        Assert.Equal(FailureReason.ForConnection(HttpRequestError.ConnectionError), outcome.Failure);
        Assert.Equal("connection (ConnectionError)", outcome.Failure.ToString());
    }

    [Fact]
    public async Task SendAsync_UnexpectedException_IsAGeneratorErrorAndKeepsTheFirstMessage()
    {
        using var client = new HttpLoadClient(new HttpLoadClientOptions(), new FakeTimeProvider(),
            new StubHandler((_, _) => throw new InvalidOperationException("boom")));

        var outcome = await client.SendAsync(Get, CancellationToken.None).DefaultTimeout();

        Assert.Equal(FailureKind.Error, outcome.Failure?.Kind);
        Assert.Contains("boom", client.FirstError, StringComparison.Ordinal);
    }
}
