using System.Buffers;
using BenchmarkDotNet.Attributes;
using Tunnel2.Benchmarks.Infrastructure;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Benchmarks.Framing;

/// <summary>
/// <see cref="FrameReader.TryReadFrame"/> over 64 DATA frames, as the uplink read loop calls it: once from one
/// contiguous buffer (the reference) and once from the same bytes cut into 4 KiB segments, the size a socket read
/// typically lands in a pipe, so headers straddle segment boundaries. Results are per frame.
/// </summary>
[MemoryDiagnoser]
public class FrameReaderBenchmarks
{
    private const int FrameCount = 64;
    private const int SegmentSize = 4 * 1024;

    /// <summary>The uplink's default <c>TunnelLimits.MaxFrameSize</c>.</summary>
    private const int MaxPayloadLength = 64 * 1024;

    private ReadOnlySequence<byte> _contiguous;
    private ReadOnlySequence<byte> _segmented;

    /// <summary>DATA payload per frame: a small body chunk, a 1 KiB chunk, and the 16 KiB minimum frame size.</summary>
    [Params(128, 1024, 16 * 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var bytes = new byte[FrameCount * (FrameHeader.Size + PayloadSize)];
        for (var i = 0; i < FrameCount; i++)
        {
            var offset = i * (FrameHeader.Size + PayloadSize);
            FrameHeader.Write(bytes.AsSpan(offset), PayloadSize, FrameType.Data, FrameFlags.None, 2 * i + 1);
            bytes.AsSpan(offset + FrameHeader.Size, PayloadSize).Fill((byte)i);
        }

        _contiguous = new ReadOnlySequence<byte>(bytes);
        _segmented = Segments.Split(bytes, SegmentSize);
        if (ReadAll(_segmented) != FrameCount * (long)PayloadSize || ReadAll(_contiguous) != FrameCount * (long)PayloadSize)
        {
            throw new InvalidOperationException("The frames did not parse back.");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = FrameCount)]
    public long SingleSegment() => ReadAll(_contiguous);

    [Benchmark(OperationsPerInvoke = FrameCount)]
    public long MultiSegment() => ReadAll(_segmented);

    private static long ReadAll(ReadOnlySequence<byte> buffer)
    {
        var payloadBytes = 0L;
        while (FrameReader.TryReadFrame(ref buffer, MaxPayloadLength, out _, out var payload))
        {
            payloadBytes += payload.Length;
        }

        return payloadBytes;
    }
}
