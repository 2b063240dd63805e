using System.Net.Sockets;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>
/// One TCP connection to a backend, used by one exchange at a time and kept in its <see cref="Http1ConnectionPool"/>
/// between them. Everything an exchange needs besides its buffers lives here and is reused: the cancellation source
/// (timeouts and the stream's reset cancel every socket operation at once), the field table, the body pump's state.
/// </summary>
internal sealed class Http1Connection : IDisposable
{
    private readonly CancellationTokenSource _cancellation = new();
    private CancellationTokenRegistration _streamAborted;
    private int _disposed;

    public Http1Connection(Socket socket, Http1ConnectionPool pool)
    {
        Socket = socket;
        Pool = pool;
    }

    public Socket Socket { get; }

    public Http1ConnectionPool Pool { get; }

    /// <summary>Cancelled by the exchange's timeout, by the tunnel stream's reset, or to stop the body pump.</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>True when this connection served a request before: a failure before any response byte may be a stale connection.</summary>
    public bool Reused { get; set; }

    /// <summary><see cref="TimeProvider"/> timestamp of the return to the pool.</summary>
    public long IdleSince { get; set; }

    /// <summary>Fields of the head being parsed; grows for an unusually long head and stays grown.</summary>
    public FieldRange[] Fields = new FieldRange[32];

    /// <summary>Set by the body pump when it took request body bytes from the tunnel stream (no retry after that).</summary>
    public volatile bool BodyConsumed;

    /// <summary>Set by the body pump once the whole request body reached the socket.</summary>
    public volatile bool BodySent;

    /// <summary>Set to make the body pump stop at its next read.</summary>
    public volatile bool StopPump;

    /// <summary>Starts an exchange: the stream's reset cancels it, and <paramref name="timeout"/> bounds it until <see cref="EndTimeout"/>.</summary>
    public void Begin(CancellationToken streamAborted, TimeSpan timeout)
    {
        BodyConsumed = false;
        BodySent = false;
        StopPump = false;
        _cancellation.CancelAfter(timeout);
        _streamAborted = streamAborted.UnsafeRegister(static state => ((Http1Connection)state!).Cancel(), this);
    }

    /// <summary>The response head arrived: the backend timeout no longer applies.</summary>
    public void EndTimeout() => _cancellation.CancelAfter(Timeout.InfiniteTimeSpan);

    /// <summary>Cancels every pending operation of the exchange; the connection is then unusable.</summary>
    public void Cancel()
    {
        try
        {
            _cancellation.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>Detaches the exchange; true when the connection is fit to serve another one.</summary>
    public bool End()
    {
        _streamAborted.Dispose();
        _streamAborted = default;
        return Volatile.Read(ref _disposed) == 0 && _cancellation.TryReset();
    }

    /// <summary>
    /// True when an idle connection can take a request: nothing to read. Readable means the backend closed it (EOF),
    /// reset it, or sent bytes nobody asked for; any of these makes it unusable (HttpClient checks the same before
    /// reusing a connection).
    /// </summary>
    public bool IsUsable()
    {
        try
        {
            return !Socket.Poll(0, SelectMode.SelectRead);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _streamAborted.Dispose();
        Socket.Dispose();
        _cancellation.Dispose();
    }
}
