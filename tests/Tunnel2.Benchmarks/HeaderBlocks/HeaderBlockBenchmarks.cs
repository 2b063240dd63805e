using BenchmarkDotNet.Attributes;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Benchmarks.HeaderBlocks;

/// <summary>
/// The header-block codec on the heads of <see cref="SampleHeads"/>: <see cref="HeaderBlockWriter"/> into a reused
/// buffer, <see cref="HeaderBlockReader.Read"/> into a non-allocating handler (field names and values stay spans).
/// Goal: 0 B for both.
/// </summary>
[MemoryDiagnoser]
public class HeaderBlockBenchmarks
{
    private readonly byte[] _buffer = new byte[4096];
    private byte[] _requestBlock = [];
    private byte[] _responseBlock = [];

    [GlobalSetup]
    public void Setup()
    {
        _requestBlock = _buffer.AsSpan(0, SampleHeads.EncodeRequest(_buffer)).ToArray();
        _responseBlock = _buffer.AsSpan(0, SampleHeads.EncodeResponse(_buffer)).ToArray();
        Console.WriteLine($"// Request head block: {_requestBlock.Length} B; response head block: {_responseBlock.Length} B.");
        if (DecodeRequest() != SampleHeads.RequestFields.Length || DecodeResponse() != SampleHeads.ResponseFields.Length)
        {
            throw new InvalidOperationException("The blocks did not decode back.");
        }
    }

    /// <returns>The block's length in bytes.</returns>
    [Benchmark]
    public int EncodeRequest() => SampleHeads.EncodeRequest(_buffer);

    /// <returns>The number of fields decoded.</returns>
    [Benchmark]
    public int DecodeRequest()
    {
        var handler = default(CountingHandler);
        return HeaderBlockReader.Read(_requestBlock, ref handler, SampleHeads.MaxHeaderListSize) is null ? handler.Fields : -1;
    }

    /// <returns>The block's length in bytes.</returns>
    [Benchmark]
    public int EncodeResponse() => SampleHeads.EncodeResponse(_buffer);

    /// <returns>The number of fields decoded.</returns>
    [Benchmark]
    public int DecodeResponse()
    {
        var handler = default(CountingHandler);
        return HeaderBlockReader.Read(_responseBlock, ref handler, SampleHeads.MaxHeaderListSize) is null ? handler.Fields : -1;
    }
}
