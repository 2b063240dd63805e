using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>HTTP/2 error codes (RFC 9113 §7) the tests name.</summary>
internal enum Http2Error
{
    NoError = 0x0,
    ProtocolError = 0x1,
    InternalError = 0x2,
    RefusedStream = 0x7,
    Cancel = 0x8,
    EnhanceYourCalm = 0xb,
}

/// <summary>
/// HTTP/2 by hand (RFC 9113) over a loopback socket, TLS with ALPN "h2" when a certificate is pinned: enough to send
/// what no well-behaved client sends (HEADERS immediately followed by RST_STREAM, thousands of times, without waiting)
/// and to watch how the server answers (GOAWAY, RST_STREAM codes, PING acks). Header blocks are HPACK literals that
/// never touch the dynamic table; the server's header blocks are skipped, not decoded.
/// </summary>
internal sealed class RawHttp2Connection : IAsyncDisposable
{
    private const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7, WindowUpdate = 0x8;
    private const byte EndStream = 0x1, EndHeaders = 0x4, Ack = 0x1;
    private const int MaxFrameLength = 16 * 1024 * 1024;

    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource> _pings = new();
    private readonly ConcurrentQueue<byte[]> _controlFrames = new();
    private readonly ConcurrentDictionary<Http2Error, int> _resetsReceived = new();
    private readonly TaskCompletionSource<(int LastStreamId, Http2Error Error)> _goAway = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _readLoop;
    private long _nextPing;

