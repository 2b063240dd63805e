using System.Buffers.Binary;
using CsCheck;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Tests.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>
/// One fuzz case: the bytes a peer sends, and where the transport splits them. <see cref="Segments"/> carve
/// <see cref="Bytes"/> into the pieces a socket might deliver.
/// </summary>
internal sealed record FuzzInput(byte[] Bytes, int[] SplitPoints, string Description)
{
    public byte[][] Segments
    {
        get
        {
            var pieces = new List<byte[]>();
            var start = 0;
            foreach (var point in SplitPoints)
            {
                pieces.Add(Bytes[start..point]);
                start = point;
            }

            pieces.Add(Bytes[start..]);
            return [.. pieces];
        }
    }

    public override string ToString() => $"{Description}; split at [{string.Join(',', SplitPoints)}]; bytes {Convert.ToHexString(Bytes)}";
}

/// <summary>
/// Generators of peer input for the frame decoder and for a real <see cref="TunnelConnection"/>: plausible frame
/// streams built from a seed (structure-aware, so most cases get past SETTINGS and reach stream states), then
/// mutated at the frame level (length, type, flags, stream id) and at the byte level (flips, inserts, deletes,
/// duplicated ranges, truncation).
/// </summary>
internal static class FuzzInputs
{
    private static readonly int[] s_interestingLengths = [0, 1, 3, 4, 5, 7, 8, 9, 16_383, 16_384, 16_385, 65_535, 65_536, 65_537, 1 << 20, FrameHeader.MaxLengthFieldValue];
    private static readonly uint[] s_interestingStreamIds = [0, 1, 2, 3, 4, 5, 6, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x8000_0001, 0x8000_0002];
    private static readonly uint[] s_interestingIncrements = [0, 1, 65_535, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF];

    /// <summary>Uniformly random bytes, any length up to 2 KiB, randomly split.</summary>
    public static Gen<FuzzInput> RandomBytes { get; } =
        Gen.Byte.Array[0, 2048].SelectMany(bytes => Gen.Int[0, Math.Max(0, bytes.Length)].Array[0, 6]
            .Select(points => new FuzzInput(bytes, Normalize(points, bytes.Length), "random bytes")));

    /// <summary>Well-formed streams for a connection of <paramref name="roleUnderTest"/>, unmutated.</summary>
    public static Gen<FuzzInput> Valid(TunnelRole roleUnderTest)
        => Gen.Select(Gen.Int, Gen.Int[0, 40], Gen.Int[0, 8], (seed, frames, splits) => Build(roleUnderTest, seed, frames, mutations: 0, splits, garbageFrames: false));

    /// <summary>Plausible streams with 1–5 frame- and byte-level mutations.</summary>
    public static Gen<FuzzInput> Mutated(TunnelRole roleUnderTest)
        => Gen.Select(Gen.Int, Gen.Int[0, 40], Gen.Int[1, 5], Gen.Int[0, 8], (seed, frames, mutations, splits) => Build(roleUnderTest, seed, frames, mutations, splits));

    /// <summary>Builds one case deterministically from its parameters, so a failing case is reproduced by its seed.</summary>
    /// <param name="garbageFrames">Whether frames of any type, flags and id are mixed in (invalid at the frame level).</param>
    public static FuzzInput Build(TunnelRole roleUnderTest, int seed, int frameCount, int mutations, int splitCount, bool garbageFrames = true)
    {
        var random = new Random(seed);
        var frames = new List<Frame> { FirstSettings(random) };
        var peerParity = roleUnderTest == TunnelRole.Client ? 0 : 1;
        var nextPeerId = peerParity == 0 ? 2 : 1;
        var localIds = roleUnderTest == TunnelRole.Server ? new[] { 2, 4 } : new[] { 1, 3 };
        var open = new List<int>();
        for (var i = 0; i < frameCount; i++)
        {
            frames.Add(NextFrame(random, ref nextPeerId, localIds, open, garbageFrames));
        }

        for (var i = 0; i < mutations; i++)
        {
            MutateFrame(random, frames);
        }

        var bytes = Encode(frames, out var starts);
        var description = $"seed {seed}, {frameCount} frames, {mutations} mutations, for {roleUnderTest}";
        for (var i = 0; i < mutations; i++)
        {
            bytes = MutateBytes(random, bytes, starts);
        }

        var points = new int[splitCount];
        for (var i = 0; i < splitCount; i++)
        {
            points[i] = random.Next(0, bytes.Length + 1);
        }

        return new FuzzInput(bytes, Normalize(points, bytes.Length), description);
    }

