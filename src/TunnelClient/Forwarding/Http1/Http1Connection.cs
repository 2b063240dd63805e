using System.Net;
using System.Net.Sockets;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>
/// One TCP connection to a backend, used by one exchange at a time and kept in its <see cref="Http1ConnectionPool"/>
/// between them. Everything an exchange needs lives here and is reused, so a request on a pooled connection
/// allocates none of it: the cancellation source (the backend timeout and the tunnel
/// stream's reset cancel every socket operation at once), the timeout timer, the field table, the body pump's state.
/// </summary>
internal sealed class Http1Connection : IDisposable
{
    /// <summary>A field table grown past this is not kept for the next exchange.</summary>
    private const int MaxKeptFields = 256;

    private const int TimeoutDisarmed = 0;
    private const int TimeoutArmed = 1;
    private const int TimeoutFired = 2;

    private static readonly Action<object?> s_onStreamAborted = static state => ((Http1Connection)state!).OnStreamAborted();

    private readonly CancellationTokenSource _cancellation = new();
    private readonly ITimer _timeout;
    private readonly Lock _exchangeLock = new();
    private TunnelStream? _stream;
    private int _timeoutState;
    private int _disposed;

    public Http1Connection(Socket socket, Http1ConnectionPool pool, TimeProvider time)
    {
        Socket = socket;
        Pool = pool;

        // One timer for the connection's life, re-armed per exchange. (CancellationTokenSource.CancelAfter would do,
        // but a source whose timer ever ran cannot be reset for the next exchange.)
        _timeout = time.CreateTimer(static state => ((Http1Connection)state!).OnTimeout(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public Socket Socket { get; }

    public Http1ConnectionPool Pool { get; }

    /// <summary>True once the socket is connected.</summary>
    public bool Connected { get; private set; }

    /// <summary>Cancelled by the exchange's timeout, by the tunnel stream's reset, or to stop the body pump.</summary>
    public CancellationToken Token => _cancellation.Token;

    /// <summary>True when this connection served a request before: a failure before any response byte may be a stale connection.</summary>
    public bool Reused { get; set; }

    /// <summary><see cref="TimeProvider"/> timestamp of the return to the pool.</summary>
    public long IdleSince { get; set; }

    /// <summary>Fields of the head being parsed; grows for an unusually long head (up to <see cref="MaxKeptFields"/> kept).</summary>
    public FieldRange[] Fields = new FieldRange[32];

    /// <summary>The response head parser of the exchange.</summary>
    public Http1HeadParser Parser;

    /// <summary>The exchange's receive buffer (from the hop's pool) and how much of it holds data.</summary>
    public byte[] Receive = null!;

    public int Filled;

    /// <summary>True once any response byte arrived in this exchange (no retry after that).</summary>
    public bool ReceivedAny;

    /// <summary>The request body pump, while <see cref="Pumping"/>.</summary>
    public ValueTask Pump;

    public bool Pumping;

    /// <summary>Set by the body pump when it took request body bytes from the tunnel stream (no retry after that).</summary>
    public volatile bool BodyConsumed;

    /// <summary>Set by the body pump once the whole request body reached the socket.</summary>
    public volatile bool BodySent;

    /// <summary>Set to make the body pump stop at its next read.</summary>
    public volatile bool StopPump;

    /// <summary>True when the backend timeout ended the exchange.</summary>
    public bool TimedOut => Volatile.Read(ref _timeoutState) == TimeoutFired;

    public async ValueTask ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        await Socket.ConnectAsync(endpoint, cancellationToken);
        Connected = true;
    }

    /// <summary>
    /// Starts an exchange for <paramref name="stream"/>: its reset cancels the exchange, and <paramref name="timeout"/>
    /// bounds it until <see cref="EndTimeout"/>. False when the stream has already been reset.
    /// </summary>
    public bool Begin(TunnelStream stream, TimeSpan timeout)
    {
        Parser = default;
        Filled = 0;
        ReceivedAny = false;
        Pumping = false;
        BodyConsumed = false;
        BodySent = false;
        StopPump = false;
        lock (_exchangeLock)
        {
            _stream = stream;
        }

        Volatile.Write(ref _timeoutState, TimeoutArmed);
        _timeout.Change(timeout > TimeSpan.Zero ? timeout : TimeSpan.FromTicks(1), Timeout.InfiniteTimeSpan);
        return stream.TrySetAbortCallback(s_onStreamAborted, this);
    }

    /// <summary>Sets the timeout anew (after connecting, the backend timeout's remainder), unless it already fired.</summary>
    public void Rearm(TimeSpan timeout)
    {
        if (Volatile.Read(ref _timeoutState) == TimeoutArmed)
        {
            _timeout.Change(timeout > TimeSpan.Zero ? timeout : TimeSpan.FromTicks(1), Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>The response head arrived: the backend timeout no longer applies.</summary>
    public void EndTimeout()
    {
        _timeout.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        Interlocked.CompareExchange(ref _timeoutState, TimeoutDisarmed, TimeoutArmed);
    }

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
        EndTimeout();
        Detach();
        if (Fields.Length > MaxKeptFields)
        {
            // A head with thousands of fields must not pin its table on an idle connection.
            Fields = new FieldRange[32];
        }

        // A timeout that fired is (or is about to be) a cancellation: the state is checked after the reset for that.
        return Volatile.Read(ref _disposed) == 0 && _cancellation.TryReset() && Volatile.Read(ref _timeoutState) == TimeoutDisarmed;
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

        _timeout.Dispose();
        Detach();
        Socket.Dispose();
        _cancellation.Dispose();
    }

    /// <summary>
    /// Forgets the stream. After this its abort callback, even one already running, cancels nothing: the check and the
    /// cancellation happen under the same lock, so a pooled connection is never cancelled by its previous stream.
    /// </summary>
    private void Detach()
    {
        TunnelStream? stream;
        lock (_exchangeLock)
        {
            stream = _stream;
            _stream = null;
        }

        stream?.TrySetAbortCallback(null, null);
    }

    private void OnStreamAborted()
    {
        lock (_exchangeLock)
        {
            if (_stream is { AbortReason: not null })
            {
                Cancel();
            }
        }
    }

    private void OnTimeout()
    {
        if (Interlocked.CompareExchange(ref _timeoutState, TimeoutFired, TimeoutArmed) == TimeoutArmed)
        {
            Cancel();
        }
    }
}
