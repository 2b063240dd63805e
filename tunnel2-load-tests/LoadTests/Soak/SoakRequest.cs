using System.Buffers;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;

namespace Tunnel2.LoadTests.Soak;

/// <summary>The request shapes of the soak mix.</summary>
internal enum SoakKind
{
    /// <summary><c>GET /loadtest/get</c>: a small JSON body.</summary>
    Get,

    /// <summary><c>GET /loadtest/bytes/{n}?seed=S</c>: n deterministic bytes, every one checked.</summary>
    Bytes,

    /// <summary><c>POST /loadtest/echo</c> with a deterministic body; the echo is checked byte for byte.</summary>
    Echo,

    /// <summary><c>GET /loadtest/stream/{chunks}?size=N&amp;delayMs=D</c>: a chunked body (no Content-Length) that takes a while.</summary>
    Stream,

    /// <summary><c>GET /loadtest/delay/{ms}</c>: a request that is in flight for a while before its head.</summary>
    Delay,
}

/// <summary>How one soak request ended.</summary>
internal enum SoakClass
{
    /// <summary>2xx, and the body is complete and correct.</summary>
    Ok,

    /// <summary>
    /// A clear error, which a client can tell from success: 502/503/504, a connection that failed before any response
    /// byte, a body aborted mid-way (the connection ended without the body's end), or the harness's own deadline.
    /// </summary>
    Error,

    /// <summary>
    /// What must never happen: a body that ended cleanly but is shorter or longer than announced or expected, wrong
    /// content, or a status outside 2xx and 502–504.
    /// </summary>
    Bad,
}

/// <summary>One request of the mix: what to send and what must come back.</summary>
internal sealed record SoakRequest(SoakKind Kind, string PathAndQuery, long ExpectedLength, ulong Seed = 0, int ChunkSize = 0)
{
    /// <summary>Draws the next request: get 40 %, bytes 20 %, echo 15 %, stream 15 %, delay 10 %.</summary>
    public static SoakRequest Next(Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var draw = random.Next(100);
        var seed = (ulong)random.NextInt64(1, long.MaxValue);
        switch (draw)
        {
            case < 40:
                return new SoakRequest(SoakKind.Get, "loadtest/get", -1);
            case < 60:
                long[] sizes = [0, 1, 100, 4096, 65_536, 262_144, 1_048_576];
                var n = sizes[random.Next(sizes.Length)];
                return new SoakRequest(SoakKind.Bytes, string.Create(CultureInfo.InvariantCulture, $"loadtest/bytes/{n}?seed={seed}"), n, seed);
            case < 75:
                var length = random.Next(0, 64 * 1024 + 1);
                return new SoakRequest(SoakKind.Echo, "loadtest/echo", length, seed);
            case < 90:
                // 16 pieces of 4 KiB, 20 ms apart: about 300 ms of body, so kills land mid-body.
                return new SoakRequest(SoakKind.Stream, "loadtest/stream/16?size=4096&delayMs=20", 16 * 4096, ChunkSize: 4096);
            default:
                return new SoakRequest(SoakKind.Delay, "loadtest/delay/200", -1);
        }
    }

    /// <summary>Sends the request through <paramref name="invoker"/>, reads and checks the whole response. Never throws for a request-level problem.</summary>
    public async Task<SoakVerdict> ExecuteAsync(HttpMessageInvoker invoker, Uri baseUrl, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(invoker);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var request = new HttpRequestMessage(Kind == SoakKind.Echo ? HttpMethod.Post : HttpMethod.Get, new Uri(baseUrl, PathAndQuery));
        if (Kind == SoakKind.Echo)
        {
            var body = new byte[ExpectedLength];
            SoakContent.FillBytes(body, 0, Seed);
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        }

        HttpResponseMessage response;
        try
        {
            response = await invoker.SendAsync(request, deadline.Token);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new SoakVerdict(SoakClass.Error, "cancelled (run stopped)");
        }
        catch (OperationCanceledException)
        {
            return new SoakVerdict(SoakClass.Error, "timeout before the head");
        }
        catch (HttpRequestException e)
        {
            return new SoakVerdict(SoakClass.Error, $"no response ({e.HttpRequestError})");
        }

        using (response)
        {
            var status = (int)response.StatusCode;
            if (status is 502 or 503 or 504)
            {
                await DrainQuietlyAsync(response, deadline.Token);
                return new SoakVerdict(SoakClass.Error, string.Create(CultureInfo.InvariantCulture, $"status {status}"));
            }

            if (response.StatusCode != HttpStatusCode.OK)
            {
                await DrainQuietlyAsync(response, deadline.Token);
                return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"unexpected status {status}"));
            }

