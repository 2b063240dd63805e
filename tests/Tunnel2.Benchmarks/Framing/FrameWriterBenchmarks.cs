using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Tunnel2.Benchmarks.Infrastructure;
using Tunnel2.Protocol.Framing;

namespace Tunnel2.Benchmarks.Framing;

/// <summary>
/// Writer throughput: the benchmark thread queues <see cref="FrameCount"/> DATA frames and then drains the output
/// pipe itself, while the writer loop (on the thread pool, as on an uplink) writes them into the pipe. One writer
/// and its loop live for the whole run, as one lives for a whole uplink, so the numbers are the steady state.
/// <para>
/// <see cref="FrameWriter"/> flushes when its queue drains (or every 64 KiB); the baseline is the naive design it
/// replaces, the same queue with a flush after every frame. Results are per frame; MiB/s counts payload bytes.
/// Frames do not own their buffers here (no ArrayPool return), so the numbers are the writer's alone.
/// </para>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class FrameWriterBenchmarks
{
    /// <summary>Frames per operation: 256 KiB of payload at 1 KiB, 4 MiB at 16 KiB.</summary>
    public const int FrameCount = 256;

    private byte[] _payload = [];
    private long _bytesPerOperation;
    private Pipe _coalescingPipe = null!;
    private FrameWriter _coalescing = null!;
    private Task _coalescingLoop = Task.CompletedTask;
    private Pipe _flushPerFramePipe = null!;
    private FlushPerFrameWriter _flushPerFrame = null!;
    private Task _flushPerFrameLoop = Task.CompletedTask;

    /// <summary>DATA payload per frame.</summary>
    [Params(1024, 16 * 1024)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadSize];
        Random.Shared.NextBytes(_payload);
        _bytesPerOperation = FrameCount * (long)(FrameHeader.Size + PayloadSize);

        // Default pipe thresholds (pause at 64 KiB unread, resume at 32 KiB), as a transport's output pipe.
        _coalescingPipe = new Pipe();
        _coalescing = new FrameWriter(_coalescingPipe.Writer, maxQueuedControlFrames: 10_000);
        _coalescingLoop = _coalescing.RunAsync();

        _flushPerFramePipe = new Pipe();
        _flushPerFrame = new FlushPerFrameWriter(_flushPerFramePipe.Writer);
        _flushPerFrameLoop = _flushPerFrame.RunAsync();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _coalescing.Complete();
        _flushPerFrame.Complete();
        _coalescingLoop.GetAwaiter().GetResult();
        _flushPerFrameLoop.GetAwaiter().GetResult();
        _coalescingPipe.Writer.Complete();
        _coalescingPipe.Reader.Complete();
        _flushPerFramePipe.Writer.Complete();
        _flushPerFramePipe.Reader.Complete();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = FrameCount)]
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<long> FlushPerFrame()
    {
        for (var i = 0; i < FrameCount; i++)
        {
            _flushPerFrame.TryEnqueue(OutboundFrame.Payload(FrameType.Data, FrameFlags.None, 1, _payload, 0, _payload.Length, returnBuffer: false));
        }

        return await DrainAsync(_flushPerFramePipe.Reader, _bytesPerOperation);
    }

    [Benchmark(OperationsPerInvoke = FrameCount)]
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<long> FrameWriterLoop()
    {
        for (var i = 0; i < FrameCount; i++)
        {
            _coalescing.TryEnqueue(OutboundFrame.Payload(FrameType.Data, FrameFlags.None, 1, _payload, 0, _payload.Length, returnBuffer: false));
        }

        return await DrainAsync(_coalescingPipe.Reader, _bytesPerOperation);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private static async ValueTask<long> DrainAsync(PipeReader reader, long expected)
    {
        var consumed = 0L;
        while (consumed < expected)
        {
            var result = await reader.ReadAsync();
            consumed += result.Buffer.Length;
            reader.AdvanceTo(result.Buffer.End);
        }

        return consumed;
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ThroughputColumn(c => ThroughputColumn.IntParameter(c, nameof(PayloadSize))));
        }
    }

    /// <summary>The naive single writer: same unbounded queue, same frame layout, but a flush (a send) per frame.</summary>
    private sealed class FlushPerFrameWriter
    {
        private readonly PipeWriter _output;
        private readonly Channel<OutboundFrame> _queue = Channel.CreateUnbounded<OutboundFrame>(new UnboundedChannelOptions
        {
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });

        public FlushPerFrameWriter(PipeWriter output)
        {
            _output = output;
        }

        public bool TryEnqueue(in OutboundFrame frame) => _queue.Writer.TryWrite(frame);

        public void Complete() => _queue.Writer.TryComplete();

        public async Task RunAsync()
        {
            var reader = _queue.Reader;
            while (await reader.WaitToReadAsync())
            {
                while (reader.TryRead(out var frame))
                {
                    var span = _output.GetSpan(FrameHeader.Size);
                    FrameHeader.Write(span, frame.Length, frame.Type, frame.Flags, frame.StreamId);
                    _output.Advance(FrameHeader.Size);
                    _output.Write(frame.Buffer.AsSpan(frame.Offset, frame.Length));
                    var result = await _output.FlushAsync();
                    if (result.IsCompleted || result.IsCanceled)
                    {
                        return;
                    }
                }
            }
        }
    }
}
