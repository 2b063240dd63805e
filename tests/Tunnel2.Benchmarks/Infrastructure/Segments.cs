using System.Buffers;

namespace Tunnel2.Benchmarks.Infrastructure;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s the way a pipe hands over socket reads.</summary>
public static class Segments
{
    /// <summary>Cuts <paramref name="bytes"/> into consecutive segments of <paramref name="segmentSize"/> bytes (the last may be shorter).</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, int segmentSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(segmentSize);
        if (bytes.Length <= segmentSize)
        {
            return new ReadOnlySequence<byte>(bytes);
        }

        var first = new Segment(bytes.AsMemory(0, segmentSize), 0);
        var last = first;
        for (var offset = segmentSize; offset < bytes.Length; offset += segmentSize)
        {
            last = last.Append(bytes.AsMemory(offset, Math.Min(segmentSize, bytes.Length - offset)));
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
