using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Tunnel2.FunctionalTests.Infrastructure;
using Tunnel2.Server.Tcp;
using Tunnel2.Testing;
using Xunit.Abstractions;

namespace Tunnel2.FunctionalTests;

/// <summary>
/// A real redis-server behind a raw TCP tunnel: RESP spoken over the public service port by a tiny client written
/// here (no client library between the test and the bytes). Skipped, with the reason, where redis-server is not
/// installed (tests/run-tests.sh installs the Debian package).
/// </summary>
public sealed class RedisTcpTests(ITestOutputHelper output)
{
    [RedisFact]
    public async Task Ping_AndOneMiBValue_RoundTripThroughTheTunnel_IntoTheRealServer()
    {
        await using var redis = await RedisServer.StartAsync(output);
        await using var tunnel = await StartTunnelAsync(redis);
        await using var client = await RespClient.ConnectAsync(PublicPort(tunnel));
        var value = RandomNumberGenerator.GetBytes(1024 * 1024);

        Assert.Equal("PONG", await client.CommandAsync("PING"));
        Assert.Equal("OK", await client.CommandAsync("SET", "big", value));
        Assert.Equal(value, Assert.IsType<byte[]>(await client.CommandAsync("GET", "big")));
        Assert.Equal(1024L * 1024, await client.CommandAsync("STRLEN", "big"));

        // The value is in the real server, as a client connected directly sees it.
        await using var direct = await RespClient.ConnectAsync(redis.Port);
        Assert.Equal(value, Assert.IsType<byte[]>(await direct.CommandAsync("GET", "big")));
    }

    [RedisFact]
    public async Task PipelinedBurstOf1000Incrs_EveryReplyInOrder_AndTheFinalValueIsRight()
    {
        await using var redis = await RedisServer.StartAsync(output);
        await using var tunnel = await StartTunnelAsync(redis);
        await using var client = await RespClient.ConnectAsync(PublicPort(tunnel));

        // One write with all 1,000 commands, then the 1,000 replies: nothing waits for a round trip.
        var burst = new MemoryStream();
        for (var i = 0; i < 1000; i++)
        {
            burst.Write(RespClient.Encode("INCR", "counter"));
        }

        await client.WriteAsync(burst.ToArray());
        for (var expected = 1L; expected <= 1000; expected++)
        {
            Assert.Equal(expected, await client.ReadReplyAsync());
        }

        Assert.Equal("1000"u8.ToArray(), Assert.IsType<byte[]>(await client.CommandAsync("GET", "counter")));
    }

    [RedisFact]
    public async Task MultiExec_RunsAtomically_AndWatchAbortsOnAConcurrentWriteThroughASecondTunnelConnection()
    {
        await using var redis = await RedisServer.StartAsync(output);
        await using var tunnel = await StartTunnelAsync(redis);
        await using var first = await RespClient.ConnectAsync(PublicPort(tunnel));
        await using var second = await RespClient.ConnectAsync(PublicPort(tunnel));

        Assert.Equal("OK", await first.CommandAsync("MULTI"));
        Assert.Equal("QUEUED", await first.CommandAsync("SET", "tx", "10"));
        Assert.Equal("QUEUED", await first.CommandAsync("INCRBY", "tx", "5"));
        Assert.Equal("QUEUED", await first.CommandAsync("GET", "tx"));
        var exec = Assert.IsType<object?[]>(await first.CommandAsync("EXEC"));
        Assert.Equal("OK", exec[0]);
        Assert.Equal(15L, exec[1]);
        Assert.Equal("15"u8.ToArray(), Assert.IsType<byte[]>(exec[2]));

        // Optimistic locking across two tunnelled connections: the second one's write aborts the first one's EXEC.
        Assert.Equal("OK", await first.CommandAsync("WATCH", "tx"));
        Assert.Equal(16L, await second.CommandAsync("INCR", "tx"));
        Assert.Equal("OK", await first.CommandAsync("MULTI"));
        Assert.Equal("QUEUED", await first.CommandAsync("SET", "tx", "0"));
        Assert.Null(await first.CommandAsync("EXEC"));
        Assert.Equal("16"u8.ToArray(), Assert.IsType<byte[]>(await second.CommandAsync("GET", "tx")));
        Assert.Equal(2, Listener(tunnel).ActiveConnections);
    }

