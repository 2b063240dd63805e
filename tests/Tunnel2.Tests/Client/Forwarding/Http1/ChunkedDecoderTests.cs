using System.Text;
using CsCheck;
using Tunnel2.Client.Forwarding.Http1;

namespace Tunnel2.Tests.Client.Forwarding.Http1;

/// <summary>The chunked decoder: any body, chunked any way and read in any segments, decodes to the same bytes; malformed framing is rejected.</summary>
public sealed class ChunkedDecoderTests
{
    private const int MaxTrailers = 16 * 1024;

    private static readonly Gen<string> s_extension = Gen.OneOf(
        Gen.Const(string.Empty),
        Gen.Const(";a=b"),
        Gen.Const(" ; name=\"quoted value\""),
        Gen.Const(";x;y=1"));

    /// <summary>A body, how it is cut into chunks (with random extensions and hex case), trailers or not, and how it is read.</summary>
    private static readonly Gen<(byte[] Body, byte[] Wire, int[] Reads)> s_case =
        Gen.Select(
            Gen.Byte.Array[0, 3000],
            Gen.Int[1, 700].Array[1, 12],
            s_extension.Array[12],
            Gen.Bool,
            Gen.Bool,
            Gen.Int[1, 400].Array[1, 40],
            (body, sizes, extensions, upper, trailers, reads) => (body, Encode(body, sizes, extensions, upper, trailers), reads));

    [Fact]
    public void Decode_AnyChunkingAnySegmentation_SameBytes()
    {
        s_case.Sample(
            c =>
            {
                var (decoded, status, consumed) = DecodeInReads(c.Wire, c.Reads);

                Assert.Equal(ChunkedStatus.Done, status);
                Assert.Equal(c.Wire.Length, consumed);
                Assert.Equal(c.Body, decoded);
            },
            iter: 2_000);
    }

    [Fact]
    public void Decode_OneByteReads_SameBytes()
    {
        var body = Encoding.ASCII.GetBytes("hello, chunked world");
        var wire = Encode(body, [3, 7, 100], ["", ";ext=1", ""], upper: true, trailers: true);

        var (decoded, status, _) = DecodeInReads(wire, [1]);

        Assert.Equal(ChunkedStatus.Done, status);
        Assert.Equal(body, decoded);
    }

    [Fact]
    public void Decode_Trailers_CollectedForTheFieldParser()
    {
        var wire = "5\r\nhello\r\n0\r\nGrpc-Status: 0\r\nX-Trailer: t\r\n\r\n"u8.ToArray();
        var decoder = default(ChunkedDecoder);

        var status = decoder.Decode(wire, MaxTrailers, out var consumed, out var written);

        Assert.Equal(ChunkedStatus.Done, status);
        Assert.Equal(wire.Length, consumed);
        Assert.Equal("hello", Encoding.ASCII.GetString(wire, 0, written));
        Assert.True(decoder.HasTrailers);
        Assert.Equal("Grpc-Status: 0\r\nX-Trailer: t\r\n\r\n", Encoding.ASCII.GetString(decoder.Trailers));
        decoder.Release();
    }

    [Fact]
    public void Decode_BytesAfterTheLastChunk_NotConsumed()
    {
        var wire = "2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"u8.ToArray();
        var decoder = default(ChunkedDecoder);

        var status = decoder.Decode(wire, MaxTrailers, out var consumed, out var written);

        Assert.Equal(ChunkedStatus.Done, status);
        Assert.Equal(12, consumed);
        Assert.Equal(2, written);
        Assert.False(decoder.HasTrailers);
    }

