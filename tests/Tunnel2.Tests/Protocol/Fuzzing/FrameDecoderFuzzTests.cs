using System.Buffers;
using CsCheck;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>
/// Property tests of <see cref="FrameReader.TryReadFrame"/> on random and mutated input delivered in random segments
/// (reliability.md §2 A1–A4). For every input: the only exception is <see cref="TunnelConnectionException"/> with
/// FRAME_SIZE_ERROR or PROTOCOL_ERROR; the outcome does not depend on how the bytes were split; frames are exactly
/// their declared length and never above the limit; and the decoder allocates nothing, except the exception itself
/// when it rejects a frame, whatever length the header claims.
/// </summary>
public class FrameDecoderFuzzTests
{
    private const long Iterations = 4_000;

    /// <summary>
    /// Allocation allowed for one rejected input: the exception object, its interpolated message and the stack trace
    /// the runtime captures on throw (measured at 1–2 KiB). Fixed, so a header claiming 16 MiB costs what one claiming
    /// 17 bytes does; without an error the budget is zero.
    /// </summary>
    private const long RejectionAllocationBudget = 8 * 1024;

    private static readonly Gen<int> s_maxPayload = Gen.OneOf(Gen.Const(16 * 1024), Gen.Const(64 * 1024), Gen.Int[TunnelSettings.MinFrameSize, TunnelSettings.MaxFrameSizeLimit]);

    [Fact]
    public void RandomBytes_OnlyDocumentedOutcomes_IndependentOfSegmentation_NoAllocation()
        => Gen.Select(FuzzInputs.RandomBytes, s_maxPayload).Sample((input, max) => AssertDecoderProperties(input, max), iter: Iterations, print: t => t.ToString());

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public void MutatedFrameStreams_OnlyDocumentedOutcomes_IndependentOfSegmentation_NoAllocation(TunnelRole role)
        => Gen.Select(FuzzInputs.Mutated(role), s_maxPayload).Sample((input, max) => AssertDecoderProperties(input, max), iter: Iterations, print: t => t.ToString());

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public void ValidFrameStreams_DecodeToExactlyTheFramesWritten(TunnelRole role)
        => FuzzInputs.Valid(role).Sample(
            input =>
            {
                var outcome = Decode(ReadOnlySequenceFactory.CreateSegments(input.Segments), FrameHeader.MaxLengthFieldValue);

                Assert.Null(outcome.Error);
                Assert.Equal(0, outcome.Remaining);
                var reencoded = outcome.Frames.SelectMany(f => TestFrames.CreateRaw(f.Header.PayloadLength, (byte)f.Header.Type, (byte)f.Header.Flags, (uint)f.Header.StreamId, f.Payload)).ToArray();
                Assert.Equal(input.Bytes, reencoded);
            },
            iter: Iterations / 4,
            print: input => input.ToString());

    [Theory]
    [InlineData(0x7F_FFFF)]
    [InlineData(FrameHeader.MaxLengthFieldValue)]
    [InlineData(64 * 1024 + 1)]
    public void HugeDeclaredLength_RejectedFromTheHeaderAlone_AllocationIndependentOfTheClaim(int declared)
    {
        // Nine bytes of header, no payload at all: the decoder must not wait for, or reserve room for, the claim.
        var header = TestFrames.CreateRaw(declared, (byte)FrameType.Data, 0, 1);
        Warm();

        var outcome = DecodeCounting(ReadOnlySequenceFactory.Split(header, 2, 5), 64 * 1024);

        Assert.Equal(TunnelErrorCode.FrameSizeError, outcome.Error);
        Assert.InRange(outcome.Allocated, 0, RejectionAllocationBudget);
    }

