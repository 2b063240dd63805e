using System.Text;

namespace Tunnel2.Protocol.HeaderBlocks;

/// <summary>
/// Remembers the last value seen for each static-table name and hands back the same string when the bytes repeat
/// (Kestrel reuses header value strings the same way): Content-Type, Accept, User-Agent, Server and Date repeat from
/// request to request, so decoding them allocates nothing after the first time.
/// </summary>
public static class HeaderValueCache
{
    /// <summary>Longer values are rarely repeated verbatim and are not cached.</summary>
    private const int MaxCachedLength = 256;

    private static readonly Entry?[] s_entries = new Entry?[StaticTable.NameCount];

    /// <summary>The value as a string (ISO-8859-1), from the cache when the same bytes were seen last time.</summary>
    public static string GetString(int staticIndex, ReadOnlySpan<byte> value)
    {
        if (staticIndex <= 0 || staticIndex >= s_entries.Length || value.Length > MaxCachedLength)
        {
            return Encoding.Latin1.GetString(value);
        }

        var entry = Volatile.Read(ref s_entries[staticIndex]);
        if (entry is not null && value.SequenceEqual(entry.Bytes))
        {
            return entry.Value;
        }

        var text = Encoding.Latin1.GetString(value);
        Volatile.Write(ref s_entries[staticIndex], new Entry(value.ToArray(), text));
        return text;
    }

    private sealed record Entry(byte[] Bytes, string Value);
}