            var announced = response.Content.Headers.ContentLength;
            if (ExpectedLength >= 0 && announced is { } length && length != ExpectedLength)
            {
                return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"Content-Length {length}, expected {ExpectedLength}"));
            }

            if (Kind == SoakKind.Stream && announced is not null)
            {
                return new SoakVerdict(SoakClass.Bad, "a chunked backend body arrived with a Content-Length");
            }

            return await ReadAndCheckAsync(response.Content, announced, cancellationToken, deadline.Token);
        }
    }

    private async Task<SoakVerdict> ReadAndCheckAsync(HttpContent content, long? announced, CancellationToken runToken, CancellationToken token)
    {
        const int BlockSize = 64 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(BlockSize);
        var expected = ArrayPool<byte>.Shared.Rent(BlockSize);
        long total = 0;
        try
        {
            var stream = await content.ReadAsStreamAsync(token);
            int read;
            while ((read = await stream.ReadAsync(buffer.AsMemory(0, BlockSize), token)) > 0)
            {
                if (ExpectedLength >= 0)
                {
                    if (total + read > ExpectedLength)
                    {
                        return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"body longer than the {ExpectedLength} bytes expected"));
                    }

                    var want = expected.AsSpan(0, read);
                    if (Kind == SoakKind.Stream)
                    {
                        SoakContent.FillStream(want, total, ChunkSize);
                    }
                    else
                    {
                        SoakContent.FillBytes(want, total, Seed);
                    }

                    var got = buffer.AsSpan(0, read);
                    var mismatch = got.CommonPrefixLength(want);
                    if (mismatch < read)
                    {
                        return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"wrong content at byte {total + mismatch}"));
                    }
                }

                total += read;
            }
        }
        catch (OperationCanceledException) when (runToken.IsCancellationRequested)
        {
            return new SoakVerdict(SoakClass.Error, "cancelled (run stopped)");
        }
        catch (OperationCanceledException)
        {
            return new SoakVerdict(SoakClass.Error, string.Create(CultureInfo.InvariantCulture, $"timeout mid-body after {total} bytes"));
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            // The connection ended without the body's end (RST, or EOF short of Content-Length or the last chunk):
            // the client knows the body is incomplete. That is the contract for a failure after the head.
            return new SoakVerdict(SoakClass.Error, "aborted mid-body");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            ArrayPool<byte>.Shared.Return(expected);
        }

        if (ExpectedLength >= 0 && total != ExpectedLength)
        {
            return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"truncated body that looked complete: {total} of {ExpectedLength} bytes"));
        }

        if (announced is { } length && total != length)
        {
            return new SoakVerdict(SoakClass.Bad, string.Create(CultureInfo.InvariantCulture, $"body of {total} bytes with Content-Length {length}"));
        }

        if (total == 0 && Kind is SoakKind.Get or SoakKind.Delay)
        {
            return new SoakVerdict(SoakClass.Bad, "empty body that looked complete");
        }

        return SoakVerdict.Ok;
    }

    private static async Task DrainQuietlyAsync(HttpResponseMessage response, CancellationToken token)
    {
        try
        {
            await response.Content.CopyToAsync(Stream.Null, token);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or OperationCanceledException)
        {
        }
    }
}

/// <summary>The class of one finished request and, unless it is <see cref="SoakClass.Ok"/>, why.</summary>
internal readonly record struct SoakVerdict(SoakClass Class, string Reason)
{
    public static SoakVerdict Ok { get; } = new(SoakClass.Ok, "ok");
}
