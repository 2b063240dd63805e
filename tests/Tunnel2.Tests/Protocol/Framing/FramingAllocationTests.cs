using System.Buffers;
using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Framing;

/// <summary>Allocation guard (performance.md §5): the per-frame header path must not allocate.</summary>
public class FramingAllocationTests
{
    private const int Iterations = 10_000;

    [Fact]
    public void FrameHeader_WriteThenRead_AllocatesNothing()
    {
        var bytes = new byte[FrameHeader.Size];
        var sum = Loop(bytes);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Iterations; i++)
        {
            sum += Loop(bytes);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.NotEqual(0, sum);

        static long Loop(byte[] bytes)
        {
            FrameHeader.Write(bytes, 16_384, FrameType.Data, FrameFlags.EndStream, 12_345);
            var header = FrameHeader.Read(bytes);
            return header.PayloadLength + header.StreamId;
        }
    }

    [Fact]
    public void TryReadFrame_SingleAndMultiSegment_AllocatesNothing()
    {
        var frame = TestFrames.Create(FrameType.Data, FrameFlags.None, 2, TestFrames.Pattern(100));
        var single = new ReadOnlySequence<byte>(frame);

        // Header split across three segments takes the copy-to-stack path.
        var split = ReadOnlySequenceFactory.Split(frame, 3, 7, 50);
        var sum = Parse(single) + Parse(split);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Iterations; i++)
        {
            sum += Parse(single) + Parse(split);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal((Iterations + 1) * 2 * 102L, sum);

        static long Parse(ReadOnlySequence<byte> buffer)
            => FrameReader.TryReadFrame(ref buffer, 16 * 1024, out var header, out var payload) ? header.StreamId + payload.Length : -1;
    }
}