    private RawHttp2Connection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        _readLoop = Task.Run(ReadLoopAsync);
    }

    /// <summary>Completes with the server's GOAWAY, if one arrives.</summary>
    public Task<(int LastStreamId, Http2Error Error)> GoAwayReceived => _goAway.Task;

    /// <summary>Completes when the server has ended the connection (FIN, RST or TLS close).</summary>
    public Task Closed => _readLoop;

    /// <summary>What ended the read loop (end of stream, reset), for messages.</summary>
    public Exception? EndedBy { get; private set; }

    /// <summary>RST_STREAM frames the server sent, by error code.</summary>
    public IReadOnlyDictionary<Http2Error, int> ResetsReceived => _resetsReceived;

    /// <summary>
    /// Connects and sends the preface and an empty SETTINGS frame. With <paramref name="pinned"/>, TLS that trusts
    /// exactly that certificate and offers only "h2"; without, cleartext with prior knowledge.
    /// </summary>
    public static async Task<RawHttp2Connection> ConnectAsync(Uri server, X509Certificate2? pinned)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream stream;
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port)).DefaultTimeout();
            stream = new NetworkStream(socket, ownsSocket: false);
            if (pinned is not null)
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    ApplicationProtocols = [SslApplicationProtocol.Http2],
                    RemoteCertificateValidationCallback = (_, presented, _, _) =>
                        presented is not null && presented.GetCertHashString() == pinned.GetCertHashString(),
                }).DefaultTimeout();
                Assert.Equal(SslApplicationProtocol.Http2, tls.NegotiatedApplicationProtocol);
                stream = tls;
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var buffer = new ArrayBufferWriter<byte>();
        buffer.Write(Preface);
        WriteFrameHeader(buffer, length: 0, Settings, flags: 0, streamId: 0);
        await stream.WriteAsync(buffer.WrittenMemory).AsTask().DefaultTimeout();
        return new RawHttp2Connection(socket, stream);
    }

    /// <summary>A GET request's HEADERS frame (END_STREAM, END_HEADERS) on <paramref name="streamId"/>.</summary>
    public static void WriteGet(ArrayBufferWriter<byte> buffer, int streamId, string scheme, string authority, string path)
    {
        var block = new ArrayBufferWriter<byte>(128);
        block.Write<byte>([0x82]);                                        // :method GET (static index 2)
        block.Write<byte>([scheme == "https" ? (byte)0x87 : (byte)0x86]); // :scheme https / http (static 7 / 6)
        WriteLiteral(block, nameIndex: 4, path);                          // :path, literal without indexing
        WriteLiteral(block, nameIndex: 1, authority);                     // :authority, literal without indexing
        WriteFrameHeader(buffer, block.WrittenCount, Headers, EndStream | EndHeaders, streamId);
        buffer.Write(block.WrittenSpan);
    }

    public static void WriteRstStream(ArrayBufferWriter<byte> buffer, int streamId, Http2Error error)
    {
        WriteFrameHeader(buffer, 4, RstStream, 0, streamId);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.GetSpan(4), (uint)error);
        buffer.Advance(4);
    }

    /// <summary>Sends bytes built with the Write* helpers. Throws if the server has already closed the connection.</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> frames)
    {
        await _writeLock.WaitAsync().DefaultTimeout();
        try
        {
            await WriteQueuedControlFramesAsync();
            await _stream.WriteAsync(frames).AsTask().DefaultTimeout();
        }
        finally
        {
            _writeLock.Release();
        }

        await TryWriteControlFramesAsync();
    }

    /// <summary>
    /// Sends a PING and waits for its ACK: true when it came back (every frame sent before it has been processed by
    /// the server), false when the connection ended first.
    /// </summary>
    public async Task<bool> PingAsync()
    {
        var id = Interlocked.Increment(ref _nextPing);
        var acked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _pings[id] = acked;
        var buffer = new ArrayBufferWriter<byte>(17);
        WriteFrameHeader(buffer, 8, Ping, 0, 0);
        BinaryPrimitives.WriteInt64BigEndian(buffer.GetSpan(8), id);
        buffer.Advance(8);
        try
        {
            await SendAsync(buffer.WrittenMemory);
        }
        catch (IOException)
        {
            return false;
        }

        var first = await Task.WhenAny(acked.Task, _readLoop).DefaultTimeout();
        return first == acked.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        try
        {
            await _stream.DisposeAsync();
            await _readLoop.DefaultTimeout();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
        {
        }

        _writeLock.Dispose();
    }

    private static void WriteFrameHeader(ArrayBufferWriter<byte> buffer, int length, byte type, byte flags, int streamId)
    {
        var header = buffer.GetSpan(9);
        header[0] = (byte)(length >> 16);
        header[1] = (byte)(length >> 8);
        header[2] = (byte)length;
        header[3] = type;
        header[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(header[5..], streamId & int.MaxValue);
        buffer.Advance(9);
    }

    /// <summary>HPACK "literal header field without indexing, indexed name" (RFC 7541 §6.2.2), no Huffman coding.</summary>
    private static void WriteLiteral(ArrayBufferWriter<byte> block, int nameIndex, string value)
    {
        WriteInteger(block, 0x00, prefixBits: 4, nameIndex);
        var bytes = Encoding.ASCII.GetBytes(value);
        WriteInteger(block, 0x00, prefixBits: 7, bytes.Length);
        block.Write(bytes);
    }

    /// <summary>HPACK integer with an N-bit prefix (RFC 7541 §5.1).</summary>
    private static void WriteInteger(ArrayBufferWriter<byte> block, byte high, int prefixBits, int value)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            block.Write<byte>([(byte)(high | value)]);
            return;
        }

        block.Write<byte>([(byte)(high | max)]);
        value -= max;
        while (value >= 0x80)
        {
            block.Write<byte>([(byte)((value & 0x7f) | 0x80)]);
            value >>= 7;
        }

        block.Write<byte>([(byte)value]);
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[9];
        try
        {
            // Ends when the connection does (each round reads one whole frame or throws at its end), or after a million
            // frames, far more than any test provokes.
            for (var frames = 0; frames < 1_000_000; frames++)
            {
                await _stream.ReadExactlyAsync(header);
                var length = (header[0] << 16) | (header[1] << 8) | header[2];
                var type = header[3];
                var flags = header[4];
                Assert.InRange(length, 0, MaxFrameLength);
                var payload = new byte[length];
                await _stream.ReadExactlyAsync(payload);
                await OnFrameAsync(type, flags, payload);
            }
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or ObjectDisposedException or SocketException)
        {
            // The connection ended.
            EndedBy = e;
        }
    }

    private async Task OnFrameAsync(byte type, byte flags, byte[] payload)
    {
        switch (type)
        {
            case Settings when (flags & Ack) == 0:
                await SendControlAsync(Settings, Ack, []);
                break;
            case Ping when (flags & Ack) == 0:
                await SendControlAsync(Ping, Ack, payload);
                break;
            case Ping:
                if (_pings.TryRemove(BinaryPrimitives.ReadInt64BigEndian(payload), out var waiter))
                {
                    waiter.TrySetResult();
                }

                break;
            case GoAway:
                _goAway.TrySetResult((BinaryPrimitives.ReadInt32BigEndian(payload) & int.MaxValue, (Http2Error)BinaryPrimitives.ReadUInt32BigEndian(payload.AsSpan(4))));
                break;
            case RstStream:
                _resetsReceived.AddOrUpdate((Http2Error)BinaryPrimitives.ReadUInt32BigEndian(payload), 1, static (_, n) => n + 1);
                break;
            case Data:
                if (payload.Length > 0)
                {
                    // Give the connection window back, so responses to streams not reset in time never stall the rest.
                    var increment = new byte[4];
                    BinaryPrimitives.WriteInt32BigEndian(increment, payload.Length);
                    await SendControlAsync(WindowUpdate, 0, increment);
                }

                break;
        }
    }

    /// <summary>
    /// Queues a frame the protocol obliges us to send (SETTINGS ACK, PING ACK, WINDOW_UPDATE) and writes it unless a
    /// send is under way, which writes it first: the read loop never waits for the write lock, so a large send that
    /// blocks until the server reads can never stop us from reading what the server writes meanwhile.
    /// </summary>
    private Task SendControlAsync(byte type, byte flags, byte[] payload)
    {
        var buffer = new ArrayBufferWriter<byte>(9 + payload.Length);
        WriteFrameHeader(buffer, payload.Length, type, flags, 0);
        buffer.Write(payload);
        _controlFrames.Enqueue(buffer.WrittenMemory.ToArray());
        return TryWriteControlFramesAsync();
    }

    private async Task TryWriteControlFramesAsync()
    {
        if (_controlFrames.IsEmpty || !await _writeLock.WaitAsync(TimeSpan.Zero))
        {
            return;
        }

        try
        {
            await WriteQueuedControlFramesAsync();
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
        {
            // The server is closing; the read loop will see it.
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task WriteQueuedControlFramesAsync()
    {
        // Bounded by the queue's length when we start: frames queued meanwhile go with the next send.
        for (var pending = _controlFrames.Count; pending > 0 && _controlFrames.TryDequeue(out var frame); pending--)
        {
            await _stream.WriteAsync(frame).AsTask().DefaultTimeout();
        }
    }
}
