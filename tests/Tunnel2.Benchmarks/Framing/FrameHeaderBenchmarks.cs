using BenchmarkDotNet.Attributes;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Benchmarks.Framing;

/// <summary>
/// The 9-byte frame header on its own: <see cref="FrameHeader.Write"/> and <see cref="FrameHeader.Read"/>, and Read
/// plus the checks <see cref="FrameReader.Validate"/> applies to every received header.
/// Goal (docs/benchmarks.md, performance.md §0.2): under 10 ns and 0 B each.
/// </summary>
[MemoryDiagnoser]
public class FrameHeaderBenchmarks
{
    private readonly byte[] _destination = new byte[FrameHeader.Size];
    private readonly byte[] _encoded = new byte[FrameHeader.Size];

    // Instance fields rather than constants, so the JIT cannot fold the header into a constant store.
    private readonly int _payloadLength = 16 * 1024;
    private readonly FrameType _type = FrameType.Data;
    private readonly FrameFlags _flags = FrameFlags.EndStream;
    private readonly int _streamId = 12_345;
    private readonly int _maxPayloadLength = 64 * 1024;

    [GlobalSetup]
    public void Setup()
    {
        FrameHeader.Write(_encoded, _payloadLength, _type, _flags, _streamId);
    }

    [Benchmark]
    public void Write() => FrameHeader.Write(_destination, _payloadLength, _type, _flags, _streamId);

    [Benchmark]
    public FrameHeader Read() => FrameHeader.Read(_encoded);

    [Benchmark]
    public FrameHeader ReadAndValidate()
    {
        var header = FrameHeader.Read(_encoded);
        FrameReader.Validate(header, _maxPayloadLength);
        return header;
    }
}
