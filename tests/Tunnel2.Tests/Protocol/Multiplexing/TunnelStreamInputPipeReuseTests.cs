using System.Text;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// A stream's input pipe goes back to its connection once both ends are complete and serves a later stream: nothing
/// of the first stream may reach the second, through the reader it kept or through a late completion.
/// </summary>
public class TunnelStreamInputPipeReuseTests
{
    private readonly ITestOutputHelper _output;

    public TunnelStreamInputPipeReuseTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task InputPipe_BackInThePoolOnlyAfterBothEnds_NextStreamReadsOnlyItsOwnBody()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (first, firstPeer) = await pair.OpenFromServerAsync(endStream: true);
        Assert.True(firstPeer.SendHead(TunnelStreamTestExtensions.ResponseHead(200)));
        await firstPeer.SendBytesAsync("first body"u8.ToArray(), endStream: true);
        await first.ReadHeadAsync();
        var result = await first.Input.ReadAtLeastBufferedAsync("first body".Length).DefaultTimeout();
        Assert.True(result.IsCompleted);

        // The writer is complete (END_STREAM), the reader is not: the pipe still belongs to the stream.
        Assert.Equal(0, pair.Server.PooledInputPipeCount);
        first.Input.AdvanceTo(result.Buffer.End);
        await first.Input.CompleteAsync();
        Assert.Equal(1, pair.Server.PooledInputPipeCount);

        var (second, secondPeer) = await pair.OpenFromServerAsync(endStream: true);
        Assert.Equal(0, pair.Server.PooledInputPipeCount);
        Assert.True(secondPeer.SendHead(TunnelStreamTestExtensions.ResponseHead(200)));
        await secondPeer.SendBytesAsync("second"u8.ToArray(), endStream: true);
        await second.ReadHeadAsync();
        Assert.Equal("second", Encoding.ASCII.GetString(await second.Input.ReadToEndAsync()));
    }

    [Fact]
    public async Task Input_AfterComplete_EveryReadThrows_AndCompleteAgainIsHarmless()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (stream, peer) = await pair.OpenFromServerAsync(endStream: true);
        Assert.True(peer.SendHead(TunnelStreamTestExtensions.ResponseHead(200), endStream: true));
        await stream.ReadHeadAsync();
        Assert.Empty(await stream.Input.ReadToEndAsync());
        await stream.Input.CompleteAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(async () => await stream.Input.ReadAsync());
        Assert.Throws<InvalidOperationException>(() => stream.Input.TryRead(out _));
        stream.Input.CancelPendingRead();
        await stream.Input.CompleteAsync();
        Assert.Equal(1, pair.Server.PooledInputPipeCount);
    }

    [Fact]
    public async Task Reset_AfterThePipeWentBack_DoesNotCompleteItForTheStreamThatReusedIt()
    {
        await using var pair = await TunnelConnectionPair.StartAsync(_output);
        var (first, firstPeer) = await pair.OpenFromServerAsync(endStream: false);
        Assert.True(firstPeer.SendHead(TunnelStreamTestExtensions.ResponseHead(200), endStream: true));
        await first.ReadHeadAsync();
        Assert.Empty(await first.Input.ReadToEndAsync());
        await first.Input.CompleteAsync();
        Assert.Equal(1, pair.Server.PooledInputPipeCount);

        // The pipe now serves the second stream; the first one is reset afterwards (its own side was still open).
        var (second, secondPeer) = await pair.OpenFromServerAsync(endStream: true);
        first.Reset(TunnelErrorCode.Cancel, "late reset of the first stream");

        Assert.True(secondPeer.SendHead(TunnelStreamTestExtensions.ResponseHead(200)));
        await secondPeer.SendBytesAsync("still mine"u8.ToArray(), endStream: true);
        await second.ReadHeadAsync();
        Assert.Equal("still mine", Encoding.ASCII.GetString(await second.Input.ReadToEndAsync()));
        Assert.Null(second.AbortReason);
    }
}
