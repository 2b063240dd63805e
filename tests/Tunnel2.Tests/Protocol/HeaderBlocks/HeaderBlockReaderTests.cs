using Tunnel2.Protocol.HeaderBlocks;
using static Tunnel2.Tests.Protocol.HeaderBlocks.HeaderBlockTestData;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

public class HeaderBlockReaderTests
{
    private const byte Request = (byte)HeaderBlockKind.Request;
    private const byte Response = (byte)HeaderBlockKind.Response;
    private const byte Trailers = (byte)HeaderBlockKind.Trailers;

    public static TheoryData<string, byte[]> MalformedBlocks()
    {
        var ageIndex = (byte)StaticTable.FindName("Age");
        var data = new TheoryData<string, byte[]>
        {
            { "empty block", [] },
            { "kind 0", [0x0] },
            { "kind 4", [0x4] },
            { "kind 0xFF", [0xFF, 0x00, 0xC8] },
            { "request without method", [Request] },
            { "request without target", [Request, 1] },
            { "request with empty target", [Request, 1, 0] },
            { "method code past the table", [Request, (byte)StaticTable.MethodCount, 1, (byte)'/'] },
            { "method code 0xFF", [Request, 0xFF, 1, (byte)'/'] },
            { "literal method empty", [Request, 0, 0, 1, (byte)'/'] },
            { "literal method with space", [Request, 0, 3, (byte)'G', (byte)' ', (byte)'T', 1, (byte)'/'] },
            { "literal method with 0x80", [Request, 0, 1, 0x80, 1, (byte)'/'] },
            { "literal method truncated", [Request, 0, 5, (byte)'G', (byte)'E'] },
            { "target with CR", [Request, 1, 2, (byte)'/', 0x0D] },
            { "target with LF", [Request, 1, 2, (byte)'/', 0x0A] },
            { "target with NUL", [Request, 1, 2, (byte)'/', 0x00] },
            { "target with DEL", [Request, 1, 2, (byte)'/', 0x7F] },
            { "target truncated", [Request, 1, 4, (byte)'/', (byte)'a'] },
            { "response truncated status", [Response, 0x00] },
            { "status 0", [Response, 0x00, 0x00] },
            { "status 99", [Response, 0x00, 99] },
            { "status 1000", [Response, 0x03, 0xE8] },
            { "status 65535", [Response, 0xFF, 0xFF] },
            { "name index past the table", [Trailers, (byte)StaticTable.NameCount, 0] },
            { "name index 127", [Trailers, 127, 0] },
            { "name index 128", [Trailers, 128, 0] },
            { "name index 0xFF", [Trailers, 0xFF, 0] },
            { "literal name empty", [Trailers, 0, 0, 0] },
            { "literal name with space", [Trailers, 0, 2, (byte)'a', (byte)' ', 0] },
            { "literal name with colon", [Trailers, 0, 2, (byte)'a', (byte)':', 0] },
            { "literal name with CR", [Trailers, 0, 2, (byte)'a', 0x0D, 0] },
            { "literal name with 0xE9", [Trailers, 0, 2, (byte)'a', 0xE9, 0] },
            { "literal name truncated", [Trailers, 0, 3, (byte)'a'] },
            { "field without value", [Trailers, ageIndex] },
            { "value truncated", [Trailers, ageIndex, 3, (byte)'1'] },
            { "value with CR", [Trailers, ageIndex, 2, (byte)'1', 0x0D] },
            { "value with LF", [Trailers, ageIndex, 2, 0x0A, (byte)'1'] },
            { "value with NUL", [Trailers, ageIndex, 1, 0x00] },
            { "value with DEL", [Trailers, ageIndex, 1, 0x7F] },
            { "value with 0x01", [Trailers, ageIndex, 1, 0x01] },
            { "value with 0x1F", [Trailers, ageIndex, 1, 0x1F] },
            { "length with five 7-bit groups", [Trailers, ageIndex, 0x81, 0x80, 0x80, 0x80, 0x00] },
            { "length continuation never ends", [Trailers, ageIndex, 0x80] },
            { "length larger than the block", [Trailers, ageIndex, 0xFF, 0xFF, 0xFF, 0x7F, (byte)'x'] },
            { "bad field after a good one", [Trailers, ageIndex, 1, (byte)'1', ageIndex, 1, 0x0A] },
        };
        return data;
    }

