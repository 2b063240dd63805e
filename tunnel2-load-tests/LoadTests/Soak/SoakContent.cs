using System.Buffers.Binary;
using System.Globalization;

namespace Tunnel2.LoadTests.Soak;

/// <summary>
/// What TestBackend sends, recomputed here so every byte of a response can be checked (the harness references
/// neither TestBackend nor src/, so the two generators are repeated from TestBackend's documentation).
/// </summary>
internal static class SoakContent
{
    private const ulong Gamma = 0x9E3779B97F4A7C15;

    /// <summary>
    /// <c>/loadtest/bytes/{n}?seed=S</c> from byte <paramref name="offset"/>: the SplitMix64 stream for S, word i
    /// (little-endian) = Mix(S + (i + 1)·Gamma) (TestBackend DeterministicContent; Steele, Lea, Flood, OOPSLA 2014).
    /// Also used for the echo bodies this harness sends.
    /// </summary>
    public static void FillBytes(Span<byte> destination, long offset, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        Span<byte> word = stackalloc byte[sizeof(ulong)];
        var index = (ulong)offset >> 3;
        var skip = (int)(offset & 7);
        while (!destination.IsEmpty)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(word, Mix(seed, index));
            var count = Math.Min(sizeof(ulong) - skip, destination.Length);
            word.Slice(skip, count).CopyTo(destination);
            destination = destination[count..];
            skip = 0;
            index++;
        }
    }

    /// <summary>
    /// <c>/loadtest/stream/{chunks}?size=N</c> from byte <paramref name="offset"/>: piece i is <c>chunk 0003</c> (i, at
    /// least four digits) padded with '.', its last byte '\n'; a piece shorter than its label is the label cut short.
    /// </summary>
    public static void FillStream(Span<byte> destination, long offset, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        Span<byte> label = stackalloc byte[32];
        var chunk = -1L;
        var labelLength = 0;
        for (var i = 0; i < destination.Length; i++)
        {
            var position = offset + i;
            var index = position / chunkSize;
            var within = (int)(position % chunkSize);
            if (index != chunk)
            {
                chunk = index;
                "chunk "u8.CopyTo(label);
                index.TryFormat(label[6..], out var digits, "D4", CultureInfo.InvariantCulture);
                labelLength = 6 + digits;
            }

            destination[i] = within == chunkSize - 1 ? (byte)'\n' : within < labelLength ? label[within] : (byte)'.';
        }
    }

    private static ulong Mix(ulong seed, ulong index)
    {
        var z = unchecked(seed + ((index + 1) * Gamma));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
}
