using System.IO.Pipelines;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>Adapts a connected byte stream (socket, TLS, upgraded HTTP/1.1 connection) to the pipes a <see cref="TunnelConnection"/> runs on.</summary>
public static class TunnelTransport
{
    /// <summary>
    /// 64 KiB reads: one read takes a full default DATA frame, and the buffer stays under the 85,000-byte LOH threshold.
    /// </summary>
    private const int ReadBufferSize = 64 * 1024;

    public static IDuplexPipe FromStream(Stream stream, bool leaveOpen = false)
    {
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: ReadBufferSize, minimumReadSize: 4096, leaveOpen: leaveOpen));
        var writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 16 * 1024, leaveOpen: leaveOpen));
        return new DuplexPipe(reader, writer);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