    [Theory]
    [MemberData(nameof(MalformedBlocks))]
    public void Read_MalformedBlock_ReturnsErrorWithoutThrowing(string name, byte[] block)
    {
        _ = name;

        var error = TryDecode(block);

        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Read_BadSecondField_StillReportsTheFirst()
    {
        // Fields reach the handler as they are read; the caller must discard them when Read returns an error.
        var ageIndex = (byte)StaticTable.FindName("Age");
        byte[] block = [Trailers, ageIndex, 1, (byte)'1', ageIndex, 1, 0x0A];
        var handler = new CollectingHandler(block);

        Assert.NotNull(HeaderBlockReader.Read(block, ref handler, 1024));
        Assert.Single(handler.Fields);
    }

    [Fact]
    public void Read_TruncatedAtEveryLength_RejectedUnlessAtAFieldBoundary()
    {
        var (block, boundaries) = Encode(
            HeaderBlockKind.Request,
            "PATCH",
            "/items/7?x=1",
            0,
            [("Host", "example.test"), ("X-Custom", "abc"), ("Accept", ""), ("Content-Length", "12345")]);
        var full = Decode(block);

        for (var length = 0; length < block.Length; length++)
        {
            var truncated = block.AsSpan(0, length).ToArray();
            var handler = new CollectingHandler(truncated);
            var error = HeaderBlockReader.Read(truncated, ref handler, 64 * 1024);

            if (boundaries.Contains(length))
            {
                // A shorter block is a valid block with fewer fields: the frame length, not the block, says where it ends.
                Assert.Null(error);
                Assert.Equal(full.Fields.Take(boundaries.IndexOf(length)).Select(f => (f.Name, f.ValueText)), handler.Fields.Select(f => (f.Name, f.ValueText)));
            }
            else
            {
                Assert.False(error is null, $"A block cut to {length} of {block.Length} bytes was accepted.");
            }
        }
    }

    [Fact]
    public void Read_ResponseTruncatedAtEveryLength_Rejected()
    {
        var (block, boundaries) = Encode(HeaderBlockKind.Response, null, null, 503, [("Retry-After", "5"), ("X-Reason", "overloaded")]);

        for (var length = 0; length < block.Length; length++)
        {
            var error = TryDecode(block.AsSpan(0, length).ToArray());
            Assert.Equal(boundaries.Contains(length), error is null);
        }
    }

    [Fact]
    public void Read_HeaderListAtLimit_Accepted()
    {
        // Each field counts name + value + 32 (RFC 9113 §6.5.2): 1 + 31 + 32 = 64 bytes.
        var fields = Enumerable.Range(0, 16).Select(i => ($"{(char)('a' + i)}", new string('v', 31))).ToArray();
        var block = Trailers(fields);

        Assert.Null(TryDecode(block, maxHeaderListSize: 16 * 64));
        Assert.NotNull(TryDecode(block, maxHeaderListSize: (16 * 64) - 1));
    }

    [Fact]
    public void Read_HeaderListLimit_CountsTableNamesWithTheirDecodedLength()
    {
        // "Content-Security-Policy" is 23 characters but one byte on the wire. The limit is on the decoded list,
        // so the field costs 23 + 41 + 32 = 96, not 41 + 32 = 73.
        var block = Trailers(("Content-Security-Policy", new string('x', 41)));

        Assert.Null(TryDecode(block, maxHeaderListSize: 96));
        Assert.NotNull(TryDecode(block, maxHeaderListSize: 95));
    }

    [Fact]
    public void Read_ManySmallFields_HitTheLimitByOverhead()
    {
        // Empty table-name fields are 2 bytes on the wire but cost at least 32 each: a block cannot smuggle an
        // unbounded count of fields past the limit.
        var ageIndex = (byte)StaticTable.FindName("Age");
        var block = new byte[1 + (2 * 100)];
        block[0] = Trailers;
        for (var i = 0; i < 100; i++)
        {
            block[1 + (2 * i)] = ageIndex;
        }

        Assert.Null(TryDecode(block, maxHeaderListSize: 100 * (3 + 32)));
        Assert.NotNull(TryDecode(block, maxHeaderListSize: 1024));
    }

    [Fact]
    public void Read_NonMinimalLength_Accepted()
    {
        // LEB128 with a redundant zero group still says 1; the reader accepts it (only the 4-byte cap is a rule).
        byte[] block = [Trailers, (byte)StaticTable.FindName("Age"), 0x81, 0x00, (byte)'7'];

        var field = Assert.Single(Decode(block).Fields);

        Assert.Equal("7", field.ValueText);
    }
}
