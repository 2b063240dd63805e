using System.IO.Pipelines;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>
/// A peer that makes us queue control frames faster than we can send them (CERT VU#605641: ping and settings floods)
/// must meet ENHANCE_YOUR_CALM, not unbounded memory.
/// </summary>
public class TunnelConnectionFloodTests
{
    private const int Pings = 10_000;
    private const int PingFrameSize = FrameHeader.Size + 8;

    private readonly ITestOutputHelper _output;

    public TunnelConnectionFloodTests(ITestOutputHelper output)
    {
        _output = output;
    }

    [Fact]
    public async Task PING_FloodWhileWriterCannotDrain_EnhanceYourCalm()
    {
        // The peer stops reading: our writer blocks once 1 KiB is unread, and the PING ACKs pile up in its queue.
        var stalledOutput = new PipeOptions(pauseWriterThreshold: 1024, resumeWriterThreshold: 512, useSynchronizationContext: false);
        await using var peer = RawTunnelPeer.Start(_output, configure: limits => limits.MaxQueuedControlFrames = 16, connectionOutputOptions: stalledOutput);
        await peer.HandshakeAsync();
        await peer.SendHeadersAsync(1, TunnelStreamTestExtensions.RequestHead());
        var stream = await peer.Streams!.AcceptAsync();
        var aborted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = stream.Aborted.Register(() => aborted.TrySetResult());

        var flood = new byte[Pings * PingFrameSize];
        for (var i = 0; i < Pings; i++)
        {
            TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64((ulong)i)).CopyTo(flood, i * PingFrameSize);
        }

        await peer.SendAsync(flood);

        // The connection closes (its streams abort) while we are still not reading.
        await aborted.Task.DefaultTimeout();
        Assert.Equal(TunnelErrorCode.EnhanceYourCalm, peer.Connection.CloseErrorCode);

        // Now drain: the writer held at most one flush threshold of ACKs plus its budget, then the GOAWAY.
        var acks = 0;
        TestFrame frame;
        while ((frame = await peer.ReceiveFrameAsync()).Type == FrameType.Ping)
        {
            Assert.True(frame.Header.HasFlag(FrameFlags.Ack));
            acks++;
        }

        Assert.Equal(FrameType.GoAway, frame.Type);
        Assert.Equal(TunnelErrorCode.EnhanceYourCalm, frame.ErrorCode);
        Assert.InRange(acks, 1, ((64 * 1024) + 1024) / PingFrameSize + 16 + 1);
        await peer.ExpectTransportClosedAsync();
        await peer.Connection.Closed.DefaultTimeout();
    }

    [Fact]
    public async Task PING_BurstBelowTheBudget_AllAnswered()
    {
        // A burst smaller than MaxQueuedControlFrames (10,000 by default) is not a flood, even if the writer lags.
        await using var peer = RawTunnelPeer.Start(_output);
        await peer.HandshakeAsync();
        var burst = new byte[2_000 * PingFrameSize];
        for (var i = 0; i < 2_000; i++)
        {
            TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64((ulong)i)).CopyTo(burst, i * PingFrameSize);
        }

        await peer.SendAsync(burst);

        for (var i = 0; i < 2_000; i++)
        {
            var ack = await peer.ExpectAsync(FrameType.Ping, withFlags: FrameFlags.Ack);
            Assert.Equal((ulong)i, ack.PingOpaque);
        }

        await peer.ExpectNothingMoreAsync();
        Assert.False(peer.Connection.IsClosing);
    }
}
