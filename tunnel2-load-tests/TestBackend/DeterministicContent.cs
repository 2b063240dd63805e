using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;

namespace Tunnel2.TestBackend;

/// <summary>
/// The content of <c>/loadtest/bytes/{n}?seed=S</c>: the SplitMix64 output stream for seed S, each 64-bit word
/// stored little-endian. Word <c>i</c> is <c>Mix(S + (i + 1) * Gamma)</c>, so any byte is a pure function of
/// (seed, offset) and a test can check any slice without generating what comes before it.
/// </summary>
/// <remarks>
/// SplitMix64: Steele, Lea, Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; constants from
/// the reference implementation at https://prng.di.unimi.it/splitmix64.c.
/// </remarks>
internal static class DeterministicContent
{
    /// <summary>Size of the buffer used when the content is hashed (the same size YARP's stream copier uses).</summary>
    public const int BlockSize = 64 * 1024;

    private const ulong Gamma = 0x9E3779B97F4A7C15;

    public static void Fill(Span<byte> destination, long offset, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);

        var word = (ulong)offset >> 3;
        var skip = (int)(offset & 7);

        // Leading partial word.
        if (skip != 0 && !destination.IsEmpty)
        {
            Span<byte> scratch = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, Word(seed, word));
            var count = Math.Min(sizeof(ulong) - skip, destination.Length);
            scratch.Slice(skip, count).CopyTo(destination);
            destination = destination[count..];
            word++;
        }

        // Whole words.
        while (destination.Length >= sizeof(ulong))
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination, Word(seed, word));
            destination = destination[sizeof(ulong)..];
            word++;
        }

        // Trailing partial word.
        if (!destination.IsEmpty)
        {
            Span<byte> scratch = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(scratch, Word(seed, word));
            scratch[..destination.Length].CopyTo(destination);
        }
    }

    public static string ComputeSha256Hex(long length, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(BlockSize);
        try
        {
            for (long offset = 0; offset < length;)
            {
                var count = (int)Math.Min(BlockSize, length - offset);
                var block = buffer.AsSpan(0, count);
                Fill(block, offset, seed);
                hash.AppendData(block);
                offset += count;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var written = hash.GetHashAndReset(digest);
        Debug.Assert(written == SHA256.HashSizeInBytes);
        return Convert.ToHexStringLower(digest);
    }

    private static ulong Word(ulong seed, ulong index)
    {
        var z = unchecked(seed + ((index + 1) * Gamma));
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
}
