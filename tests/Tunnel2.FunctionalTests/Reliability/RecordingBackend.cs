using System.Collections.Concurrent;
using System.Text;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>One request as the backend saw it.</summary>
internal sealed class RecordedRequest
{
    private readonly TaskCompletionSource<bool> _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public required string Method { get; init; }

    /// <summary>The request target exactly as the backend's Kestrel received it.</summary>
    public required string RawTarget { get; init; }

    public required IReadOnlyDictionary<string, string[]> Headers { get; init; }

    /// <summary>Body bytes the backend read (up to the end, or until the request was aborted); for /download, bytes written.</summary>
    public long BodyLength { get; set; }

    /// <summary>The body as Latin-1 text, first 4 KiB.</summary>
    public string BodyText { get; set; } = string.Empty;

    /// <summary>Completes with true when the request was aborted (public client gone, tunnel stream reset), false when it ended normally.</summary>
    public Task<bool> Finished => _finished.Task;

    public string? Header(string name) => Headers.TryGetValue(name, out var values) ? string.Join(", ", values) : null;

    public void Finish(bool aborted) => _finished.TrySetResult(aborted);

    public override string ToString() => $"{Method} {RawTarget} ({BodyLength} body bytes)";
}

/// <summary>
/// Backend endpoints that record what reached them, so a test can assert what the backend saw (and what it never
/// saw: a smuggled request, a slowloris head) rather than only what the public client got back.
/// <list type="table">
///   <item><term>* /rec/{**rest}</term><description>reads the whole body, answers 200 "ok {bytes}".</description></item>
///   <item><term>GET /download/{**rest}</term><description>streams 16 KiB chunks (at most 64 MiB), then waits; ends when the client goes away.</description></item>
///   <item><term>* /hang/{**rest}</term><description>never answers; ends when the request is aborted (at most 60 s).</description></item>
///   <item><term>* /early/{code}</term><description>answers that status at once without reading the request body.</description></item>
/// </list>
/// </summary>
internal sealed class RecordingBackend
{
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly Channel<RecordedRequest> _arrivals = Channel.CreateUnbounded<RecordedRequest>();

    public IReadOnlyCollection<RecordedRequest> Requests => _requests;

    /// <summary>Requests whose raw target contains <paramref name="fragment"/>.</summary>
    public RecordedRequest[] Matching(string fragment) => [.. _requests.Where(r => r.RawTarget.Contains(fragment, StringComparison.Ordinal))];

    /// <summary>Waits for the next request to arrive at the backend.</summary>
    public Task<RecordedRequest> NextArrivalAsync() => _arrivals.Reader.ReadAsync().AsTask().DefaultTimeout();

    public void Map(WebApplication app)
    {
        app.Map("/rec/{**rest}", RecordAsync);
        app.MapGet("/download/{**rest}", DownloadAsync);
        app.Map("/hang/{**rest}", HangAsync);
        app.Map("/early/{code:int}", EarlyAsync);
    }

    private RecordedRequest Arrive(HttpContext context)
    {
        var request = new RecordedRequest
        {
            Method = context.Request.Method,
            RawTarget = context.Features.GetRequiredFeature<IHttpRequestFeature>().RawTarget,
            Headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.Select(v => v ?? string.Empty).ToArray(), StringComparer.OrdinalIgnoreCase),
        };
        _requests.Enqueue(request);
        _arrivals.Writer.TryWrite(request);
        return request;
    }

    private async Task RecordAsync(HttpContext context)
    {
        var request = Arrive(context);
        var body = new List<byte>();
        try
        {
            var reader = context.Request.BodyReader;
            while (true)
            {
                var result = await reader.ReadAsync(context.RequestAborted);
                request.BodyLength += result.Buffer.Length;
                foreach (var segment in result.Buffer)
                {
                    body.AddRange(segment.Span[..Math.Min(segment.Length, Math.Max(0, 4096 - body.Count))]);
                }

                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or BadHttpRequestException || ex.GetType().Name.Contains("Connection", StringComparison.Ordinal))
        {
            request.BodyText = Encoding.Latin1.GetString([.. body]);
            request.Finish(aborted: true);
            return;
        }

        request.BodyText = Encoding.Latin1.GetString([.. body]);
        request.Finish(aborted: false);
        await context.Response.WriteAsync($"ok {request.BodyLength}");
    }

    private async Task DownloadAsync(HttpContext context)
    {
        var request = Arrive(context);
        var chunk = new byte[16 * 1024];
        Array.Fill(chunk, (byte)'d');
        try
        {
            // Bounded: 4,096 chunks of 16 KiB at most; the test's client goes away long before.
            for (var i = 0; i < 4096; i++)
            {
                context.RequestAborted.ThrowIfCancellationRequested();
                await context.Response.Body.WriteAsync(chunk, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                request.BodyLength += chunk.Length;
            }

            // Kestrel completes writes to a connection the peer has closed without throwing, and RequestAborted fires a
            // moment later: so the end of the loop proves nothing. A download is only over when the request is aborted.
            await Task.Delay(TimeSpan.FromSeconds(30), context.RequestAborted);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException || ex.GetType().Name.Contains("Connection", StringComparison.Ordinal))
        {
            request.Finish(aborted: true);
            return;
        }

        request.Finish(aborted: false);
    }

    /// <summary>Answers at once with the status from the route, without reading the request body (C8).</summary>
    private async Task EarlyAsync(HttpContext context)
    {
        var request = Arrive(context);
        context.Response.StatusCode = int.Parse((string)context.Request.RouteValues["code"]!, System.Globalization.CultureInfo.InvariantCulture);
        await context.Response.WriteAsync("early");
        request.Finish(aborted: false);
    }

    private async Task HangAsync(HttpContext context)
    {
        var request = Arrive(context);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(60), context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            request.Finish(aborted: true);
            return;
        }

        request.Finish(aborted: false);
    }
}
