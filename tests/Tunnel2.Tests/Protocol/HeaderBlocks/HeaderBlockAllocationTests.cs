using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

/// <summary>Allocation guard (performance.md §5): encoding and decoding a request head must not allocate.</summary>
public class HeaderBlockAllocationTests
{
    private const int Iterations = 10_000;

    [Fact]
    public void WriteThenRead_TypicalRequestHead_AllocatesNothing()
    {
        var buffer = new byte[4096];
        var handler = new CountingHandler();

        // Warm up: JIT, static tables, frozen dictionaries.
        var expected = EncodeAndDecode(buffer, ref handler);
        handler = new CountingHandler();

        var before = GC.GetAllocatedBytesForCurrentThread();
        var total = 0L;
        for (var i = 0; i < Iterations; i++)
        {
            total += EncodeAndDecode(buffer, ref handler);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.Equal(expected * Iterations, total);
        Assert.Equal(Iterations * 11, handler.Fields);
    }

    [Fact]
    public void WriteThenRead_ResponseHeadWithTrailers_AllocatesNothing()
    {
        var buffer = new byte[1024];
        var handler = new CountingHandler();
        EncodeAndDecodeResponse(buffer, ref handler);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Iterations; i++)
        {
            EncodeAndDecodeResponse(buffer, ref handler);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    private static int EncodeAndDecode(byte[] buffer, ref CountingHandler handler)
    {
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteRequestHead("GET", "/api/items?id=42&sort=desc");
        writer.WriteField("Host", "example.test");
        writer.WriteField("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        writer.WriteField("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8");
        writer.WriteField("Accept-Language", "en-US,en;q=0.5");
        writer.WriteField("Accept-Encoding", "gzip, deflate, br, zstd");
        writer.WriteField("Cookie", "session=0123456789abcdef; theme=dark");
        writer.WriteField("X-Forwarded-For", "203.0.113.7");
        writer.WriteField("X-Forwarded-Proto", "https");
        writer.WriteField("X-Forwarded-Prefix", "/session/22222222-2222-2222-2222-222222222222");
        writer.WriteField("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        writer.WriteField("X-Custom-Header", "custom");
        var error = HeaderBlockReader.Read(writer.WrittenSpan, ref handler, 64 * 1024);
        return error is null ? writer.Length : -1;
    }

    private static void EncodeAndDecodeResponse(byte[] buffer, ref CountingHandler handler)
    {
        var writer = new HeaderBlockWriter(buffer);
        writer.WriteResponseHead(200);
        writer.WriteField("Content-Type", "application/json; charset=utf-8");
        writer.WriteField("Content-Length", "1234");
        writer.WriteField("Date", "Sun, 23 Nov 2025 10:00:00 GMT");
        HeaderBlockReader.Read(writer.WrittenSpan, ref handler, 64 * 1024);

        writer = new HeaderBlockWriter(buffer);
        writer.WriteTrailersHead();
        writer.WriteField("Grpc-Status", "0");
        HeaderBlockReader.Read(writer.WrittenSpan, ref handler, 64 * 1024);
    }

    /// <summary>A struct handler: generic dispatch without boxing, as the product's handlers should be.</summary>
    private struct CountingHandler : IHeaderBlockHandler
    {
        public int Fields;
        public long Bytes;

        public void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target) => Bytes += method.Length + target.Length + methodCode;

        public void OnResponseHead(int statusCode) => Bytes += statusCode;

        public void OnTrailersHead() => Bytes++;

        public void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            Fields++;
            Bytes += name.Length + value.Length;
        }
    }
}
