using System.Net;
using System.Net.Sockets;
using System.Text;
using Tunnel2.Testing;

namespace Tunnel2.FunctionalTests.Reliability;

/// <summary>A response as it came off the wire.</summary>
internal sealed record RawHttpResponse(int StatusCode, string StatusLine, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body, bool BodyComplete)
{
    public string BodyText => Encoding.Latin1.GetString(Body);

    public string? Header(string name)
        => Headers.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).FirstOrDefault();

    public override string ToString() => $"{StatusLine} ({Body.Length} body bytes{(BodyComplete ? string.Empty : ", incomplete")})";
}

/// <summary>
/// HTTP/1.1 by hand over a loopback socket (YARP's HeaderTests do the same with TcpClient): for requests a
/// well-behaved HttpClient refuses to send, and for watching exactly what the server answers and when it closes.
/// </summary>
internal sealed class RawHttpConnection : IAsyncDisposable
{
    private const int MaxResponseBytes = 8 * 1024 * 1024;

    private readonly Socket _socket;
    private readonly List<byte> _buffered = [];
    private bool _closedByPeer;

    private RawHttpConnection(Socket socket)
    {
        _socket = socket;
    }

    /// <summary>True once the server has ended the connection (FIN or RST).</summary>
    public bool ClosedByPeer => _closedByPeer;

