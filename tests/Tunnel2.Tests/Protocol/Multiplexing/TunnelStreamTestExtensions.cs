using System.Buffers;
using System.IO.Pipelines;
using Tunnel2.Protocol.HeaderBlocks;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Tunnel2.Tests.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.Multiplexing;

internal static class TunnelStreamTestExtensions
{
    /// <summary>Sends <paramref name="block"/> as HEADERS, copying it into the pooled array the stream takes over.</summary>
    public static bool SendHead(this TunnelStream stream, byte[] block, bool endStream = false)
    {
        var pooled = ArrayPool<byte>.Shared.Rent(block.Length);
        block.CopyTo(pooled, 0);
        return stream.TrySendHeaders(pooled, block.Length, endStream);
    }

    public static async Task<CollectingHandler> ReadHeadAsync(this TunnelStream stream)
    {
        using var head = await stream.ReadHeadersAsync().DefaultTimeout();
        return HeaderBlockTestData.Decode(head.Span.ToArray());
    }

    public static Task SendBytesAsync(this TunnelStream stream, byte[] data, bool endStream)
        => stream.WriteAsync(data, endStream, CancellationToken.None).DefaultTimeout();

    /// <summary>Reads until the peer's END_STREAM, consuming as it goes.</summary>
    public static async Task<byte[]> ReadToEndAsync(this PipeReader input)
    {
        var received = new List<byte>();
        while (true)
        {
            var result = await input.ReadAsync().DefaultTimeout();
            received.AddRange(result.Buffer.ToArray());
            input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return [.. received];
            }
        }
    }

    /// <summary>Reads until at least <paramref name="count"/> bytes are buffered, without consuming them.</summary>
    public static async Task<ReadResult> ReadAtLeastBufferedAsync(this PipeReader input, int count)
    {
        while (true)
        {
            var result = await input.ReadAsync().DefaultTimeout();
            if (result.Buffer.Length >= count || result.IsCompleted)
            {
                return result;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    public static byte[] RequestHead(string target = "/", params (string Name, string Value)[] fields)
        => HeaderBlockTestData.Request("GET", target, fields);

    public static byte[] ResponseHead(int status = 200, params (string Name, string Value)[] fields)
        => HeaderBlockTestData.Response(status, fields);

    public static HeaderBlockKind Kind(this CollectingHandler head) => head.Kind!.Value;
}
