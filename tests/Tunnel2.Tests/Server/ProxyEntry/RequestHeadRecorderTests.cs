using System.IO.Pipelines;
using System.Text;
using Tunnel2.Server.ProxyEntry;

namespace Tunnel2.Tests.Server.ProxyEntry;

public sealed class RequestHeadRecorderTests
{
    private const int MaxHeadSize = 256;

    [Theory]
    [InlineData("GET /a HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret\r\n\r\n", "keep-alive, X-Secret")]
    [InlineData("GET /a HTTP/1.1\r\nconnection:close,X-Secret \r\nHost: h\r\n\r\n", "close,X-Secret")]
    [InlineData("GET /a HTTP/1.0\r\nConnection: keep-alive\r\nX: 1\r\nCONNECTION:\tX-Secret\r\n\r\n", "keep-alive, X-Secret")]
    [InlineData("GET /a HTTP/1.1\nConnection: keep-alive, X\n\n", "keep-alive, X")]
    [InlineData("GET /a:b HTTP/1.1\r\nConnection: Upgrade, X\r\n\r\n", "Upgrade, X")]
    public void TryReadConnectionField_ReturnsTheFieldAsSent(string head, string expected)
    {
        Assert.True(RequestHeadRecorder.TryReadConnectionField(Encoding.Latin1.GetBytes(head), out var value));
        Assert.Equal(expected, value);
    }

    [Fact]
    public void TryReadConnectionField_NoField_Null()
    {
        Assert.True(RequestHeadRecorder.TryReadConnectionField("GET / HTTP/1.1\r\nHost: h\r\n\r\n"u8, out var value));
        Assert.Null(value);
    }

