using System.Security.Cryptography;
using System.Text;
using Tunnel2.Protocol;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Tunnel2.Tests.Protocol.HeaderBlocks;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>Streams between a real server-side and a real client-side connection (docs/protocol.md §5).</summary>
public class TunnelConnectionStreamTests
{
    private readonly ITestOutputHelper _output;

    public TunnelConnectionStreamTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task Stream_ClientEndsLast_HeadersAndDataBothWaysThenRemovedOnBothSides()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        Assert.True(pair.Server.TryOpenStream(out var serverStream));
        Assert.True(serverStream.SendHead(HeaderBlockTestData.Request("POST", "/echo?x=1", ("Content-Type", "text/plain"), ("X-Trace", "abc"))));
        await serverStream.SendBytesAsync("hello"u8.ToArray(), endStream: true);

        var clientStream = await pair.ClientStreams.AcceptAsync();
        var request = await clientStream.ReadHeadAsync();
        Assert.Equal("POST", request.Method);
        Assert.Equal("/echo?x=1", request.Target);
        Assert.Equal(["Content-Type", "X-Trace"], request.Fields.Select(f => f.Name));
        Assert.Equal("hello", Encoding.ASCII.GetString(await clientStream.Input.ReadToEndAsync()));

        Assert.True(clientStream.SendHead(TunnelStreamTestExtensions.ResponseHead(201, ("Content-Length", "5"))));
        await clientStream.SendBytesAsync("world"u8.ToArray(), endStream: true);

        // The client ended last, on this thread: its stream is gone at once.
        Assert.Equal(0, pair.Client.ActiveStreamCount);

