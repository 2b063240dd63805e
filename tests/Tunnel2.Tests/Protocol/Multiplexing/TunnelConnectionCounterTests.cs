using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Multiplexing;

/// <summary>The byte counters behind tunnel2_uplink_bytes.</summary>
public class TunnelConnectionCounterTests(ITestOutputHelper output)
{
    [Fact]
    public async Task BytesReceived_AFrameSplitAcrossReads_CountedOnce()
    {
        await using var peer = RawTunnelPeer.Start(output);
        await peer.HandshakeAsync();
        var before = peer.Connection.BytesReceived;

        // A PING in two writes: the read loop sees the first five bytes, cannot parse a frame, and gets them again with
        // the rest on its next read. Those five bytes arrived once.
        var ping = TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(42));
        await peer.SendAsync(ping[..5]);
        await WaitUntilAsync(() => peer.Connection.BytesReceived == before + 5);
        await peer.SendAsync(ping[5..]);
        var answer = await peer.ExpectAsync(FrameType.Ping, withFlags: FrameFlags.Ack);
        Assert.Equal(42UL, answer.PingOpaque);

        Assert.Equal(before + ping.Length, peer.Connection.BytesReceived);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        // Bounded: nothing signals "the read loop has looked at the partial frame", so look until it has.
        var deadline = DateTime.UtcNow + TimeoutExtensions.DefaultTimeoutValue;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "The read loop never saw the first bytes.");
            await Task.Delay(5);
        }
    }
}