    /// <summary>Sorted, distinct split points inside (0, length).</summary>
    public static int[] Normalize(int[] points, int length) => [.. points.Where(p => p > 0 && p < length).Distinct().Order()];

    public static byte[] Encode(IEnumerable<Frame> frames, out List<int> frameStarts)
    {
        var bytes = new List<byte>();
        frameStarts = [];
        foreach (var frame in frames)
        {
            frameStarts.Add(bytes.Count);
            bytes.AddRange(TestFrames.CreateRaw(frame.DeclaredLength ?? frame.Payload.Length, frame.Type, frame.Flags, frame.StreamId, frame.Payload));
        }

        return [.. bytes];
    }

    private static Frame FirstSettings(Random random)
    {
        var roll = random.Next(100);
        if (roll < 80)
        {
            return new Frame((byte)FrameType.Settings, 0, 0, TestFrames.SettingsPayload(
                (SettingsParameter.MaxConcurrentStreams, (uint)random.Next(0, 2000)),
                (SettingsParameter.InitialWindowSize, (uint)random.Next(16_384, 2 << 20)),
                (SettingsParameter.MaxFrameSize, (uint)random.Next(16_384, 1 << 20)),
                (SettingsParameter.MaxHeaderListSize, (uint)random.Next(0, 1 << 20))));
        }

        // Odd entries: unknown ids, repeats, values at and beyond the edges of §3.5.
        var entries = new (SettingsParameter, uint)[random.Next(0, 6)];
        for (var i = 0; i < entries.Length; i++)
        {
            var value = random.Next(4) switch
            {
                0 => 0u,
                1 => 16_383u,
                2 => 0xFFFF_FFFFu,
                _ => (uint)random.Next(),
            };
            entries[i] = ((SettingsParameter)random.Next(0, 8), value);
        }

        return new Frame((byte)FrameType.Settings, 0, 0, TestFrames.SettingsPayload(entries));
    }

    private static Frame NextFrame(Random random, ref int nextPeerId, int[] localIds, List<int> open, bool garbageFrames)
    {
        int AnyStream() => open.Count > 0 && random.Next(4) != 0 ? open[random.Next(open.Count)] : localIds[random.Next(localIds.Length)];
        var roll = random.Next(garbageFrames ? 100 : 91);
        switch (roll)
        {
            case < 22:
            {
                // A new stream from the peer: a request head (the TunnelServer's requests, or a client-opened stream).
                var id = nextPeerId;
                nextPeerId += 2;
                open.Add(id);
                var fields = Enumerable.Range(0, random.Next(0, 4)).Select(i => ($"x-f{i}", new string('v', random.Next(0, 20)))).ToArray();
                var head = HeaderBlockTestData.Request(random.Next(2) == 0 ? "GET" : "POST", "/r" + random.Next(100), fields);
                return new Frame((byte)FrameType.Headers, (byte)(random.Next(3) == 0 ? 1 : 0), (uint)id, head);
            }

            case < 32:
                // A response head for a stream the connection under test opened.
                return new Frame((byte)FrameType.Headers, (byte)(random.Next(3) == 0 ? 1 : 0), (uint)localIds[random.Next(localIds.Length)], HeaderBlockTestData.Response(random.Next(2) == 0 ? 200 : 404, ("content-type", "text/plain")));
            case < 55:
                return new Frame((byte)FrameType.Data, (byte)(random.Next(4) == 0 ? 1 : 0), (uint)AnyStream(), TestFrames.Pattern(random.Next(0, 300), random.Next(256)));
            case < 60:
                return new Frame((byte)FrameType.Headers, 1, (uint)AnyStream(), HeaderBlockTestData.Trailers(("grpc-status", "0")));
            case < 67:
                return new Frame((byte)FrameType.Reset, 0, (uint)AnyStream(), TestFrames.UInt32((uint)random.Next(0, 0x110)));
            case < 77:
                return new Frame((byte)FrameType.WindowUpdate, 0, random.Next(2) == 0 ? 0u : (uint)AnyStream(), TestFrames.UInt32(random.Next(10) == 0 ? s_interestingIncrements[random.Next(s_interestingIncrements.Length)] : (uint)random.Next(1, 1 << 20)));
            case < 85:
                return new Frame((byte)FrameType.Ping, (byte)random.Next(2), 0, TestFrames.UInt64((ulong)random.NextInt64()));
            case < 89:
                return new Frame((byte)FrameType.Settings, 1, 0, []);
            case < 91:
                return new Frame((byte)FrameType.GoAway, 0, 0, TestFrames.GoAwayPayload((uint)random.Next(0, 10), random.Next(3) == 0 ? (TunnelErrorCode)random.Next(0, 0x110) : TunnelErrorCode.NoError, TestFrames.Pattern(random.Next(0, 40))));
            default:
            {
                // Anything at all: a type outside §3, odd flags, any stream id.
                var payload = new byte[random.Next(0, 40)];
                random.NextBytes(payload);
                return new Frame((byte)random.Next(256), (byte)random.Next(256), s_interestingStreamIds[random.Next(s_interestingStreamIds.Length)], payload);
            }
        }
    }