        var response = await serverStream.ReadHeadAsync();
        Assert.Equal(201, response.Status);
        Assert.Equal("world", Encoding.ASCII.GetString(await serverStream.Input.ReadToEndAsync()));
        Assert.Equal(0, await pair.ServerStreamsAfterBarrierAsync());
        Assert.Null(serverStream.AbortReason);
        Assert.Null(clientStream.AbortReason);
    }

    [Fact]
    public async Task Stream_ServerEndsLast_RemovedOnBothSides()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();

        // The response may finish before the request body: streams are full duplex.
        Assert.True(clientStream.SendHead(TunnelStreamTestExtensions.ResponseHead(200), endStream: true));
        Assert.Equal(200, (await serverStream.ReadHeadAsync()).Status);
        Assert.Empty(await serverStream.Input.ReadToEndAsync());
        Assert.Equal(2, pair.Server.ActiveStreamCount + pair.Client.ActiveStreamCount);

        serverStream.Complete();

        Assert.Equal(0, pair.Server.ActiveStreamCount);
        Assert.Empty(await clientStream.Input.ReadToEndAsync());
        Assert.Equal(0, await pair.ClientStreamsAfterBarrierAsync());
    }

    [Fact]
    public async Task TryOpenStream_EachSide_UsesItsOwnIdParity()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);

        var (s1, _) = await pair.OpenFromServerAsync();
        var (s2, _) = await pair.OpenFromServerAsync();
        Assert.True(pair.Client.TryOpenStream(out var c1));
        Assert.True(c1.SendHead(TunnelStreamTestExtensions.RequestHead()));
        Assert.True(pair.Client.TryOpenStream(out var c2));
        Assert.True(c2.SendHead(TunnelStreamTestExtensions.RequestHead()));

        Assert.Equal([2, 4], [s1.StreamId, s2.StreamId]);
        Assert.Equal([1, 3], [c1.StreamId, c2.StreamId]);
        Assert.Equal(1, (await pair.ServerStreams.AcceptAsync()).StreamId);
        Assert.Equal(3, (await pair.ServerStreams.AcceptAsync()).StreamId);
        Assert.True(s1.IsLocal);
        Assert.Equal(4, pair.Server.StreamsOpened);
    }

    [Fact]
    public async Task Reset_ByClient_ServerSeesCodeAndResetByPeer()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = serverStream.Aborted.Register(() => aborted.TrySetResult());

        clientStream.Reset(TunnelErrorCode.BackendTimeout, "backend too slow");

        Assert.Equal(0, pair.Client.ActiveStreamCount);
        var local = Assert.IsType<TunnelStreamException>(clientStream.AbortReason);
        Assert.Equal(TunnelErrorCode.BackendTimeout, local.ErrorCode);
        Assert.False(local.ResetByPeer);

        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => serverStream.ReadHeadersAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.BackendTimeout, ex.ErrorCode);
        Assert.True(ex.ResetByPeer);
        var inputEx = await Assert.ThrowsAsync<TunnelStreamException>(() => serverStream.Input.ReadAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.BackendTimeout, inputEx.ErrorCode);
        Assert.True(inputEx.ResetByPeer);
        await aborted.Task.DefaultTimeout();
        Assert.False(serverStream.SendHead(TunnelStreamTestExtensions.RequestHead()));
        Assert.Equal(0, await pair.ServerStreamsAfterBarrierAsync());
    }

    [Fact]
    public async Task Reset_ByServer_ClientInputThrowsWithCode()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();
        await serverStream.SendBytesAsync(new byte[100], endStream: false);
        var read = await clientStream.Input.ReadAtLeastBufferedAsync(100);
        clientStream.Input.AdvanceTo(read.Buffer.End);

        serverStream.Reset(TunnelErrorCode.RequestBodyInvalid);

        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => clientStream.Input.ReadToEndAsync().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.RequestBodyInvalid, ex.ErrorCode);
        Assert.True(ex.ResetByPeer);
        await Assert.ThrowsAsync<TunnelStreamException>(() => clientStream.WriteAsync(new byte[1], endStream: true, CancellationToken.None).AsTask().DefaultTimeout());
        Assert.Equal(0, pair.Server.ActiveStreamCount);
        Assert.Equal(0, await pair.ClientStreamsAfterBarrierAsync());
    }

    [Fact]
    public async Task Reset_Twice_SecondIsIgnored()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();

        serverStream.Reset(TunnelErrorCode.Cancel);
        serverStream.Reset(TunnelErrorCode.InternalError);

        var ex = await Assert.ThrowsAsync<TunnelStreamException>(() => clientStream.Input.ReadAsync().AsTask().DefaultTimeout());
        Assert.Equal(TunnelErrorCode.Cancel, ex.ErrorCode);
        Assert.Equal(TunnelErrorCode.Cancel, ((TunnelStreamException)serverStream.AbortReason!).ErrorCode);
    }

    [Fact]
    public async Task Trailers_SentWithEndStream_TakenAfterTheBody()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync(endStream: true);

        Assert.True(clientStream.SendHead(TunnelStreamTestExtensions.ResponseHead(200, ("Content-Type", "application/grpc"))));
        await clientStream.SendBytesAsync([1, 2, 3], endStream: false);
        Assert.True(clientStream.SendHead(HeaderBlockTestData.Trailers(("Grpc-Status", "0"), ("Grpc-Message", "ok")), endStream: true));
        Assert.False(clientStream.SendHead(HeaderBlockTestData.Trailers(), endStream: true));

        Assert.Equal(200, (await serverStream.ReadHeadAsync()).Status);
        Assert.Equal(new byte[] { 1, 2, 3 }, await serverStream.Input.ReadToEndAsync());
        Assert.True(serverStream.TryTakeTrailers(out var trailers));
        using (trailers)
        {
            Assert.True(trailers.EndStream);
            var decoded = HeaderBlockTestData.Decode(trailers.Span.ToArray());
            Assert.Equal(HeaderBlockKind.Trailers, decoded.Kind);
            Assert.Equal(["0", "ok"], decoded.Fields.Select(f => f.ValueText));
        }

        Assert.False(serverStream.TryTakeTrailers(out _));
    }

    [Fact]
    public async Task HeadWithEndStream_NoBodyFollows()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);

        var (_, clientStream) = await pair.OpenFromServerAsync(endStream: true);

        using var head = await clientStream.ReadHeadersAsync().DefaultTimeout();
        Assert.True(head.EndStream);
        Assert.Empty(await clientStream.Input.ReadToEndAsync());
    }

    [Fact]
    public async Task LargeBodies_ManyFramesBothWays_ArriveIntact()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var body = RandomNumberGenerator.GetBytes((3 * 1024 * 1024) + 7);
        var (serverStream, clientStream) = await pair.OpenFromServerAsync();

        // Echo: the client copies the request body into the response as it arrives.
        var echo = Task.Run(async () =>
        {
            Assert.True(clientStream.SendHead(TunnelStreamTestExtensions.ResponseHead()));
            while (true)
            {
                var result = await clientStream.Input.ReadAsync();
                if (!result.Buffer.IsEmpty)
                {
                    await clientStream.WriteAsync(result.Buffer, endStream: false, CancellationToken.None);
                }

                clientStream.Input.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    clientStream.Complete();
                    return;
                }
            }
        });
        var send = Task.Run(async () =>
        {
            for (var offset = 0; offset < body.Length; offset += 100_000)
            {
                var chunk = body.AsMemory(offset, Math.Min(100_000, body.Length - offset));
                await serverStream.WriteAsync(chunk, endStream: offset + chunk.Length == body.Length, CancellationToken.None);
            }
        });

        await serverStream.ReadHeadAsync();
        var echoed = await serverStream.Input.ReadToEndAsync();
        await send.DefaultTimeout();
        await echo.DefaultTimeout();

        Assert.Equal(SHA256.HashData(body), SHA256.HashData(echoed));
        Assert.Equal(body.Length, echoed.Length);
    }

    [Fact]
    public async Task ManyStreams_OpenedConcurrently_AllComplete()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        const int Count = 200;

        var responder = Task.Run(async () =>
        {
            var work = new List<Task>();
            for (var i = 0; i < Count; i++)
            {
                var stream = await pair.ClientStreams.AcceptAsync();
                work.Add(Task.Run(async () =>
                {
                    var head = await stream.ReadHeadAsync();
                    var body = await stream.Input.ReadToEndAsync();
                    Assert.True(stream.SendHead(TunnelStreamTestExtensions.ResponseHead(200, ("X-Target", head.Target!))));
                    await stream.WriteAsync(body, endStream: true, CancellationToken.None);
                }));
            }

            await Task.WhenAll(work);
        });

        var requests = Enumerable.Range(0, Count).Select(i => Task.Run(async () =>
        {
            Assert.True(pair.Server.TryOpenStream(out var stream));
            Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead($"/item/{i}")));
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"body {i}"), endStream: true, CancellationToken.None);
            var response = await stream.ReadHeadAsync();
            Assert.Equal($"/item/{i}", response.Fields.Single().ValueText);
            Assert.Equal($"body {i}", Encoding.ASCII.GetString(await stream.Input.ReadToEndAsync()));
        })).ToArray();

        await Task.WhenAll(requests).DefaultTimeout();
        await responder.DefaultTimeout();
        Assert.Equal(0, pair.Server.ActiveStreamCount);
        Assert.Equal(Count, pair.Server.StreamsOpened);
    }

    [Fact]
    public async Task TrySendHeaders_StreamsSentInOtherOrderThanOpened_BothReachThePeer()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        Assert.True(pair.Server.TryOpenStream(out var first));
        Assert.True(pair.Server.TryOpenStream(out var second));

        // The second stream's head goes out first, as when two requests race (docs/protocol.md §5.1).
        Assert.True(second.SendHead(TunnelStreamTestExtensions.RequestHead("/second"), endStream: true));
        Assert.True(first.SendHead(TunnelStreamTestExtensions.RequestHead("/first"), endStream: true));

        var a = await pair.ClientStreams.AcceptAsync();
        var b = await pair.ClientStreams.AcceptAsync();
        Assert.Equal("/second", (await a.ReadHeadAsync()).Target);
        Assert.Equal("/first", (await b.ReadHeadAsync()).Target);
        Assert.Equal(a.StreamId, second.StreamId);
        Assert.Equal(b.StreamId, first.StreamId);
        Assert.True(first.StreamId > second.StreamId);

        Assert.True(b.SendHead(TunnelStreamTestExtensions.ResponseHead(204), endStream: true));
        Assert.Equal(204, (await first.ReadHeadAsync()).Status);
    }

    [Fact]
    public async Task ReadHeadersAsync_Cancelled_ThrowsOperationCanceled()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, _) = await pair.OpenFromServerAsync();
        using var cts = new CancellationTokenSource();

        var read = serverStream.ReadHeadersAsync(cts.Token).AsTask();
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.DefaultTimeout());
    }

    [Fact]
    public async Task ReadHeadersAsync_AfterHeadWasTaken_Throws()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (_, clientStream) = await pair.OpenFromServerAsync();
        await clientStream.ReadHeadAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => clientStream.ReadHeadersAsync().AsTask().DefaultTimeout());
    }

    [Fact]
    public async Task SendDataAsync_AfterEndStream_Throws()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (serverStream, _) = await pair.OpenFromServerAsync();
        await serverStream.SendBytesAsync([1], endStream: true);

        await Assert.ThrowsAsync<InvalidOperationException>(() => serverStream.SendBytesAsync([2], endStream: false));
    }
}
