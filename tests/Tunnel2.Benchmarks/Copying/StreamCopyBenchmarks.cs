using System.Buffers;
using System.IO.Pipelines;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Tunnel2.Benchmarks.Infrastructure;

namespace Tunnel2.Benchmarks.Copying;

/// <summary>
/// A body copy of 16 MiB per operation with a pooled buffer of 32 KiB or 128 KiB (the loop of YARP's StreamCopier
/// and of our forwarder): from a <see cref="MemoryStream"/> into <see cref="Stream.Null"/> (the loop alone), and into
/// a <see cref="Pipe"/> whose reader drains concurrently on the thread pool (a write and a flush per read, as the
/// forwarder pushes into a response or uplink pipe). No sockets: the numbers bound what buffer size alone changes.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class StreamCopyBenchmarks
{
    private const int BodySize = 16 * 1024 * 1024;

    private MemoryStream _source = null!;
    private Pipe _pipe = null!;
    private Task _drain = Task.CompletedTask;

    [Params(32 * 1024, 128 * 1024)]
    public int BufferSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var body = new byte[BodySize];
        Random.Shared.NextBytes(body);
        _source = new MemoryStream(body, writable: false);

        // Default thresholds (pause at 64 KiB unread, resume at 32 KiB), as Kestrel's response pipe.
        _pipe = new Pipe();
        _drain = DrainAsync(_pipe.Reader);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pipe.Writer.Complete();
        _drain.GetAwaiter().GetResult();
        _source.Dispose();
    }

    [Benchmark]
    public async Task<long> MemoryStreamToStreamNull()
    {
        _source.Position = 0;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        var copied = 0L;
        try
        {
            int read;
            while ((read = await _source.ReadAsync(buffer.AsMemory(0, BufferSize))) > 0)
            {
                await Stream.Null.WriteAsync(buffer.AsMemory(0, read));
                copied += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return copied;
    }

    [Benchmark]
    public async Task<long> MemoryStreamToPipe()
    {
        _source.Position = 0;
        var output = _pipe.Writer;
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        var copied = 0L;
        try
        {
            int read;
            while ((read = await _source.ReadAsync(buffer.AsMemory(0, BufferSize))) > 0)
            {
                var flush = await output.WriteAsync(buffer.AsMemory(0, read));
                if (flush.IsCompleted)
                {
                    break;
                }

                copied += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return copied;
    }

    private static async Task DrainAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                await reader.CompleteAsync();
                return;
            }
        }
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ThroughputColumn(_ => BodySize));
        }
    }
}
