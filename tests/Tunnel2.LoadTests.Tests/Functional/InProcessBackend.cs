using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Tunnel2.LoadTests.Tests.Functional;

/// <summary>
/// A tiny stand-in for TestBackend on real Kestrel at 127.0.0.1:0 (the harness must not reference TestBackend):
/// /loadtest/ping|get, /loadtest/echo, /loadtest/delay/{ms}, /loadtest/bytes/{n} (n zero bytes), /loadtest/info
/// (reads the body, answers its length), /fail (503), /hang (until the client gives up), and /block, which holds
/// every request until the test opens the gate.
/// </summary>
internal sealed class InProcessBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _concurrent;
    private int _maxConcurrent;

    private InProcessBackend(WebApplication app)
    {
        _app = app;
    }

    public Uri BaseUri { get; private set; } = null!;

    /// <summary>One item per request that reached /block, with the number blocked at that moment.</summary>
    public Channel<int> Blocked { get; } = Channel.CreateUnbounded<int>();

    /// <summary>Highest number of concurrent requests seen by /loadtest/delay.</summary>
    public int MaxConcurrent => Volatile.Read(ref _maxConcurrent);

    public static async Task<InProcessBackend> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var backend = new InProcessBackend(app);
        app.MapGet("/loadtest/ping", () => "pong");
        app.MapGet("/loadtest/get", () => Results.Json(new { ok = true }));
        app.MapPost("/loadtest/echo", async (HttpContext context) =>
        {
            context.Response.ContentType = "application/octet-stream";
            await context.Request.Body.CopyToAsync(context.Response.Body, context.RequestAborted);
        });
        app.MapGet("/loadtest/delay/{ms:int}", async (int ms, HttpContext context) =>
        {
            var now = Interlocked.Increment(ref backend._concurrent);
            UpdateMax(ref backend._maxConcurrent, now);
            try
            {
                await Task.Delay(ms, context.RequestAborted);
                return Results.Ok();
            }
            finally
            {
                Interlocked.Decrement(ref backend._concurrent);
            }
        });
        app.MapGet("/loadtest/bytes/{n:long}", async (long n, HttpContext context) =>
        {
            context.Response.ContentLength = n;
            var block = new byte[64 * 1024];
            for (var sent = 0L; sent < n; sent += block.Length)
            {
                await context.Response.Body.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, n - sent)), context.RequestAborted);
            }
        });
        app.MapMethods("/loadtest/info", ["PUT", "POST"], async (HttpContext context) =>
        {
            var buffer = new byte[64 * 1024];
            long length = 0;
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                length += read;
            }

            return Results.Json(new { bodyLength = length });
        });
        app.MapGet("/fail", () => Results.StatusCode(503));
        app.MapGet("/hang", async (HttpContext context) =>
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        });
        app.MapGet("/block", async (HttpContext context) =>
        {
            backend.Blocked.Writer.TryWrite(Interlocked.Increment(ref backend._concurrent));
            await backend._gate.Task.WaitAsync(context.RequestAborted);
            return Results.Ok();
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        backend.BaseUri = new Uri(address);
        return backend;
    }

    public void OpenGate() => _gate.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        OpenGate();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private static void UpdateMax(ref int max, int value)
    {
        int current;
        while (value > (current = Volatile.Read(ref max)) && Interlocked.CompareExchange(ref max, value, current) != current)
        {
        }
    }
}