    [Fact]
    public void TryReadConnectionField_ReadsOnlyTheLastHead_NotWhatABodyBeforeItForged()
    {
        // What precedes the head (the end of the previous request's body) may look like a head of its own.
        var recorded = "xx\r\nGET /forged HTTP/1.1\r\nConnection: keep-alive, X-Forged\r\n\r\n"
            + "POST /real HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n";

        Assert.True(RequestHeadRecorder.TryReadConnectionField(Encoding.Latin1.GetBytes(recorded), out var value));
        Assert.Equal("keep-alive", value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("GET / HTTP/1.1\r\nConnection: keep-alive, X\r\n")]
    [InlineData("Connection: keep-alive, X\r\n\r\n")]
    [InlineData("GET / HTTP/2.0\r\nConnection: keep-alive, X\r\n\r\n")]
    [InlineData("garbage\r\nConnection: keep-alive, X\r\n\r\n")]
    public void TryReadConnectionField_NotAWholeHead_False(string recorded)
        => Assert.False(RequestHeadRecorder.TryReadConnectionField(Encoding.Latin1.GetBytes(recorded), out _));

    [Fact]
    public async Task Recorder_HeadParsedInPieces_IsTakenWhole()
    {
        var (pipe, recorder) = Create();

        await WriteAsync(pipe, "GET /a HTTP/1.1\r\nConnection: keep-");
        await ConsumeAsync(recorder, "GET /a HTTP/1.1\r\n".Length);
        await WriteAsync(pipe, "alive, X-Secret\r\n\r\n");
        await ConsumeAllAsync(recorder);

        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

        Assert.True(recorder.TryGetConnectionField(out var value));
        Assert.Equal("keep-alive, X-Secret", value);
    }

    [Fact]
    public async Task Recorder_BodyOfKnownLength_IsSkipped_NextHeadIsFound()
    {
        var (pipe, recorder) = Create();
        const string Body = "GET /forged HTTP/1.1\r\nConnection: keep-alive, X-Forged\r\n\r\n";

        await WriteAsync(pipe, "POST /a HTTP/1.1\r\nContent-Length: " + Body.Length + "\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: Body.Length, upgrade: false);
        Assert.True(recorder.TryGetConnectionField(out var first));
        Assert.Null(first);

        // The body and the next head arrive in one segment; the parser reads the body first, then the head.
        await WriteAsync(pipe, Body + "GET /b HTTP/1.1\r\nConnection: close, X-B\r\n\r\n");
        await ConsumeAsync(recorder, Body.Length);
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

        Assert.True(recorder.TryGetConnectionField(out var second));
        Assert.Equal("close, X-B", second);
    }

    [Fact]
    public async Task Recorder_ChunkedBodyLongerThanTwoHeads_KeepsOnlyWhatMayBeTheNextHead()
    {
        var (pipe, recorder) = Create();

        await WriteAsync(pipe, "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: false, bodyLength: -1, upgrade: false);

        for (var i = 0; i < 20; i++)
        {
            await WriteAsync(pipe, "40\r\n" + new string((char)('a' + i), 64) + "\r\n");
            await ConsumeAllAsync(recorder);
        }

        await WriteAsync(pipe, "0\r\n\r\n");
        await ConsumeAllAsync(recorder);
        await WriteAsync(pipe, "GET /b HTTP/1.1\r\nConnection: keep-alive, X-B\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

        Assert.True(recorder.TryGetConnectionField(out var value));
        Assert.Equal("keep-alive, X-B", value);
    }

    [Fact]
    public async Task Recorder_EachEndHead_ForgetsThePreviousRequestsField()
    {
        var (pipe, recorder) = Create();

        await WriteAsync(pipe, "GET /a HTTP/1.1\r\nConnection: keep-alive, X-A\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);
        await WriteAsync(pipe, "GET /b HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

        Assert.True(recorder.TryGetConnectionField(out var value));
        Assert.Equal("keep-alive", value);

        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);
        Assert.False(recorder.TryGetConnectionField(out _));
    }

    [Fact]
    public async Task Recorder_ReadsThatWaitForBytes_CompleteWithThemAndRecord()
    {
        var (pipe, recorder) = Create();

        // Bounded: two requests, each read issued before its bytes arrive (a keep-alive connection waiting).
        for (var i = 0; i < 2; i++)
        {
            var read = recorder.ReadAsync().AsTask();
            Assert.False(read.IsCompleted);
            await WriteAsync(pipe, $"GET /{i} HTTP/1.1\r\nConnection: keep-alive, X-{i}\r\n\r\n");
            var result = await read.WaitAsync(TimeSpan.FromSeconds(10));
            recorder.AdvanceTo(result.Buffer.End);
            recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

            Assert.True(recorder.TryGetConnectionField(out var value));
            Assert.Equal($"keep-alive, X-{i}", value);
        }
    }

    [Fact]
    public async Task Recorder_WaitingRead_CancelledOrFailed_ReportsItToTheParser()
    {
        var (pipe, recorder) = Create();

        var cancelled = recorder.ReadAsync().AsTask();
        recorder.CancelPendingRead();
        var result = await cancelled.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(result.IsCanceled);
        recorder.AdvanceTo(result.Buffer.Start);

        var failed = recorder.ReadAsync().AsTask();
        await pipe.Writer.CompleteAsync(new IOException("reset by peer"));
        var error = await Assert.ThrowsAsync<IOException>(() => failed.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("reset by peer", error.Message);
    }

    [Theory]
    [InlineData("\u0016\u0003\u0001\u0002\u0000")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    public async Task Recorder_TlsOrHttp2_NeverRecords(string start)
    {
        var (pipe, recorder) = Create();

        await WriteAsync(pipe, start);
        await ConsumeAllAsync(recorder);
        await WriteAsync(pipe, "GET /a HTTP/1.1\r\nConnection: keep-alive, X\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: false);

        Assert.False(recorder.IsRecording);
        Assert.False(recorder.TryGetConnectionField(out _));
    }

    [Fact]
    public async Task Recorder_AfterAnUpgrade_StopsRecording()
    {
        var (pipe, recorder) = Create();

        await WriteAsync(pipe, "GET /ws HTTP/1.1\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\n\r\n");
        await ConsumeAllAsync(recorder);
        recorder.EndHead(needConnectionField: true, bodyLength: 0, upgrade: true);

        Assert.True(recorder.TryGetConnectionField(out var value));
        Assert.Equal("Upgrade, X-A", value);
        Assert.False(recorder.IsRecording);
    }

    private static (Pipe Pipe, RequestHeadRecorder Recorder) Create()
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 0, useSynchronizationContext: false));
        var transport = new DuplexPipe(pipe.Reader, new Pipe().Writer);
        return (pipe, new RequestHeadRecorder(transport, MaxHeadSize));
    }

    private static async Task WriteAsync(Pipe pipe, string text)
        => await pipe.Writer.WriteAsync(Encoding.Latin1.GetBytes(text)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    private static async Task ConsumeAsync(PipeReader reader, int count)
    {
        var result = await reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        reader.AdvanceTo(result.Buffer.GetPosition(count));
    }

    private static async Task ConsumeAllAsync(PipeReader reader)
    {
        var result = await reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        reader.AdvanceTo(result.Buffer.End);
    }

    private sealed record DuplexPipe(PipeReader Input, PipeWriter Output) : IDuplexPipe;
}
