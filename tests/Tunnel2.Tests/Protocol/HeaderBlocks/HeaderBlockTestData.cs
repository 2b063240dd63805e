using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

/// <summary>Encoding helpers: header blocks as arrays, with the offsets where each part ends.</summary>
internal static class HeaderBlockTestData
{
    public static byte[] Request(string method, string target, params (string Name, string Value)[] fields)
        => Encode(HeaderBlockKind.Request, method, target, 0, fields).Block;

    public static byte[] Response(int status, params (string Name, string Value)[] fields)
        => Encode(HeaderBlockKind.Response, null, null, status, fields).Block;

    public static byte[] Trailers(params (string Name, string Value)[] fields)
        => Encode(HeaderBlockKind.Trailers, null, null, 0, fields).Block;

    /// <returns>The block and the lengths after the head and after each field: the only places a block may end.</returns>
    public static (byte[] Block, List<int> Boundaries) Encode(HeaderBlockKind kind, string? method, string? target, int status, (string Name, string Value)[] fields)
    {
        var buffer = new byte[64 * 1024];
        var writer = new HeaderBlockWriter(buffer);
        switch (kind)
        {
            case HeaderBlockKind.Request:
                writer.WriteRequestHead(method!, target);
                break;
            case HeaderBlockKind.Response:
                writer.WriteResponseHead(status);
                break;
            default:
                writer.WriteTrailersHead();
                break;
        }

        var boundaries = new List<int> { writer.Length };
        foreach (var (name, value) in fields)
        {
            Assert.Equal(HeaderFieldResult.Written, writer.WriteField(name, value));
            boundaries.Add(writer.Length);
        }

        Assert.False(writer.Overflowed);
        return (writer.WrittenSpan.ToArray(), boundaries);
    }

    public static CollectingHandler Decode(byte[] block, int maxHeaderListSize = 64 * 1024)
    {
        var handler = new CollectingHandler(block);
        var error = HeaderBlockReader.Read(block, ref handler, maxHeaderListSize);
        Assert.Null(error);
        return handler;
    }

    public static string? TryDecode(byte[] block, int maxHeaderListSize = 64 * 1024)
    {
        var handler = new CollectingHandler(block);
        return HeaderBlockReader.Read(block, ref handler, maxHeaderListSize);
    }
}