    public static async Task<RawHttpConnection> ConnectAsync(Uri server)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port)).DefaultTimeout();
        return new RawHttpConnection(socket);
    }

    /// <summary>Sends <paramref name="text"/> as Latin-1 bytes, exactly as written (no line-ending fix-ups).</summary>
    public Task SendAsync(string text) => SendAsync(Encoding.Latin1.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _socket.SendAsync(bytes, SocketFlags.None).DefaultTimeout();
    }

    /// <summary>Reads one response. Null when the server closed the connection before sending anything.</summary>
    public async Task<RawHttpResponse?> ReadResponseAsync(bool headRequest = false)
    {
        int headEnd;
        while ((headEnd = IndexOf(_buffered, "\r\n\r\n"u8)) < 0)
        {
            if (!await FillAsync())
            {
                return _buffered.Count == 0 ? null : throw new InvalidOperationException($"The connection ended inside a response head: {Encoding.Latin1.GetString([.. _buffered])}");
            }
        }

        var head = Encoding.Latin1.GetString(_buffered.GetRange(0, headEnd).ToArray());
        _buffered.RemoveRange(0, headEnd + 4);
        var lines = head.Split("\r\n");
        var statusLine = lines[0];
        var status = int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(static l =>
        {
            var colon = l.IndexOf(':', StringComparison.Ordinal);
            return new KeyValuePair<string, string>(l[..colon], l[(colon + 1)..].Trim());
        }).ToList();
        var response = new RawHttpResponse(status, statusLine, headers, [], BodyComplete: true);

        if (headRequest || status is 204 or 304 || (status >= 100 && status < 200))
        {
            return response;
        }

        if (response.Header("Content-Length") is { } lengthText)
        {
            var length = int.Parse(lengthText, System.Globalization.CultureInfo.InvariantCulture);
            var complete = await EnsureBufferedAsync(length);
            var take = Math.Min(length, _buffered.Count);
            var body = _buffered.GetRange(0, take).ToArray();
            _buffered.RemoveRange(0, take);
            return response with { Body = body, BodyComplete = complete };
        }

        if (string.Equals(response.Header("Transfer-Encoding"), "chunked", StringComparison.OrdinalIgnoreCase))
        {
            var (body, complete) = await ReadChunkedAsync();
            return response with { Body = body, BodyComplete = complete };
        }

        // No framing: the body runs to the end of the connection.
        while (await FillAsync())
        {
        }

        var rest = _buffered.ToArray();
        _buffered.Clear();
        return response with { Body = rest };
    }

    /// <summary>
    /// Reads a response head and waits until at least <paramref name="bodyBytes"/> of its body have arrived, without
    /// consuming them: for responses that never end by themselves. Returns the status code.
    /// </summary>
    public async Task<int> ReadHeadAndSomeBodyAsync(int bodyBytes)
    {
        int headEnd;
        while ((headEnd = IndexOf(_buffered, "\r\n\r\n"u8)) < 0)
        {
            if (!await FillAsync())
            {
                throw new InvalidOperationException("The connection ended before a response head.");
            }
        }

        if (!await EnsureBufferedAsync(headEnd + 4 + bodyBytes))
        {
            throw new InvalidOperationException("The connection ended before the expected body bytes.");
        }

        var statusLine = System.Text.Encoding.Latin1.GetString(_buffered.GetRange(0, IndexOf(_buffered, "\r\n"u8)).ToArray());
        return int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Reads every response until the server closes the connection.</summary>
    public async Task<List<RawHttpResponse>> ReadResponsesUntilClosedAsync()
    {
        var responses = new List<RawHttpResponse>();

        // Bounded: each round either parses a response or ends; a single connection never carries hundreds here.
        for (var i = 0; i < 100; i++)
        {
            var response = await ReadResponseAsync();
            if (response is null)
            {
                return responses;
            }

            responses.Add(response);
            if (!response.BodyComplete)
            {
                return responses;
            }
        }

        throw new InvalidOperationException("More than 100 responses on one connection.");
    }

    /// <summary>The next <paramref name="count"/> bytes after what has been read so far (e.g. frames after a 101).</summary>
    public async Task<byte[]> ReadBytesAsync(int count)
    {
        if (!await EnsureBufferedAsync(count))
        {
            throw new InvalidOperationException($"The connection ended after {_buffered.Count} of {count} expected bytes.");
        }

        var bytes = _buffered.GetRange(0, count).ToArray();
        _buffered.RemoveRange(0, count);
        return bytes;
    }

    /// <summary>Completes when the server has closed the connection; returns the bytes it sent meanwhile.</summary>
    public async Task<byte[]> ReadUntilClosedAsync()
    {
        while (await FillAsync())
        {
        }

        var bytes = _buffered.ToArray();
        _buffered.Clear();
        return bytes;
    }

    /// <summary>Ends the connection with RST, as a crashing client or a killed process would.</summary>
    public void Abort()
    {
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Close(0);
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<(byte[] Body, bool Complete)> ReadChunkedAsync()
    {
        var body = new List<byte>();

        // Bounded by MaxResponseBytes: every chunk adds at least one byte or ends the body.
        while (body.Count <= MaxResponseBytes)
        {
            int lineEnd;
            while ((lineEnd = IndexOf(_buffered, "\r\n"u8)) < 0)
            {
                if (!await FillAsync())
                {
                    return ([.. body], false);
                }
            }

            var sizeText = Encoding.Latin1.GetString(_buffered.GetRange(0, lineEnd).ToArray()).Split(';')[0];
            var size = Convert.ToInt32(sizeText, 16);
            _buffered.RemoveRange(0, lineEnd + 2);
            if (size == 0)
            {
                // Trailers (none expected) and the final CRLF.
                while (IndexOf(_buffered, "\r\n"u8) < 0)
                {
                    if (!await FillAsync())
                    {
                        return ([.. body], false);
                    }
                }

                _buffered.RemoveRange(0, IndexOf(_buffered, "\r\n"u8) + 2);
                return ([.. body], true);
            }

            if (!await EnsureBufferedAsync(size + 2))
            {
                body.AddRange(_buffered.Take(Math.Min(size, _buffered.Count)));
                return ([.. body], false);
            }

            body.AddRange(_buffered.GetRange(0, size));
            _buffered.RemoveRange(0, size + 2);
        }

        throw new InvalidOperationException("The chunked body exceeded the test's limit.");
    }

    private async Task<bool> EnsureBufferedAsync(int count)
    {
        while (_buffered.Count < count)
        {
            if (!await FillAsync())
            {
                return false;
            }
        }

        return true;
    }

    /// <returns>False once the server has closed (FIN or RST) and nothing more will come.</returns>
    private async Task<bool> FillAsync()
    {
        if (_closedByPeer)
        {
            return false;
        }

        if (_buffered.Count > MaxResponseBytes)
        {
            throw new InvalidOperationException("The server sent more than the test's limit.");
        }

        var buffer = new byte[16 * 1024];
        int read;
        try
        {
            read = await _socket.ReceiveAsync(buffer, SocketFlags.None).DefaultTimeout();
        }
        catch (SocketException)
        {
            read = 0;
        }

        if (read == 0)
        {
            _closedByPeer = true;
            return false;
        }

        _buffered.AddRange(buffer.AsSpan(0, read));
        return true;
    }

    private static int IndexOf(List<byte> bytes, ReadOnlySpan<byte> pattern)
        => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes).IndexOf(pattern);
}