    [Theory]
    [InlineData("bare LF ends the chunk extension (CVE-2025-55315)", "2;\nxx\r\n0\r\n\r\n")]
    [InlineData("bare LF after the chunk size", "2\nxx\r\n0\r\n\r\n")]
    [InlineData("bare CR in the chunk extension", "2;\rxx\r\n0\r\n\r\n")]
    [InlineData("bare CR after the chunk size", "2\rxx\r\n0\r\n\r\n")]
    [InlineData("chunk size with trailing garbage", "2x\r\nxx\r\n0\r\n\r\n")]
    [InlineData("negative chunk size", "-2\r\nxx\r\n0\r\n\r\n")]
    [InlineData("no chunk size", "\r\nxx\r\n0\r\n\r\n")]
    [InlineData("0x prefix", "0x2\r\nxx\r\n0\r\n\r\n")]
    [InlineData("whitespace before the size", " 2\r\nxx\r\n0\r\n\r\n")]
    [InlineData("whitespace after the size without an extension", "2 \r\nxx\r\n0\r\n\r\n")]
    [InlineData("chunk size overflowing 64 bits", "10000000000000002\r\nxx\r\n0\r\n\r\n")]
    [InlineData("chunk data longer than its size", "2\r\nxxx\r\n0\r\n\r\n")]
    [InlineData("chunk data without CRLF", "2\r\nxx0\r\n\r\n")]
    [InlineData("chunk data ending in a bare LF", "2\r\nxx\n0\r\n\r\n")]
    [InlineData("control character in an extension", "2;a=\u0001\r\nxx\r\n0\r\n\r\n")]
    [InlineData("bare LF in the trailers", "0\r\nA: b\n\r\n")]
    [InlineData("bare LF ending the trailers", "0\r\n\n")]
    public void Decode_MalformedFraming_Invalid(string what, string wire)
    {
        foreach (var reads in new[] { new[] { wire.Length }, [1] })
        {
            var (_, status, _) = DecodeInReads(Encoding.Latin1.GetBytes(wire), reads);

            Assert.True(status == ChunkedStatus.Invalid, $"{what} (reads of {reads[0]}): {status}");
        }
    }

    [Fact]
    public void Decode_ChunkSizeLineTooLong_Invalid()
    {
        var wire = Encoding.ASCII.GetBytes("2;" + new string('e', ChunkedDecoder.MaxChunkLineLength) + "\r\nxx\r\n0\r\n\r\n");

        var (_, status, _) = DecodeInReads(wire, [wire.Length]);

        Assert.Equal(ChunkedStatus.Invalid, status);
    }

    [Fact]
    public void Decode_TrailersOverTheLimit_Invalid()
    {
        var wire = Encoding.ASCII.GetBytes("0\r\nX-Big: " + new string('t', 200) + "\r\n\r\n");
        var decoder = default(ChunkedDecoder);

        Assert.Equal(ChunkedStatus.Invalid, decoder.Decode(wire, 100, out _, out _));
        decoder.Release();
    }

    [Fact]
    public void Decode_LargestSizeThatFits_AcceptedAsNeedMore()
    {
        var decoder = default(ChunkedDecoder);

        Assert.Equal(ChunkedStatus.NeedMore, decoder.Decode("7FFFFFFFFFFFFFFF\r\nabc"u8.ToArray(), MaxTrailers, out _, out var written));
        Assert.Equal(3, written);
    }

    /// <summary>Decodes <paramref name="wire"/> read in pieces of the given sizes (repeated), each piece decoded in place as a connection does.</summary>
    private static (byte[] Decoded, ChunkedStatus Status, int Consumed) DecodeInReads(byte[] wire, int[] reads)
    {
        var decoder = default(ChunkedDecoder);
        var output = new List<byte>();
        var position = 0;
        var status = ChunkedStatus.NeedMore;
        var consumedTotal = 0;
        for (var r = 0; position < wire.Length && status == ChunkedStatus.NeedMore; r++)
        {
            var size = Math.Min(reads[r % reads.Length], wire.Length - position);
            var read = wire.AsSpan(position, size).ToArray();
            position += size;
            status = decoder.Decode(read, MaxTrailers, out var consumed, out var written);
            consumedTotal += consumed;
            output.AddRange(read.AsSpan(0, written));
        }

        decoder.Release();
        return ([.. output], status, consumedTotal);
    }

    private static byte[] Encode(byte[] body, int[] sizes, string[] extensions, bool upper, bool trailers)
    {
        var wire = new List<byte>();
        var offset = 0;
        for (var i = 0; offset < body.Length; i++)
        {
            var size = Math.Min(sizes[i % sizes.Length], body.Length - offset);
            wire.AddRange(Encoding.ASCII.GetBytes(size.ToString(upper ? "X" : "x", System.Globalization.CultureInfo.InvariantCulture) + extensions[i % extensions.Length] + "\r\n"));
            wire.AddRange(body.AsSpan(offset, size));
            wire.AddRange("\r\n"u8);
            offset += size;
        }

        wire.AddRange(Encoding.ASCII.GetBytes("0" + extensions[^1] + "\r\n"));
        if (trailers)
        {
            wire.AddRange("Grpc-Status: 0\r\n"u8);
        }

        wire.AddRange("\r\n"u8);
        return [.. wire];
    }
}
