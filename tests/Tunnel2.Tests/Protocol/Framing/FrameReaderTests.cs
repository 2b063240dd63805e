using System.Buffers;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Framing;

public class FrameReaderTests
{
    private const int MaxPayload = 16 * 1024;

    /// <summary>One well-formed frame of every type and flag combination the protocol defines.</summary>
    public static TheoryData<string, byte[]> ValidFrames => new()
    {
        { "DATA", TestFrames.Create(FrameType.Data, FrameFlags.None, 2, TestFrames.Pattern(23)) },
        { "DATA END_STREAM", TestFrames.Create(FrameType.Data, FrameFlags.EndStream, 3, TestFrames.Pattern(5)) },
        { "DATA empty END_STREAM", TestFrames.Create(FrameType.Data, FrameFlags.EndStream, 4, []) },
        { "HEADERS", TestFrames.Create(FrameType.Headers, FrameFlags.None, 2, [0x1, 0x1, 0x1, (byte)'/']) },
        { "HEADERS END_STREAM", TestFrames.Create(FrameType.Headers, FrameFlags.EndStream, 0x7FFF_FFFF, [0x2, 0x0, 0xC8]) },
        { "RESET", TestFrames.Create(FrameType.Reset, FrameFlags.None, 6, TestFrames.UInt32((uint)TunnelErrorCode.BackendTimeout)) },
        { "SETTINGS", TestFrames.Create(FrameType.Settings, FrameFlags.None, 0, TestFrames.SettingsPayload((SettingsParameter.MaxFrameSize, 32768), (SettingsParameter.InitialWindowSize, 65536))) },
        { "SETTINGS ACK", TestFrames.Create(FrameType.Settings, FrameFlags.Ack, 0, []) },
        { "WINDOW_UPDATE connection", TestFrames.Create(FrameType.WindowUpdate, FrameFlags.None, 0, TestFrames.UInt32(0x7FFF_FFFF)) },
        { "WINDOW_UPDATE stream", TestFrames.Create(FrameType.WindowUpdate, FrameFlags.None, 9, TestFrames.UInt32(1)) },
        { "PING", TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(0x0102_0304_0506_0708)) },
        { "PING ACK", TestFrames.Create(FrameType.Ping, FrameFlags.Ack, 0, TestFrames.UInt64(ulong.MaxValue)) },
        { "GOAWAY", TestFrames.Create(FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload(5, TunnelErrorCode.NoError)) },
        { "GOAWAY debug", TestFrames.Create(FrameType.GoAway, FrameFlags.None, 0, TestFrames.GoAwayPayload(7, TunnelErrorCode.EnhanceYourCalm, "calm"u8)) },
    };

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_WholeFrame_ParsesHeaderAndPayload(string name, byte[] frame)
    {
        _ = name;
        var buffer = new ReadOnlySequence<byte>(frame);

        Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out var header, out var payload));

        Assert.Equal(FrameHeader.Read(frame), header);
        Assert.Equal(frame.AsSpan(FrameHeader.Size).ToArray(), payload.ToArray());
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_SplitIntoTwoSegmentsAtEveryByte_ParsesIdentically(string name, byte[] frame)
    {
        _ = name;
        var expectedHeader = FrameHeader.Read(frame);
        var expectedPayload = frame.AsSpan(FrameHeader.Size).ToArray();

        for (var split = 0; split <= frame.Length; split++)
        {
            var buffer = ReadOnlySequenceFactory.Split(frame, split);

            Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out var header, out var payload), $"split at {split}");
            Assert.Equal(expectedHeader, header);
            Assert.Equal(expectedPayload, payload.ToArray());
            Assert.True(buffer.IsEmpty, $"split at {split}");
        }
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_SplitIntoThreeSegmentsAtEveryPair_ParsesIdentically(string name, byte[] frame)
    {
        _ = name;
        var expectedHeader = FrameHeader.Read(frame);
        var expectedPayload = frame.AsSpan(FrameHeader.Size).ToArray();

        for (var first = 0; first <= frame.Length; first++)
        {
            for (var second = first; second <= frame.Length; second++)
            {
                var buffer = ReadOnlySequenceFactory.Split(frame, first, second);

                Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out var header, out var payload), $"split at {first}, {second}");
                Assert.Equal(expectedHeader, header);
                Assert.Equal(expectedPayload, payload.ToArray());
                Assert.True(buffer.IsEmpty);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void TryReadFrame_EveryIncompletePrefixInEverySplit_ReturnsFalseAndLeavesBuffer(string name, byte[] frame)
    {
        _ = name;
        for (var available = 0; available < frame.Length; available++)
        {
            var prefix = frame.AsSpan(0, available);
            for (var split = 0; split <= available; split++)
            {
                var buffer = ReadOnlySequenceFactory.Split(prefix, split);
                var before = buffer;

                Assert.False(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _), $"{available} bytes split at {split}");
                Assert.Equal(before.Start, buffer.Start);
                Assert.Equal(before.End, buffer.End);
            }
        }
    }

    [Fact]
    public void TryReadFrame_ByteByByteSegments_ParsesConsecutiveFramesIdentically()
    {
        var frames = ValidFrames.Select(row => (byte[])row[1]).ToArray();
        var all = frames.SelectMany(f => f).ToArray();
        var buffer = ReadOnlySequenceFactory.CreateSegments(all.Select(b => new[] { b }).ToArray());

        foreach (var frame in frames)
        {
            Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out var header, out var payload));
            Assert.Equal(FrameHeader.Read(frame), header);
            Assert.Equal(frame.AsSpan(FrameHeader.Size).ToArray(), payload.ToArray());
        }

        Assert.True(buffer.IsEmpty);
        Assert.False(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
    }

    [Fact]
    public void TryReadFrame_EmptySegmentsBetweenBytes_ParsesIdentically()
    {
        var frame = TestFrames.Create(FrameType.Ping, FrameFlags.None, 0, TestFrames.UInt64(42));
        var pieces = new List<byte[]>();
        foreach (var b in frame)
        {
            pieces.Add([]);
            pieces.Add([b]);
        }

        pieces.Add([]);
        var buffer = ReadOnlySequenceFactory.CreateSegments([.. pieces]);

        Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out var header, out var payload));
        Assert.Equal(new FrameHeader(8, FrameType.Ping, FrameFlags.None, 0), header);
        Assert.Equal(TestFrames.UInt64(42), payload.ToArray());
    }

    [Fact]
    public void TryReadFrame_FollowedByPartOfNextFrame_ReturnsFirstAndKeepsRest()
    {
        var first = TestFrames.Create(FrameType.Data, FrameFlags.None, 1, TestFrames.Pattern(10));
        var second = TestFrames.Create(FrameType.Data, FrameFlags.EndStream, 1, TestFrames.Pattern(10, seed: 100));
        var buffer = new ReadOnlySequence<byte>([.. first, .. second.AsSpan(0, 12)]);

        Assert.True(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
        Assert.Equal(12, buffer.Length);
        Assert.False(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
        Assert.Equal(12, buffer.Length);
    }

    [Theory]
    [InlineData(MaxPayload + 1)]
    [InlineData(FrameHeader.MaxLengthFieldValue)]
    public void FRAME_LengthAboveLimit_FrameSizeErrorAsSoonAsHeaderArrives(int declaredLength)
    {
        // Only the 9 header bytes: the payload has not arrived, and must not be waited for.
        var headerOnly = TestFrames.CreateRaw(declaredLength, (byte)FrameType.Data, 0, 1);

        for (var split = 0; split <= headerOnly.Length; split++)
        {
            var buffer = ReadOnlySequenceFactory.Split(headerOnly, split);
            var ex = Assert.Throws<TunnelConnectionException>(() => FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
            Assert.Equal(TunnelErrorCode.FrameSizeError, ex.ErrorCode);
        }
    }

    [Fact]
    public void FRAME_LengthAtLimit_WaitsForPayload()
    {
        var headerOnly = TestFrames.CreateRaw(MaxPayload, (byte)FrameType.Data, 0, 1);
        var buffer = new ReadOnlySequence<byte>(headerOnly);

        Assert.False(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
    }

    [Fact]
    public void FRAME_EightHeaderBytes_NotValidatedYet()
    {
        // A bad header is only judged once all 9 bytes are there.
        var partial = TestFrames.CreateRaw(FrameHeader.MaxLengthFieldValue, 0xFF, 0xFF, 0).AsSpan(0, FrameHeader.Size - 1).ToArray();
        var buffer = new ReadOnlySequence<byte>(partial);

        Assert.False(FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));
    }

    /// <summary>(type, flags, stream id, payload length, expected error) for every rule of docs/protocol.md §3.1.</summary>
    public static TheoryData<string, byte, byte, int, int, TunnelErrorCode> InvalidHeaders => new()
    {
        // Unknown types: PRIORITY, PUSH_PROMISE and CONTINUATION numbers are unassigned, as is anything above 0x8.
        { "type 0x2", 0x2, 0, 1, 5, TunnelErrorCode.ProtocolError },
        { "type 0x5", 0x5, 0, 1, 4, TunnelErrorCode.ProtocolError },
        { "type 0x9", 0x9, 0, 1, 0, TunnelErrorCode.ProtocolError },
        { "type 0xFF", 0xFF, 0, 0, 0, TunnelErrorCode.ProtocolError },

        // Stream frames on stream 0, connection frames on a stream.
        { "DATA stream 0", (byte)FrameType.Data, 0, 0, 1, TunnelErrorCode.ProtocolError },
        { "HEADERS stream 0", (byte)FrameType.Headers, 0, 0, 3, TunnelErrorCode.ProtocolError },
        { "RESET stream 0", (byte)FrameType.Reset, 0, 0, 4, TunnelErrorCode.ProtocolError },
        { "SETTINGS stream 1", (byte)FrameType.Settings, 0, 1, 6, TunnelErrorCode.ProtocolError },
        { "SETTINGS ACK stream 2", (byte)FrameType.Settings, 1, 2, 0, TunnelErrorCode.ProtocolError },
        { "PING stream 1", (byte)FrameType.Ping, 0, 1, 8, TunnelErrorCode.ProtocolError },
        { "GOAWAY stream 3", (byte)FrameType.GoAway, 0, 3, 8, TunnelErrorCode.ProtocolError },

        // Undefined flags.
        { "DATA flag 0x2", (byte)FrameType.Data, 0x2, 1, 0, TunnelErrorCode.ProtocolError },
        { "DATA flag 0x80", (byte)FrameType.Data, 0x81, 1, 0, TunnelErrorCode.ProtocolError },
        { "HEADERS flag 0x4", (byte)FrameType.Headers, 0x4, 1, 3, TunnelErrorCode.ProtocolError },
        { "RESET flag 0x1", (byte)FrameType.Reset, 0x1, 1, 4, TunnelErrorCode.ProtocolError },
        { "SETTINGS flag 0x2", (byte)FrameType.Settings, 0x2, 0, 0, TunnelErrorCode.ProtocolError },
        { "PING flag 0x8", (byte)FrameType.Ping, 0x8, 0, 8, TunnelErrorCode.ProtocolError },
        { "GOAWAY flag 0x1", (byte)FrameType.GoAway, 0x1, 0, 8, TunnelErrorCode.ProtocolError },
        { "WINDOW_UPDATE flag 0x1", (byte)FrameType.WindowUpdate, 0x1, 0, 4, TunnelErrorCode.ProtocolError },

        // Fixed lengths.
        { "RESET 3 bytes", (byte)FrameType.Reset, 0, 1, 3, TunnelErrorCode.FrameSizeError },
        { "RESET 5 bytes", (byte)FrameType.Reset, 0, 1, 5, TunnelErrorCode.FrameSizeError },
        { "PING 7 bytes", (byte)FrameType.Ping, 0, 0, 7, TunnelErrorCode.FrameSizeError },
        { "PING 9 bytes", (byte)FrameType.Ping, 0, 0, 9, TunnelErrorCode.FrameSizeError },
        { "PING ACK 0 bytes", (byte)FrameType.Ping, 1, 0, 0, TunnelErrorCode.FrameSizeError },
        { "WINDOW_UPDATE 0 bytes", (byte)FrameType.WindowUpdate, 0, 0, 0, TunnelErrorCode.FrameSizeError },
        { "WINDOW_UPDATE 8 bytes", (byte)FrameType.WindowUpdate, 0, 1, 8, TunnelErrorCode.FrameSizeError },
        { "GOAWAY 7 bytes", (byte)FrameType.GoAway, 0, 0, 7, TunnelErrorCode.FrameSizeError },
        { "SETTINGS 5 bytes", (byte)FrameType.Settings, 0, 0, 5, TunnelErrorCode.FrameSizeError },
        { "SETTINGS 13 bytes", (byte)FrameType.Settings, 0, 0, 13, TunnelErrorCode.FrameSizeError },
        { "SETTINGS ACK 6 bytes", (byte)FrameType.Settings, 1, 0, 6, TunnelErrorCode.FrameSizeError },
    };

    [Theory]
    [MemberData(nameof(InvalidHeaders))]
    public void Validate_BrokenRule_ThrowsConnectionErrorWithCode(string name, byte type, byte flags, int streamId, int length, TunnelErrorCode expected)
    {
        _ = name;
        var header = new FrameHeader(length, (FrameType)type, (FrameFlags)flags, streamId);

        var ex = Assert.Throws<TunnelConnectionException>(() => FrameReader.Validate(header, MaxPayload));

        Assert.Equal(expected, ex.ErrorCode);
    }

    [Theory]
    [MemberData(nameof(InvalidHeaders))]
    public void TryReadFrame_BrokenRule_ThrowsBeforePayloadArrives(string name, byte type, byte flags, int streamId, int length, TunnelErrorCode expected)
    {
        _ = name;
        var headerOnly = TestFrames.CreateRaw(length, type, flags, (uint)streamId);
        var buffer = new ReadOnlySequence<byte>(headerOnly);

        var ex = Assert.Throws<TunnelConnectionException>(() => FrameReader.TryReadFrame(ref buffer, MaxPayload, out _, out _));

        Assert.Equal(expected, ex.ErrorCode);
    }

    [Theory]
    [MemberData(nameof(ValidFrames))]
    public void Validate_WellFormedFrame_DoesNotThrow(string name, byte[] frame)
    {
        _ = name;
        FrameReader.Validate(FrameHeader.Read(frame), MaxPayload);
    }

    [Fact]
    public void Validate_WindowUpdateOnStreamOrConnection_BothAllowed()
    {
        FrameReader.Validate(new FrameHeader(4, FrameType.WindowUpdate, FrameFlags.None, 0), MaxPayload);
        FrameReader.Validate(new FrameHeader(4, FrameType.WindowUpdate, FrameFlags.None, 1), MaxPayload);
    }
}
