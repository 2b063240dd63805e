using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Framing;

public class FrameWriterTests
{
    private static readonly TunnelSettings s_settings = new(MaxConcurrentStreams: 77, InitialWindowSize: 123_456, MaxFrameSize: 32_768, MaxHeaderListSize: 9_999);

    [Fact]
    public async Task RunAsync_EveryFrameType_RoundTripsThroughFrameReader()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter(pipe.Writer, maxQueuedControlFrames: 100);
        var data = RentWith(TestFrames.Pattern(100));
        var headers = RentWith([0x2, 0x00, 0xC8]);

        writer.WritePreface(s_settings, connectionWindowIncrement: 1_000_000);
        Assert.True(writer.TryEnqueue(OutboundFrame.Payload(FrameType.Data, FrameFlags.None, 2, data, 10, 50, returnBuffer: false)));
        Assert.True(writer.TryEnqueue(OutboundFrame.Payload(FrameType.Data, FrameFlags.EndStream, 2, data, 60, 40, returnBuffer: true)));
        Assert.True(writer.TryEnqueue(OutboundFrame.EmptyData(4, FrameFlags.EndStream)));
        Assert.True(writer.TryEnqueue(OutboundFrame.Payload(FrameType.Headers, FrameFlags.EndStream, 6, headers, 0, 3, returnBuffer: true)));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.Reset(8, TunnelErrorCode.BackendTimeout), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.WindowUpdate(0, int.MaxValue), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.WindowUpdate(10, 1), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.Ping(0x0102_0304_0506_0708, ack: false), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.Ping(ulong.MaxValue, ack: true), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.SettingsAck(), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.GoAway(int.MaxValue, TunnelErrorCode.EnhanceYourCalm, "calm down"u8.ToArray()), out _));
        Assert.True(writer.TryEnqueueControl(OutboundFrame.GoAway(0, TunnelErrorCode.NoError, null), out _));
        writer.Complete();
        await writer.RunAsync().DefaultTimeout();
        await pipe.Writer.CompleteAsync();

        var frames = await ReadAllFramesAsync(pipe.Reader);

        Assert.Collection(
            frames,
            f =>
            {
                Assert.Equal(new FrameHeader(SettingsFrame.PayloadSize, FrameType.Settings, FrameFlags.None, 0), f.Header);
                Assert.Equal(s_settings, SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(f.Payload)));
            },
            f => AssertFrame(f, FrameType.WindowUpdate, FrameFlags.None, 0, TestFrames.UInt32(1_000_000)),
            f => AssertFrame(f, FrameType.Data, FrameFlags.None, 2, TestFrames.Pattern(100).AsSpan(10, 50).ToArray()),
            f => AssertFrame(f, FrameType.Data, FrameFlags.EndStream, 2, TestFrames.Pattern(100).AsSpan(60, 40).ToArray()),
            f => AssertFrame(f, FrameType.Data, FrameFlags.EndStream, 4, []),
            f => AssertFrame(f, FrameType.Headers, FrameFlags.EndStream, 6, [0x2, 0x00, 0xC8]),
            f => AssertFrame(f, FrameType.Reset, FrameFlags.None, 8, TestFrames.UInt32((uint)TunnelErrorCode.BackendTimeout)),
            f => AssertFrame(f, FrameType.WindowUpdate, FrameFlags.None, 0, TestFrames.UInt32(int.MaxValue)),
            f => AssertFrame(f, FrameType.WindowUpdate, FrameFlags.None, 10, TestFrames.UInt32(1)),
            f => AssertFrame(f, FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(0x0102_0304_0506_0708)),
            f => AssertFrame(f, FrameType.Ping, FrameFlags.Ack, 0, TestFrames.UInt64(ulong.MaxValue)),
            f => AssertFrame(f, FrameType.Settings, FrameFlags.Ack, 0, []),
            f => AssertFrame(f, FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload(int.MaxValue, TunnelErrorCode.EnhanceYourCalm, "calm down"u8)),
            f => AssertFrame(f, FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload(0, TunnelErrorCode.NoError)));
        Assert.Equal(frames.Sum(f => FrameHeader.Size + f.Payload.Length) - (FrameHeader.Size * 2) - SettingsFrame.PayloadSize - 4, writer.BytesWritten);
        Assert.Equal(12, writer.FramesWritten);
    }

    [Fact]
    public void WritePreface_MinimumConnectionWindow_SendsNoWindowUpdate()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter(pipe.Writer, maxQueuedControlFrames: 16);

        // A zero WINDOW_UPDATE increment is a protocol error, so none may be sent for the default window.
        writer.WritePreface(s_settings, connectionWindowIncrement: 0);

        Assert.Equal(FrameHeader.Size + SettingsFrame.PayloadSize, pipe.Writer.UnflushedBytes);
    }

    [Fact]
    public async Task RunAsync_FramesQueuedTogether_LeaveInOneFlush()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter(pipe.Writer, maxQueuedControlFrames: 100);
        for (var i = 0; i < 50; i++)
        {
            Assert.True(writer.TryEnqueueControl(OutboundFrame.Ping((ulong)i, ack: true), out _));
        }

        writer.Complete();
        await writer.RunAsync().DefaultTimeout();

        // One flush for the (empty) preface, one for the 50 frames that were waiting: not one per frame.
        Assert.Equal(2, writer.Flushes);
        Assert.Equal(50, writer.FramesWritten);
    }

    [Fact]
    public async Task TryEnqueueControl_BudgetSpent_RefusesUntilWriterDrains()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter(pipe.Writer, maxQueuedControlFrames: 16);
        for (var i = 0; i < 16; i++)
        {
            Assert.True(writer.TryEnqueueControl(OutboundFrame.Ping((ulong)i, ack: true), out var overBudget));
            Assert.False(overBudget);
        }

        Assert.False(writer.TryEnqueueControl(OutboundFrame.Ping(16, ack: true), out var spent));
        Assert.True(spent);

        // Stream frames are bounded by credit, not by this budget.
        Assert.True(writer.TryEnqueue(OutboundFrame.EmptyData(1, FrameFlags.EndStream)));

        var run = writer.RunAsync();
        var frames = await ReadFramesAsync(pipe.Reader, 17);
        Assert.Equal(16, frames.Count(f => f.Header.Type == FrameType.Ping));

        Assert.True(writer.TryEnqueueControl(OutboundFrame.Ping(17, ack: true), out var afterDrain));
        Assert.False(afterDrain);
        writer.Complete();
        await run.DefaultTimeout();
    }

    [Fact]
    public void TryEnqueue_AfterComplete_ReturnsFalseWithoutBlamingThePeer()
    {
        var writer = new FrameWriter(new Pipe().Writer, maxQueuedControlFrames: 16);
        writer.Complete();

        Assert.False(writer.TryEnqueue(OutboundFrame.EmptyData(1, FrameFlags.EndStream)));
        Assert.False(writer.TryEnqueueControl(OutboundFrame.Ping(1, ack: true), out var overBudget));
        Assert.False(overBudget);
    }

    [Fact]
    public async Task RunAsync_ReaderGone_EndsInsteadOfWaiting()
    {
        var pipe = new Pipe();
        var writer = new FrameWriter(pipe.Writer, maxQueuedControlFrames: 16);
        await pipe.Reader.CompleteAsync();

        var run = writer.RunAsync();
        writer.TryEnqueue(OutboundFrame.EmptyData(1, FrameFlags.EndStream));

        await run.DefaultTimeout();
    }

    private static byte[] RentWith(byte[] content)
    {
        var array = ArrayPool<byte>.Shared.Rent(content.Length);
        content.CopyTo(array, 0);
        return array;
    }

    private static void AssertFrame(TestFrame frame, FrameType type, FrameFlags flags, int streamId, byte[] payload)
    {
        Assert.Equal(new FrameHeader(payload.Length, type, flags, streamId), frame.Header);
        Assert.Equal(payload, frame.Payload);
    }

    private static async Task<List<TestFrame>> ReadAllFramesAsync(PipeReader reader)
    {
        var frames = new List<TestFrame>();
        while (true)
        {
            var result = await reader.ReadAsync().DefaultTimeout();
            var buffer = result.Buffer;
            while (FrameReader.TryReadFrame(ref buffer, FrameHeader.MaxLengthFieldValue, out var header, out var payload))
            {
                frames.Add(new TestFrame(header, payload.ToArray()));
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                Assert.True(buffer.IsEmpty, "The writer left a partial frame.");
                return frames;
            }
        }
    }

    private static async Task<List<TestFrame>> ReadFramesAsync(PipeReader reader, int count)
    {
        var frames = new List<TestFrame>();
        while (frames.Count < count)
        {
            var result = await reader.ReadAsync().DefaultTimeout();
            var buffer = result.Buffer;
            while (frames.Count < count && FrameReader.TryReadFrame(ref buffer, FrameHeader.MaxLengthFieldValue, out var header, out var payload))
            {
                frames.Add(new TestFrame(header, payload.ToArray()));
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            Assert.False(result.IsCompleted && frames.Count < count, "The writer stopped early.");
        }

        return frames;
    }
}
