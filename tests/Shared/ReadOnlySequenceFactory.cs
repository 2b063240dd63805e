using System.Buffers;

namespace Tunnel2.Testing;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s, to test parsers against every way the bytes can arrive.</summary>
public static class ReadOnlySequenceFactory
{
    /// <summary>One segment per argument, in order; empty segments are kept (real pipes can produce them).</summary>
    public static ReadOnlySequence<byte> CreateSegments(params byte[][] segments)
    {
        if (segments.Length == 0)
        {
            return ReadOnlySequence<byte>.Empty;
        }

        var first = new Segment(segments[0], runningIndex: 0);
        var last = first;
        for (var i = 1; i < segments.Length; i++)
        {
            last = last.Append(segments[i]);
        }

        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Splits <paramref name="bytes"/> into segments that end at each of <paramref name="splitPoints"/> (ascending).</summary>
    public static ReadOnlySequence<byte> Split(ReadOnlySpan<byte> bytes, params int[] splitPoints)
    {
        var pieces = new byte[splitPoints.Length + 1][];
        var start = 0;
        for (var i = 0; i < splitPoints.Length; i++)
        {
            pieces[i] = bytes[start..splitPoints[i]].ToArray();
            start = splitPoints[i];
        }

        pieces[^1] = bytes[start..].ToArray();
        return CreateSegments(pieces);
    }

    /// <summary>A segment that can be appended to, for tests that build a sequence as bytes arrive.</summary>
    public sealed class Segment : ReadOnlySequenceSegment<byte>
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
