using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Tunnel2.Tests.Protocol.HeaderBlocks;
using Tunnel2.Tests.Protocol.Multiplexing;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>What one fuzz case did to a connection.</summary>
internal sealed record ConnectionOutcome(
    TunnelRole Role,
    Exception? CloseReason,
    TunnelErrorCode CloseErrorCode,
    IReadOnlyList<TunnelErrorCode> GoAwaysSent,
    IReadOnlyList<Exception> UnexpectedErrors,
    int ActiveStreamsAfterClose,
    long StreamsOpened)
{
    public override string ToString()
        => $"{Role}: closed {CloseErrorCode} ({CloseReason?.GetType().Name}: {CloseReason?.Message}); GOAWAY sent [{string.Join(',', GoAwaysSent)}]; {StreamsOpened} streams; {UnexpectedErrors.Count} unexpected errors";
}

/// <summary>
/// Feeds fuzz input to a real <see cref="TunnelConnection"/> over an in-memory duplex pipe, as the peer, and lets the
/// connection do what production does with it: a Client connection serves the streams the peer opens (decode the
/// head, read the body, answer), a Server connection opens two streams of its own and reads their responses. Every
/// await is bounded, so a hang fails the case instead of the run.
/// </summary>
internal static class ConnectionFuzzHarness
{
    /// <summary>How long a connection may take to close after its input ended; a hang beyond this is a failure.</summary>
    public static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(5);

    private static readonly PipeOptions s_unbounded = new(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false);

    public static async Task<ConnectionOutcome> RunAsync(FuzzInput input, TunnelRole role)
    {
        var pipes = DuplexPipe.CreateConnectionPair(s_unbounded, s_unbounded);
        var unexpected = new ConcurrentQueue<Exception>();
        var work = new ConcurrentQueue<Task>();
        var handler = role == TunnelRole.Client ? new ServingHandler(unexpected, work) : null;
        var connection = new TunnelConnection(pipes.Transport, new TunnelConnectionOptions
        {
            Role = role,
            Limits = new TunnelLimits { MaxConcurrentStreams = 64 },
            StreamHandler = handler,
            Name = "fuzz",
        });

        var run = connection.RunAsync();
        var written = DrainAsync(pipes.Application.Input);
        var output = pipes.Application.Output;
        var (first, following) = FirstFrameFirst(input);
        var segments = new Queue<byte[]>(following);

        // The first write carries the peer's first frame whole when it parses, so a Server connection can open its own
        // streams before the rest arrives and the fuzzed frames that name them meet live streams. A whole first frame
        // either makes the connection ready (SETTINGS) or closes it (anything else), so the wait always ends.
        await WriteAsync(output, first ?? segments.Dequeue());
        if (role == TunnelRole.Server && first is not null)
        {
            var opened = OpenLocalStreamsAsync(connection, unexpected, work);
            await Task.WhenAny(opened, connection.Closed).TimeoutAfter(CaseTimeout);
        }

        while (segments.TryDequeue(out var segment))
        {
            await WriteAsync(output, segment);

            // Let the read loop run between segments, as a socket's reads would interleave with it.
            await Task.Yield();
        }

        await output.CompleteAsync();
        await run.TimeoutAfter(CaseTimeout);
        var sent = await written.TimeoutAfter(CaseTimeout);
        while (work.TryDequeue(out var task))
        {
            await task.TimeoutAfter(CaseTimeout);
        }

        await connection.DisposeAsync().AsTask().TimeoutAfter(CaseTimeout);
        return new ConnectionOutcome(
            role,
            connection.CloseReason,
            connection.CloseErrorCode,
            FuzzInputs.GoAwayCodes(sent),
            [.. unexpected],
            connection.ActiveStreamCount,
            connection.StreamsOpened);
    }

    /// <summary>
    /// The documented outcomes (docs/protocol.md §3.1, §6): the connection closes; its close reason is a
    /// <see cref="TunnelConnectionException"/>; a protocol error it detected went out as GOAWAY with that code; stream
    /// work failed only with stream exceptions; no stream is left behind.
    /// </summary>
    public static void AssertDocumentedOutcome(ConnectionOutcome outcome, FuzzInput input)
    {
        var context = $"{outcome} for {input}";
        Assert.True(outcome.CloseReason is TunnelConnectionException, $"Close reason is not a TunnelConnectionException: {context}");
        Assert.True(outcome.UnexpectedErrors.Count == 0, $"Stream work threw {string.Join("; ", outcome.UnexpectedErrors)}: {context}");
        Assert.True(outcome.ActiveStreamsAfterClose == 0, $"{outcome.ActiveStreamsAfterClose} streams left in the table: {context}");

        // The peer's own error GOAWAY ends the connection with the peer's code, whatever it is; otherwise
        // INTERNAL_ERROR only comes from an exception the read loop did not expect.
        var peerClosed = outcome.CloseReason!.Message.StartsWith("The peer sent GOAWAY", StringComparison.Ordinal);
        Assert.True(peerClosed || outcome.CloseErrorCode != TunnelErrorCode.InternalError, $"The connection failed unexpectedly (INTERNAL_ERROR): {context}");

        // A connection error this side detected is announced with GOAWAY carrying its code. The exceptions: the
        // transport simply ended (CONNECTION_LOST), or the peer's GOAWAY ended the connection (nothing to send back).
        if (outcome.CloseErrorCode is not (TunnelErrorCode.ConnectionLost or TunnelErrorCode.NoError) && !peerClosed)
        {
            Assert.True(outcome.GoAwaysSent.Contains(outcome.CloseErrorCode), $"Closed with {outcome.CloseErrorCode} but sent no GOAWAY with it: {context}");
        }
    }

