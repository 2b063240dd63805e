namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>
/// Unsigned LEB128 lengths in header blocks: 7 bits per byte, low group first, high bit set on every byte but the
/// last. At most <see cref="MaxBytes"/> bytes, so at most 2^28 − 1.
/// </summary>
internal static class VarInt
{
    public const int MaxBytes = 4;
    public const int MaxValue = (1 << 28) - 1;

    public static int GetByteCount(int value) => value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x20_0000 ? 3 : 4;

    public static bool TryWrite(Span<byte> destination, int value, out int bytesWritten)
    {
        var count = GetByteCount(value);
        if (destination.Length < count)
        {
            bytesWritten = 0;
            return false;
        }

        var v = (uint)value;
        for (var i = 0; i < count - 1; i++)
        {
            destination[i] = (byte)(v | 0x80);
            v >>= 7;
        }

        destination[count - 1] = (byte)v;
        bytesWritten = count;
        return true;
    }

    /// <returns>Bytes read, or 0 when the input is truncated or longer than <see cref="MaxBytes"/>.</returns>
    public static int TryRead(ReadOnlySpan<byte> source, out int value)
    {
        var result = 0;
        for (var i = 0; i < MaxBytes && i < source.Length; i++)
        {
            var b = source[i];
            result |= (b & 0x7F) << (7 * i);
            if (b < 0x80)
            {
                value = result;
                return i + 1;
            }
        }

        value = 0;
        return 0;
    }
}
