using System.Net;
using System.Net.Sockets;

namespace Tunnel2.Client.Forwarding.Http1;

/// <summary>
/// Idle keep-alive connections to one backend endpoint: a stack (the most recently used first, so the others age out),
/// at most <see cref="MaxIdle"/> of them, each closed after <see cref="IdleTimeout"/> unused (as HttpClient's
/// PooledConnectionIdleTimeout). A connection is checked before reuse (<see cref="Http1Connection.IsUsable"/>).
/// </summary>
internal sealed class Http1ConnectionPool : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Http1Connection?[] _idle;
    private readonly TimeProvider _time;
    private readonly EndPoint _endpoint;
    private ITimer? _scavenger;
    private int _count;
    private bool _disposed;

    public Http1ConnectionPool(string host, int port, int maxIdle, TimeSpan idleTimeout, TimeProvider time)
    {
        _idle = new Http1Connection?[maxIdle];
        IdleTimeout = idleTimeout;
        _time = time;
        if (IPAddress.TryParse(host, out var address))
        {
            // An IPv4-mapped IPv6 address (what a dual-mode listener reports) is reached over IPv4.
            _endpoint = new IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port);
        }
        else
        {
            _endpoint = new DnsEndPoint(host, port);
        }
    }

    public int MaxIdle => _idle.Length;

    public TimeSpan IdleTimeout { get; }

    /// <summary>Idle connections held now.</summary>
    public int IdleCount
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>The most recently used idle connection that is still usable, or null.</summary>
    public Http1Connection? TryRent()
    {
        while (true)
        {
            Http1Connection? connection;
            lock (_lock)
            {
                if (_count == 0)
                {
                    return null;
                }

                connection = _idle[--_count];
                _idle[_count] = null;
            }

            if (_time.GetElapsedTime(connection!.IdleSince) < IdleTimeout && connection.IsUsable())
            {
                connection.Reused = true;
                return connection;
            }

            connection.Dispose();
        }
    }

    /// <summary>A new connection, not yet connected (<see cref="ConnectAsync"/>): its buffers take the request head first.</summary>
    public Http1Connection Create()
    {
        var socket = _endpoint is IPEndPoint ip
            ? new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.NoDelay = true;
        return new Http1Connection(socket, this, _time);
    }

    /// <summary>Connects a connection from <see cref="Create"/> (TCP_NODELAY); cancelled by <paramref name="cancellationToken"/>.</summary>
    public ValueTask ConnectAsync(Http1Connection connection, CancellationToken cancellationToken)
        => connection.ConnectAsync(_endpoint, cancellationToken);

    /// <summary>Keeps <paramref name="connection"/> for the next request, or closes it when the pool is full.</summary>
    public void Return(Http1Connection connection)
    {
        connection.IdleSince = _time.GetTimestamp();
        lock (_lock)
        {
            if (!_disposed && _count < _idle.Length)
            {
                _idle[_count++] = connection;
                _scavenger ??= _time.CreateTimer(static state => ((Http1ConnectionPool)state!).Scavenge(), this, IdleTimeout / 4, IdleTimeout / 4);
                return;
            }
        }

        connection.Dispose();
    }

    /// <summary>Closes the connections idle for longer than <see cref="IdleTimeout"/>: the oldest, at the bottom of the stack.</summary>
    internal void Scavenge()
    {
        Http1Connection?[]? expired = null;
        var expiredCount = 0;
        lock (_lock)
        {
            while (expiredCount < _count && _time.GetElapsedTime(_idle[expiredCount]!.IdleSince) >= IdleTimeout)
            {
                expiredCount++;
            }

            if (expiredCount > 0)
            {
                expired = _idle[..expiredCount];
                Array.Copy(_idle, expiredCount, _idle, 0, _count - expiredCount);
                Array.Clear(_idle, _count - expiredCount, expiredCount);
                _count -= expiredCount;
            }
        }

        if (expired is not null)
        {
            foreach (var connection in expired)
            {
                connection!.Dispose();
            }
        }
    }

    public void Dispose()
    {
        Http1Connection?[] idle;
        lock (_lock)
        {
            _disposed = true;
            idle = _idle[.._count];
            Array.Clear(_idle);
            _count = 0;
        }

        _scavenger?.Dispose();
        foreach (var connection in idle)
        {
            connection!.Dispose();
        }
    }
}