    private static void MutateFrame(Random random, List<Frame> frames)
    {
        var index = random.Next(frames.Count);
        var frame = frames[index];
        frames[index] = random.Next(5) switch
        {
            0 => frame with { DeclaredLength = s_interestingLengths[random.Next(s_interestingLengths.Length)] },
            1 => frame with { Type = (byte)random.Next(0, 12) },
            2 => frame with { Flags = (byte)(1 << random.Next(8)) },
            3 => frame with { StreamId = s_interestingStreamIds[random.Next(s_interestingStreamIds.Length)] },
            _ => frame with { Payload = frame.Payload.Length == 0 ? [0xFF] : frame.Payload[..random.Next(frame.Payload.Length)] },
        };
    }

    private static byte[] MutateBytes(Random random, byte[] bytes, List<int> frameStarts)
    {
        if (bytes.Length == 0)
        {
            return [(byte)random.Next(256)];
        }

        var list = new List<byte>(bytes);
        var at = random.Next(list.Count);
        switch (random.Next(7))
        {
            case 0:
                list[at] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                list[at] = (byte)random.Next(256);
                break;
            case 2:
                var inserted = new byte[random.Next(1, 17)];
                random.NextBytes(inserted);
                list.InsertRange(at, inserted);
                break;
            case 3:
                list.RemoveRange(at, Math.Min(random.Next(1, 17), list.Count - at));
                break;
            case 4:
                var length = Math.Min(random.Next(1, 64), list.Count - at);
                list.InsertRange(random.Next(list.Count), list.GetRange(at, length));
                break;
            case 5:
                list.RemoveRange(at, list.Count - at);
                break;
            default:
                // Rewrite the 24-bit length of a frame start to an interesting value.
                var start = frameStarts[random.Next(frameStarts.Count)];
                if (start + 3 <= list.Count)
                {
                    var value = s_interestingLengths[random.Next(s_interestingLengths.Length)];
                    list[start] = (byte)(value >> 16);
                    list[start + 1] = (byte)(value >> 8);
                    list[start + 2] = (byte)value;
                }

                break;
        }

        return [.. list];
    }

    /// <summary>A frame as the fuzzer writes it: any type, flags and id, and a length field that may lie.</summary>
    internal sealed record Frame(byte Type, byte Flags, uint StreamId, byte[] Payload, int? DeclaredLength = null);

    /// <summary>Reads the error code of the GOAWAY frames in <paramref name="written"/> (what a connection sent).</summary>
    public static List<TunnelErrorCode> GoAwayCodes(byte[] written)
    {
        var codes = new List<TunnelErrorCode>();
        var offset = 0;
        while (offset + FrameHeader.Size <= written.Length)
        {
            var header = FrameHeader.Read(written.AsSpan(offset));
            if (offset + FrameHeader.Size + header.PayloadLength > written.Length)
            {
                break;
            }

            if (header.Type == FrameType.GoAway && header.PayloadLength >= 8)
            {
                codes.Add((TunnelErrorCode)BinaryPrimitives.ReadUInt32BigEndian(written.AsSpan(offset + FrameHeader.Size + 4)));
            }

            offset += FrameHeader.Size + header.PayloadLength;
        }

        return codes;
    }
}
