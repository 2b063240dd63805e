using System.Buffers.Binary;

namespace Tunnel2.LoadTests.WebSockets;

/// <summary>
/// The pure parts of the WebSocket scenario: when each socket sends (open loop, a fixed interval per socket with a
/// random phase, so N sockets at 1 msg/s offer N evenly spread messages per second rather than N at once), what a
/// message carries, and how URLs are read.
/// </summary>
internal static class WebSocketSchedule
{
    /// <summary>Sequence number, intended send time and actual send time: three little-endian 64-bit values.</summary>
    public const int HeaderSize = 24;

    /// <summary>One random phase per socket in [0, <paramref name="interval"/>), reproducible from the seed.</summary>
    public static TimeSpan[] Phases(int sockets, TimeSpan interval, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sockets);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        var random = new Random(seed);
        var phases = new TimeSpan[sockets];
        for (var i = 0; i < sockets; i++)
        {
            phases[i] = TimeSpan.FromTicks((long)(random.NextDouble() * interval.Ticks));
        }

        return phases;
    }

    /// <summary>
    /// Every send of every socket in time order: socket i sends at phase[i] + k × interval for every k with a time
    /// before <paramref name="duration"/>. Sockets whose phase is null (not connected) send nothing. Ties keep socket
    /// order. O(1) per arrival: the sockets sorted by phase repeat every interval.
    /// </summary>
    public static IEnumerable<(int Socket, TimeSpan Offset)> Arrivals(IReadOnlyList<TimeSpan?> phases, TimeSpan interval, TimeSpan duration)
    {
        ArgumentNullException.ThrowIfNull(phases);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        return ArrivalsCore(phases, interval, duration);
    }

    /// <summary>Messages <see cref="Arrivals"/> yields for one socket with this phase.</summary>
    public static long CountFor(TimeSpan phase, TimeSpan interval, TimeSpan duration) =>
        phase >= duration ? 0 : ((duration - phase).Ticks + interval.Ticks - 1) / interval.Ticks;

    /// <summary>Writes the header into the first <see cref="HeaderSize"/> bytes; the rest of the message is left as it is.</summary>
    public static void WriteHeader(Span<byte> message, long sequence, long intendedTimestamp, long sentTimestamp)
    {
        if (message.Length < HeaderSize)
        {
            throw new ArgumentException($"A message needs at least {HeaderSize} bytes.", nameof(message));
        }

        BinaryPrimitives.WriteInt64LittleEndian(message, sequence);
        BinaryPrimitives.WriteInt64LittleEndian(message[8..], intendedTimestamp);
        BinaryPrimitives.WriteInt64LittleEndian(message[16..], sentTimestamp);
    }

    /// <returns>False when the echo is too short to be one of ours.</returns>
    public static bool TryReadHeader(ReadOnlySpan<byte> message, out long sequence, out long intendedTimestamp, out long sentTimestamp)
    {
        if (message.Length < HeaderSize)
        {
            sequence = intendedTimestamp = sentTimestamp = 0;
            return false;
        }

        sequence = BinaryPrimitives.ReadInt64LittleEndian(message);
        intendedTimestamp = BinaryPrimitives.ReadInt64LittleEndian(message[8..]);
        sentTimestamp = BinaryPrimitives.ReadInt64LittleEndian(message[16..]);
        return true;
    }

    /// <summary>
    /// <c>[label=]URL</c> with a ws, wss, http or https URL (http becomes ws, https wss); a missing label becomes the
    /// URL's host:port.
    /// </summary>
    public static bool TryParseTarget(string text, out string label, out Uri url)
    {
        ArgumentNullException.ThrowIfNull(text);
        var split = text.IndexOf('=', StringComparison.Ordinal);
        var scheme = text.IndexOf("://", StringComparison.Ordinal);
        var hasLabel = split > 0 && (scheme < 0 || split < scheme);
        label = hasLabel ? text[..split] : "";
        var address = hasLabel ? text[(split + 1)..] : text;
        url = null!;
        if (!Uri.TryCreate(address, UriKind.Absolute, out var parsed))
        {
            return false;
        }

        var mapped = parsed.Scheme switch
        {
            "ws" or "http" => "ws",
            "wss" or "https" => "wss",
            _ => null,
        };
        if (mapped is null)
        {
            return false;
        }

        url = new UriBuilder(parsed) { Scheme = mapped, Port = parsed.IsDefaultPort ? -1 : parsed.Port }.Uri;
        if (label.Length == 0)
        {
            label = url.Authority;
        }

        return true;
    }

    private static IEnumerable<(int Socket, TimeSpan Offset)> ArrivalsCore(IReadOnlyList<TimeSpan?> phases, TimeSpan interval, TimeSpan duration)
    {
        var order = Enumerable.Range(0, phases.Count)
            .Where(i => phases[i] is { } phase && phase >= TimeSpan.Zero && phase < interval)
            .OrderBy(i => phases[i]!.Value)
            .ThenBy(i => i)
            .ToArray();
        if (order.Length == 0)
        {
            yield break;
        }

        for (var round = 0L; ; round++)
        {
            var start = TimeSpan.FromTicks(interval.Ticks * round);
            if (start >= duration)
            {
                yield break;
            }

            foreach (var socket in order)
            {
                var offset = start + phases[socket]!.Value;
                if (offset >= duration)
                {
                    yield break;
                }

                yield return (socket, offset);
            }
        }
    }
}