    [RedisFact]
    public async Task Quit_ServerClosesItsEnd_PublicClientSeesEof_AndTheTunnelReleasesTheConnection()
    {
        await using var redis = await RedisServer.StartAsync(output);
        await using var tunnel = await StartTunnelAsync(redis);
        var listener = Listener(tunnel);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        listener.ConnectionClosed += () => closed.TrySetResult();
        await using var client = await RespClient.ConnectAsync(listener.Port);
        Assert.Equal("PONG", await client.CommandAsync("PING"));
        Assert.Equal(1, listener.ActiveConnections);

        Assert.Equal("OK", await client.CommandAsync("QUIT"));

        Assert.True(await client.IsAtEndAsync(), "After QUIT redis closes the connection; the public client must see EOF.");
        await closed.Task.DefaultTimeout();
        Assert.Equal(0, listener.ActiveConnections);

        // The service port still serves new connections.
        await using var again = await RespClient.ConnectAsync(listener.Port);
        Assert.Equal("PONG", await again.CommandAsync("PING"));
    }

    private Task<TestTunnel> StartTunnelAsync(RedisServer redis) => TestTunnel.StartAsync(output, new TestTunnelOptions
    {
        StartBackend = false,
        ConfigureServer = o => o.Tcp.Enabled = true,
        ConfigureClient = o => o.TcpServices["redis"] = $"127.0.0.1:{redis.Port}",
    });

    private static TcpServiceListener Listener(TestTunnel tunnel)
    {
        Assert.True(tunnel.Server.Services.GetRequiredService<TcpServiceRegistry>().TryGet(tunnel.SessionId, "redis", out var listener));
        return listener!;
    }

    private static int PublicPort(TestTunnel tunnel) => Listener(tunnel).Port;

    /// <summary>A <see cref="FactAttribute"/> that skips, with the reason, when redis-server is not on the PATH.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    internal sealed class RedisFactAttribute : FactAttribute
    {
        public RedisFactAttribute()
        {
            if (RedisServer.Executable is null)
            {
                Skip = "redis-server is not installed (Debian package redis-server; tests/run-tests.sh installs it).";
            }
        }
    }

    /// <summary>
    /// A throwaway redis-server: a free loopback port, a temporary directory, no persistence; ready when it says
    /// "Ready to accept connections". Killed and its directory removed on dispose.
    /// </summary>
    private sealed class RedisServer : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly DirectoryInfo _directory;

        private RedisServer(Process process, DirectoryInfo directory, int port)
        {
            _process = process;
            _directory = directory;
            Port = port;
        }

        /// <summary>redis-server's full path, or null when it is not installed.</summary>
        public static string? Executable { get; } = FindOnPath("redis-server");

        public int Port { get; }

        public static async Task<RedisServer> StartAsync(ITestOutputHelper output)
        {
            // A port found free may be taken before redis binds it; then redis exits and the next port is tried.
            for (var attempt = 1; ; attempt++)
            {
                var port = FreePort();
                var directory = Directory.CreateTempSubdirectory("tunnel2-redis-");
                var start = new ProcessStartInfo(Executable ?? throw new InvalidOperationException("redis-server is not installed."))
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                    WorkingDirectory = directory.FullName,
                };
                foreach (var argument in new[]
                {
                    "--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", directory.FullName,
                    "--save", "", "--appendonly", "no", "--daemonize", "no", "--databases", "1", "--loglevel", "notice",
                })
                {
                    start.ArgumentList.Add(argument);
                }

                var ready = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                var process = new Process { StartInfo = start, EnableRaisingEvents = true };
                process.OutputDataReceived += (_, e) =>
                {
                    if (e.Data is null)
                    {
                        ready.TrySetResult(false);
                        return;
                    }

                    Log(output, e.Data);
                    if (e.Data.Contains("Ready to accept connections", StringComparison.Ordinal))
                    {
                        ready.TrySetResult(true);
                    }
                };
                process.ErrorDataReceived += (_, e) => Log(output, e.Data);
                process.Exited += (_, _) => ready.TrySetResult(false);
                process.Start();
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                var server = new RedisServer(process, directory, port);
                if (await ready.Task.DefaultTimeout())
                {
                    return server;
                }

                await server.DisposeAsync();
                if (attempt == 3)
                {
                    throw new InvalidOperationException("redis-server did not start (see the test output).");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().DefaultTimeout();
            _process.Dispose();
            try
            {
                _directory.Delete(recursive: true);
            }
            catch (IOException)
            {
            }
        }

        private static void Log(ITestOutputHelper output, string? line)
        {
            if (line is null)
            {
                return;
            }

            try
            {
                output.WriteLine("[redis] " + line);
            }
            catch (InvalidOperationException)
            {
                // The test has finished; its output is closed.
            }
        }

        private static int FreePort()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        private static string? FindOnPath(string name)
        {
            var path = Environment.GetEnvironmentVariable("PATH") ?? "";
            return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .Append("/usr/bin")
                .Append("/usr/local/bin")
                .Select(directory => Path.Combine(directory, name))
                .FirstOrDefault(File.Exists);
        }
    }

