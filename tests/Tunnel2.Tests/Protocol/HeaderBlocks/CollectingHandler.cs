using System.Text;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

/// <summary>A decoded field: the table index (0 for a literal), the name as decoded, and the value bytes.</summary>
internal sealed record DecodedField(int StaticIndex, string Name, byte[] Value)
{
    public string ValueText => Encoding.Latin1.GetString(Value);
}

/// <summary>Decodes a header block into objects, and checks that every span it is handed lies inside the block.</summary>
internal sealed class CollectingHandler : IHeaderBlockHandler
{
    private readonly byte[]? _block;
    private readonly int _blockLength;

    /// <param name="block">When given, every span passed to the handler must point into this array.</param>
    /// <param name="blockLength">How much of <paramref name="block"/> is the header block; all of it by default.</param>
    public CollectingHandler(byte[]? block = null, int blockLength = -1)
    {
        _block = block;
        _blockLength = blockLength < 0 ? block?.Length ?? 0 : blockLength;
    }

    public HeaderBlockKind? Kind { get; private set; }

    public int MethodCode { get; private set; }

    public string? Method { get; private set; }

    public string? Target { get; private set; }

    public int Status { get; private set; }

    public List<DecodedField> Fields { get; } = [];

    public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
    {
        Assert.Null(Kind);
        CheckInsideBlock(method);
        CheckInsideBlock(target);
        Kind = HeaderBlockKind.Request;
        MethodCode = methodCode;
        Method = methodCode == 0 ? Encoding.Latin1.GetString(method) : StaticTable.GetMethod(methodCode);
        Target = Encoding.Latin1.GetString(target);
    }

    public void OnResponseHead(int statusCode)
    {
        Assert.Null(Kind);
        Kind = HeaderBlockKind.Response;
        Status = statusCode;
    }

    public void OnTrailersHead()
    {
        Assert.Null(Kind);
        Kind = HeaderBlockKind.Trailers;
    }

    public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Assert.NotNull(Kind);
        CheckInsideBlock(name);
        CheckInsideBlock(value);
        if (staticIndex != 0)
        {
            Assert.True(name.IsEmpty, "A table name must not also carry a literal.");
        }

        Fields.Add(new DecodedField(staticIndex, staticIndex == 0 ? Encoding.Latin1.GetString(name) : StaticTable.GetName(staticIndex)!, value.ToArray()));
    }

    private void CheckInsideBlock(ReadOnlySpan<byte> span)
    {
        if (_block is null || span.IsEmpty)
        {
            return;
        }

        Assert.True(_block.AsSpan().Overlaps(span, out var offset), "The reader handed out a span outside the block.");
        Assert.InRange(offset, 0, _blockLength - span.Length);
    }
}