    internal static void AssertDecoderProperties(FuzzInput input, int maxPayload)
    {
        var whole = Decode(new ReadOnlySequence<byte>(input.Bytes), maxPayload);
        var split = Decode(ReadOnlySequenceFactory.CreateSegments(input.Segments), maxPayload);
        var bytewise = Decode(ReadOnlySequenceFactory.CreateSegments([.. input.Bytes.Select(b => new[] { b })]), maxPayload);

        // Only the documented connection errors, and the same outcome however the bytes arrived.
        Assert.True(whole.Error is null or TunnelErrorCode.FrameSizeError or TunnelErrorCode.ProtocolError, $"{whole.Error} for {input}");
        Assert.Equal(whole, split);
        Assert.Equal(whole, bytewise);

        // Frames are what their headers say, within the limit, and nothing is lost or invented.
        long consumed = 0;
        foreach (var (header, payload) in whole.Frames)
        {
            Assert.Equal(header.PayloadLength, payload.Length);
            Assert.InRange(header.PayloadLength, 0, maxPayload);
            consumed += FrameHeader.Size + payload.Length;
        }

        Assert.Equal(input.Bytes.Length, consumed + whole.Remaining);
        if (whole.Error is null && whole.Remaining >= FrameHeader.Size)
        {
            // Stopped for want of bytes: the next frame's header is valid and its payload incomplete.
            var next = FrameHeader.Read(input.Bytes.AsSpan((int)consumed));
            Assert.True(FrameHeader.Size + next.PayloadLength > whole.Remaining, $"Stopped with a whole frame buffered: {input}");
        }

        // Allocation: nothing on the way, a fixed budget for the rejection.
        var counted = DecodeCounting(ReadOnlySequenceFactory.CreateSegments(input.Segments), maxPayload);
        Assert.Equal(whole.Error, counted.Error);
        Assert.InRange(counted.Allocated, 0, counted.Error is null ? 0 : RejectionAllocationBudget);
    }

    internal static DecodeOutcome Decode(ReadOnlySequence<byte> buffer, int maxPayload)
    {
        var frames = new List<(FrameHeader Header, byte[] Payload)>();
        try
        {
            while (FrameReader.TryReadFrame(ref buffer, maxPayload, out var header, out var payload))
            {
                frames.Add((header, payload.ToArray()));
            }

            return new DecodeOutcome(frames, buffer.Length, null, null);
        }
        catch (TunnelConnectionException ex)
        {
            return new DecodeOutcome(frames, buffer.Length, ex.ErrorCode, ex.Message);
        }
    }

    private static (int Frames, TunnelErrorCode? Error, long Allocated) DecodeCounting(ReadOnlySequence<byte> buffer, int maxPayload)
    {
        var frames = 0;
        TunnelErrorCode? error = null;
        var before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            while (FrameReader.TryReadFrame(ref buffer, maxPayload, out _, out _))
            {
                frames++;
            }
        }
        catch (TunnelConnectionException ex)
        {
            error = ex.ErrorCode;
        }

        return (frames, error, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>Runs every path once so lazy one-time initialisation is not counted against a case.</summary>
    private static void Warm()
    {
        foreach (var bytes in new[] { TestFrames.CreateRaw(1 << 20, 0, 0, 1), TestFrames.CreateRaw(0, 0xFF, 0, 0), TestFrames.Create(FrameType.Ping, 0, 0, new byte[8]) })
        {
            _ = DecodeCounting(new ReadOnlySequence<byte>(bytes), 16 * 1024);
        }
    }

    /// <summary>What decoding produced: the frames, the bytes left over, and the error that stopped it.</summary>
    internal sealed record DecodeOutcome(List<(FrameHeader Header, byte[] Payload)> Frames, long Remaining, TunnelErrorCode? Error, string? Message)
    {
        public bool Equals(DecodeOutcome? other)
            => other is not null && Remaining == other.Remaining && Error == other.Error && Message == other.Message
                && Frames.Count == other.Frames.Count
                && Frames.Zip(other.Frames).All(p => p.First.Header == p.Second.Header && p.First.Payload.AsSpan().SequenceEqual(p.Second.Payload));

        public override int GetHashCode() => HashCode.Combine(Remaining, Error, Frames.Count);
    }
}