    /// <returns>The first frame's bytes when the input starts with a whole frame (else null), and the segments after it.</returns>
    private static (byte[]? First, IEnumerable<byte[]> Following) FirstFrameFirst(FuzzInput input)
    {
        var sequence = new ReadOnlySequence<byte>(input.Bytes);
        var firstEnd = 0;
        try
        {
            if (FrameReader.TryReadFrame(ref sequence, FrameHeader.MaxLengthFieldValue, out _, out _))
            {
                firstEnd = input.Bytes.Length - (int)sequence.Length;
            }
        }
        catch (TunnelConnectionException)
        {
        }

        if (firstEnd == 0)
        {
            return (null, input.Segments);
        }

        var rest = new FuzzInput(input.Bytes[firstEnd..], FuzzInputs.Normalize([.. input.SplitPoints.Select(p => p - firstEnd)], input.Bytes.Length - firstEnd), input.Description);
        return (input.Bytes[..firstEnd], rest.Segments);
    }

    private static async Task WriteAsync(PipeWriter output, byte[] segment)
    {
        if (segment.Length > 0)
        {
            await output.WriteAsync(segment).AsTask().TimeoutAfter(CaseTimeout);
        }
    }

    /// <summary>Everything the connection wrote, until it completed its output.</summary>
    private static async Task<byte[]> DrainAsync(PipeReader input)
    {
        var written = new ArrayBufferWriter<byte>();
        while (true)
        {
            var result = await input.ReadAsync();
            foreach (var segment in result.Buffer)
            {
                written.Write(segment.Span);
            }

            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                await input.CompleteAsync();
                return written.WrittenSpan.ToArray();
            }
        }
    }

    /// <summary>As the TunnelServer does per public request: open a stream, send a head and a small body, read the answer.</summary>
    private static async Task OpenLocalStreamsAsync(TunnelConnection connection, ConcurrentQueue<Exception> unexpected, ConcurrentQueue<Task> work)
    {
        try
        {
            await connection.Ready;
        }
        catch (TunnelStreamException)
        {
            return;
        }

        for (var i = 0; i < 2 && connection.TryOpenStream(out var stream); i++)
        {
            var opened = stream;
            work.Enqueue(Guard(unexpected, async () =>
            {
                if (!opened.SendHead(TunnelStreamTestExtensions.RequestHead("/local"), endStream: false))
                {
                    return;
                }

                await opened.WriteAsync("hi"u8.ToArray(), endStream: true, CancellationToken.None);
                using var head = await opened.ReadHeadersAsync();
                var decoded = default(IgnoringHandler);
                _ = HeaderBlockReader.Read(head.Span, ref decoded, 64 * 1024);
                await ReadToEndAsync(opened.Input);
            }));
        }
    }

    private static async Task ReadToEndAsync(PipeReader input)
    {
        while (true)
        {
            var result = await input.ReadAsync();
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                await input.CompleteAsync();
                return;
            }
        }
    }

    /// <summary>Runs <paramref name="body"/>; stream exceptions are the documented way a stream ends, anything else is recorded.</summary>
    private static async Task Guard(ConcurrentQueue<Exception> unexpected, Func<Task> body)
    {
        try
        {
            await Task.Run(body);
        }
        catch (Exception ex) when (ex is TunnelStreamException or OperationCanceledException)
        {
        }
        catch (Exception ex)
        {
            unexpected.Enqueue(ex);
        }
    }

    /// <summary>Serves peer-opened streams as the TunnelClient's forwarder does, with a canned answer instead of a backend.</summary>
    private sealed class ServingHandler(ConcurrentQueue<Exception> unexpected, ConcurrentQueue<Task> work) : ITunnelStreamHandler
    {
        public void OnStreamOpened(TunnelStream stream) => work.Enqueue(Guard(unexpected, async () =>
        {
            string? error;
            using (var head = await stream.ReadHeadersAsync())
            {
                var decoded = default(IgnoringHandler);
                error = HeaderBlockReader.Read(head.Span, ref decoded, 64 * 1024);
            }

            if (error is not null)
            {
                stream.Reset(TunnelErrorCode.RequestInvalid, error);
                return;
            }

            await ReadToEndAsync(stream.Input);
            if (stream.SendHead(HeaderBlockTestData.Response(200, ("content-type", "text/plain")), endStream: false))
            {
                await stream.WriteAsync("ok"u8.ToArray(), endStream: true, CancellationToken.None);
            }
        }));
    }

    private struct IgnoringHandler : IHeaderBlockHandler
    {
        public readonly void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        {
        }

        public readonly void OnResponseHead(int statusCode)
        {
        }

        public readonly void OnTrailersHead()
        {
        }

        public readonly void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
        }
    }
}