    /// <summary>
    /// The smallest RESP2 client: commands as arrays of bulk strings; replies as string (+), <see cref="RespError"/> (-),
    /// long (:), byte[] or null ($), object?[] or null (*). Every read has the default test timeout.
    /// </summary>
    private sealed class RespClient : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private readonly NetworkStream _stream;
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        private RespClient(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
        }

        public static async Task<RespClient> ConnectAsync(int port)
        {
            var tcp = new TcpClient { NoDelay = true };
            await tcp.ConnectAsync(IPAddress.Loopback, port).DefaultTimeout();
            return new RespClient(tcp);
        }

        /// <summary>One command: strings go as UTF-8, byte arrays as they are.</summary>
        public static byte[] Encode(params object[] parts)
        {
            var output = new MemoryStream();
            output.Write(Encoding.ASCII.GetBytes($"*{parts.Length}\r\n"));
            foreach (var part in parts)
            {
                var bytes = part as byte[] ?? Encoding.UTF8.GetBytes(Convert.ToString(part, CultureInfo.InvariantCulture)!);
                output.Write(Encoding.ASCII.GetBytes($"${bytes.Length}\r\n"));
                output.Write(bytes);
                output.Write("\r\n"u8);
            }

            return output.ToArray();
        }

        public async Task<object?> CommandAsync(params object[] parts)
        {
            await WriteAsync(Encode(parts));
            return await ReadReplyAsync();
        }

        public Task WriteAsync(byte[] bytes) => _stream.WriteAsync(bytes).AsTask().DefaultTimeout();

        public async Task<object?> ReadReplyAsync()
        {
            var line = await ReadLineAsync();
            var payload = line[1..];
            switch (line[0])
            {
                case '+':
                    return payload;
                case '-':
                    return new RespError(payload);
                case ':':
                    return long.Parse(payload, CultureInfo.InvariantCulture);
                case '$':
                {
                    var length = int.Parse(payload, CultureInfo.InvariantCulture);
                    if (length < 0)
                    {
                        return null;
                    }

                    var value = await ReadExactlyAsync(length + 2);
                    return value.AsSpan(0, length).ToArray();
                }

                case '*':
                {
                    var count = int.Parse(payload, CultureInfo.InvariantCulture);
                    if (count < 0)
                    {
                        return null;
                    }

                    var items = new object?[count];
                    for (var i = 0; i < count; i++)
                    {
                        items[i] = await ReadReplyAsync();
                    }

                    return items;
                }

                default:
                    throw new InvalidDataException($"Not a RESP reply: '{line}'.");
            }
        }

        /// <summary>True when the peer has closed its end (EOF; a reset counts too) and nothing is left to read.</summary>
        public async Task<bool> IsAtEndAsync()
        {
            if (_end > _start)
            {
                return false;
            }

            try
            {
                return await _stream.ReadAsync(_buffer).AsTask().DefaultTimeout() == 0;
            }
            catch (IOException)
            {
                return true;
            }
        }

        public ValueTask DisposeAsync()
        {
            _tcp.Dispose();
            return ValueTask.CompletedTask;
        }

        private async Task<string> ReadLineAsync()
        {
            while (true)
            {
                var newline = _buffer.AsSpan(_start, _end - _start).IndexOf("\r\n"u8);
                if (newline >= 0)
                {
                    var line = Encoding.UTF8.GetString(_buffer, _start, newline);
                    _start += newline + 2;
                    return line;
                }

                await FillAsync();
            }
        }

        private async Task<byte[]> ReadExactlyAsync(int count)
        {
            var result = new byte[count];
            var copied = 0;
            while (copied < count)
            {
                if (_end == _start)
                {
                    await FillAsync();
                }

                var chunk = Math.Min(count - copied, _end - _start);
                _buffer.AsSpan(_start, chunk).CopyTo(result.AsSpan(copied));
                _start += chunk;
                copied += chunk;
            }

            return result;
        }

        private async Task FillAsync()
        {
            if (_start > 0)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }

            if (_end == _buffer.Length)
            {
                throw new InvalidDataException("A RESP line longer than the read buffer.");
            }

            var read = await _stream.ReadAsync(_buffer.AsMemory(_end)).AsTask().DefaultTimeout();
            if (read == 0)
            {
                throw new EndOfStreamException("The connection closed in the middle of a reply.");
            }

            _end += read;
        }
    }

    /// <summary>A RESP error reply.</summary>
    private sealed record RespError(string Message);
}
