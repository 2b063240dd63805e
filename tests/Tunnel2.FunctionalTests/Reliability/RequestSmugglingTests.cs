using System.Text;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>
/// Request smuggling at the entry (reliability.md §2 D8–D10; CVE-2025-55315 class). Every attack hides a second
/// request, <c>/rec/smuggled</c>, where one reading of the message framing sees body bytes and another sees a new
/// request. Whatever Kestrel decides, the invariant is the same: the smuggled request never reaches the backend as a
/// request of its own, and the backend gets at most one request with a body framed by the tunnel itself.
/// </summary>
public sealed class RequestSmugglingTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> ObfuscatedTransferEncodings => new()
    {
        { "tab before the value", "Transfer-Encoding:\tchunked" },
        { "upper case value", "Transfer-Encoding: CHUNKED" },
        { "space before the colon", "Transfer-Encoding : chunked" },
        { "chunked then identity", "Transfer-Encoding: chunked, identity" },
        { "unknown coding", "Transfer-Encoding: xchunked" },
        { "duplicated field", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity" },
        { "vertical tab before the name", "\u000bTransfer-Encoding: chunked" },
        { "vertical tab before the value", "Transfer-Encoding: \u000bchunked" },
        { "form feed after the value", "Transfer-Encoding: chunked\u000c" },
        { "NBSP before the value", "Transfer-Encoding:\u00a0chunked" },
        { "bare LF hides the field", "X-Pad: x\nTransfer-Encoding: chunked" },
        { "obs-fold continuation", "X-Pad: x\r\n Transfer-Encoding: chunked" },
    };

    [Fact]
    public async Task D8_ContentLengthAndTransferEncoding_ChunkedWins_OneRequestWithTunnelFraming_ConnectionClosed()
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var body = $"5\r\nhello\r\n0\r\n\r\n{SmuggledRequest(tunnel)}";

        await raw.SendAsync($"POST {tunnel.Target("rec/first")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: {body.Length}\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
        var responses = await ReadAllAsync(raw, tunnel);

        // RFC 9112 §6.1: Transfer-Encoding overrides Content-Length, and the server must close after responding.
        var first = Assert.Single(backend.Matching("/rec/first"));
        Assert.Equal("hello", first.BodyText);
        Assert.NotEqual(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), first.Header("Content-Length"));
        Assert.Equal("ok 5", responses[0].BodyText);
        AssertNothingSmuggled(backend, responses);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [MemberData(nameof(ObfuscatedTransferEncodings))]
    public async Task D9_ObfuscatedTransferEncoding_NeverSmugglesARequest(string what, string transferEncoding)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);
        var body = $"0\r\n\r\n{SmuggledRequest(tunnel)}";

        await raw.SendAsync($"POST {tunnel.Target("rec/first")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nContent-Length: {body.Length}\r\n{transferEncoding}\r\n\r\n{body}");
        var responses = await ReadAllAsync(raw, tunnel);

        output.WriteLine($"{what}: {string.Join(" | ", responses)}; backend saw {string.Join(", ", backend.Requests)}");
        AssertNothingSmuggled(backend, responses);

        // Either rejected before the backend, or forwarded once with one consistent body.
        var first = backend.Matching("/rec/first");
        Assert.True(first.Length <= 1, $"{what}: the backend saw /rec/first {first.Length} times.");
        if (first.Length == 1)
        {
            Assert.Equal($"ok {first[0].BodyLength}", responses[0].BodyText);
            Assert.True(first[0].BodyLength is 0 || first[0].BodyLength == body.Length, $"{what}: body of {first[0].BodyLength} bytes matches neither framing.");
        }
        else
        {
            Assert.Equal(400, responses[0].StatusCode);
        }

        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("bare LF ends the chunk extension (CVE-2025-55315)", "2;\nxx\r\n45\r\n0\r\n\r\n")]
    [InlineData("bare LF after the chunk size", "2\nxx\r\n0\r\n\r\n")]
    [InlineData("bare CR in the chunk extension", "2;\rxx\r\n45\r\n0\r\n\r\n")]
    [InlineData("chunk size with trailing garbage", "2x\r\nxx\r\n0\r\n\r\n")]
    [InlineData("negative chunk size", "-2\r\nxx\r\n0\r\n\r\n")]
    [InlineData("chunk size overflowing 64 bits", "10000000000000002\r\nxx\r\n0\r\n\r\n")]
    [InlineData("chunk data longer than its size", "2\r\nxxx\r\n0\r\n\r\n")]
    public async Task D9_MalformedChunks_400_NeverSmugglesARequest(string what, string chunks)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        await raw.SendAsync($"POST {tunnel.Target("rec/first")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}{SmuggledRequest(tunnel)}");
        var responses = await ReadAllAsync(raw, tunnel);

        output.WriteLine($"{what}: {string.Join(" | ", responses)}; backend saw {string.Join(", ", backend.Requests)}");
        AssertNothingSmuggled(backend, responses);

        // The head was valid, so the backend may have seen /rec/first begin; its body must then have failed, and the
        // public answer is a 400 whether Kestrel or the entry gave it.
        Assert.Equal(400, responses[0].StatusCode);
        foreach (var seen in backend.Matching("/rec/first"))
        {
            Assert.True(await seen.Finished.DefaultTimeout(), $"{what}: the backend completed a request whose body was malformed.");
        }

        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    [Theory]
    [InlineData("every line", "GET {target} HTTP/1.1\nHost: {host}\nX-One: 1\n\n")]
    [InlineData("the request line", "GET {target} HTTP/1.1\nHost: {host}\r\nX-One: 1\r\n\r\n")]
    [InlineData("one field line", "GET {target} HTTP/1.1\r\nHost: {host}\nX-One: 1\r\n\r\n")]
    [InlineData("the empty line ending the head", "GET {target} HTTP/1.1\r\nHost: {host}\r\nX-One: 1\r\n\n")]
    public async Task D10_BareLineFeeds_400_BackendNeverSeesThem(string where, string request)
    {
        var backend = new RecordingBackend();
        await using var tunnel = await ReliabilityTunnel.StartAsync(output, backend);
        using var watch = new UplinkWatch(tunnel);
        await using var raw = await RawHttpConnection.ConnectAsync(tunnel.ServerUrl);

        // The entry turns Kestrel's bare-LF acceptance off (98b1ee5, the strict parsing reliability.md D10
        // recommends), so a head that a lenient front proxy and a strict backend could split differently never passes.
        await raw.SendAsync(request.Replace("{target}", tunnel.Target("rec/lf"), StringComparison.Ordinal).Replace("{host}", tunnel.Host(), StringComparison.Ordinal));
        var responses = await raw.ReadResponsesUntilClosedAsync();

        var response = Assert.Single(responses);
        Assert.True(response.StatusCode == 400, $"Bare LF in {where}: expected 400, got {response}.");
        Assert.Empty(backend.Requests);
        await watch.AssertHealthyAsync(expectedUplinks: 2);
    }

    private static string SmuggledRequest(TestTunnel tunnel) => $"GET {tunnel.Target("rec/smuggled")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\n\r\n";

    /// <summary>
    /// Reads the answer to the attack; if the server kept the connection open, sends a final request with
    /// <c>Connection: close</c> and reads until the server closes. Requests on one connection are handled in order,
    /// so anything Kestrel parsed as a separate request has reached the backend by the time the final answer arrives.
    /// </summary>
    private static async Task<List<RawHttpResponse>> ReadAllAsync(RawHttpConnection raw, TestTunnel tunnel)
    {
        var first = await raw.ReadResponseAsync();
        Assert.NotNull(first);
        var responses = new List<RawHttpResponse> { first };
        if (!raw.ClosedByPeer && !string.Equals(first.Header("Connection"), "close", StringComparison.OrdinalIgnoreCase))
        {
            await raw.SendAsync($"GET {tunnel.Target("rec/final")} HTTP/1.1\r\nHost: {tunnel.Host()}\r\nConnection: close\r\n\r\n");
            responses.AddRange(await raw.ReadResponsesUntilClosedAsync());
        }

        return responses;
    }

    private static void AssertNothingSmuggled(RecordingBackend backend, List<RawHttpResponse> responses)
    {
        var answers = string.Join(" | ", responses.Select(r => $"{r.StatusLine}: {Encoding.Latin1.GetString(r.Body.AsSpan(0, Math.Min(r.Body.Length, 80)))}"));
        Assert.True(backend.Matching("/rec/smuggled").Length == 0, $"A smuggled request reached the backend. Public answers: {answers}");
    }
}
