using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Tunnel2.Server.Hosting;

namespace Tunnel2.Server.Uplink;

/// <summary>Why the pre-authentication budget closed a connection (the <c>reason</c> label of the metric).</summary>
internal enum PreAuthCloseReason
{
    /// <summary>More than <c>Tunnel:UplinkPreAuth:MaxBytes</c> before authenticating.</summary>
    Bytes,

    /// <summary>Not authenticated within <c>Tunnel:UplinkPreAuth:Timeout</c>.</summary>
    Timeout,
}

/// <summary>
/// One connection under the uplink's pre-authentication budget: the time budget (an <see cref="ITimer"/> of the
/// injected <see cref="TimeProvider"/>), the <see cref="IUplinkAuthenticationFeature"/>, and the connection as the
/// layers inside this middleware see it.
/// </summary>
/// <remarks>
/// When the TLS layer replaces <see cref="Transport"/> with its plaintext pipe the budget moves to that pipe, and the
/// HTTP parser reads plaintext through it (<see cref="DelegatingConnectionContext"/>). Without TLS the HTTP layer reads
/// the transport given at the start.
/// </remarks>
internal sealed class PreAuthConnection : DelegatingConnectionContext, IUplinkAuthenticationFeature
{
    private const int Pending = 0;
    private const int Authenticated = 1;
    private const int Closed = 2;
    private const int Ended = 3;

    private static readonly TimerCallback s_onTimeout = static state => ((PreAuthConnection)state!).OnTimeout();

    private readonly UplinkPreAuth _preAuth;
    private readonly bool _dedicated;
    private readonly Lock _timerLock = new();
    private IDuplexPipe _transport;
    private PreAuthPipeReader? _active;
    private ITimer? _timer;
    private long _startTimestamp;
    private bool _started;
    private bool _featureSet;
    private int _state;
    private string? _closeMessage;

    public PreAuthConnection(ConnectionContext inner, UplinkPreAuth preAuth, bool dedicated)
        : base(inner)
    {
        _preAuth = preAuth;
        _dedicated = dedicated;
        _active = new PreAuthPipeReader(inner.Transport, this, preAuth.CreateBudget(sniff: !dedicated));
        _transport = _active;
        if (dedicated)
        {
            // The dedicated listener carries nothing but uplinks: the clock runs from the accept, so a connection
            // that never sends a byte is closed too.
            OnFirstByte();
            OnUplinkCandidate();
        }
    }

    public bool IsDedicatedListener => _dedicated;

    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    public override IDuplexPipe Transport
    {
        get => _transport;
        set
        {
            if (value is PreAuthPipeReader)
            {
                // A layer putting back the transport it was given (HttpsConnectionMiddleware does on its way out).
                _transport = value;
                return;
            }

            // A layer inside this one (TLS) now produces the plaintext: the budget moves to what it produces.
            _active?.StopInspecting();
            _active = Volatile.Read(ref _state) == Pending
                ? new PreAuthPipeReader(value, this, _preAuth.CreateBudget(sniff: !_dedicated))
                : null;
            _transport = (IDuplexPipe?)_active ?? value;
        }
    }

    public bool TryAuthenticate()
    {
        var previous = Interlocked.CompareExchange(ref _state, Authenticated, Pending);
        if (previous == Pending)
        {
            _active?.StopInspecting();
            DisposeTimer();
        }

        return previous != Closed;
    }

    /// <summary>The connection is over: no timer may outlive it.</summary>
    public void End()
    {
        Interlocked.CompareExchange(ref _state, Ended, Pending);
        DisposeTimer();
    }

    /// <summary>The first byte arrived (on the dedicated listener: the connection was accepted); the clock starts.</summary>
    public void OnFirstByte()
    {
        if (!_started)
        {
            _startTimestamp = _preAuth.Time.GetTimestamp();
            _started = true;
        }
    }

    /// <summary>A read found an uplink, or what may still become one: the budget applies.</summary>
    public void OnUplinkCandidate()
    {
        if (!_featureSet)
        {
            _featureSet = true;
            Inner.Features.Set<IUplinkAuthenticationFeature>(this);
        }

        if (_timer is null)
        {
            StartTimer();
        }
    }

    /// <summary>Closes the connection for exceeding the budget: logged and counted once, then aborted.</summary>
    public void Close(PreAuthCloseReason reason, long bytes)
    {
        if (Interlocked.CompareExchange(ref _state, Closed, Pending) != Pending)
        {
            return;
        }

        DisposeTimer();
        var elapsed = _started ? _preAuth.Time.GetElapsedTime(_startTimestamp) : TimeSpan.Zero;
        _closeMessage = reason == PreAuthCloseReason.Bytes
            ? $"More than {_preAuth.MaxBytes} bytes before authenticating as an uplink (Tunnel:UplinkPreAuth:MaxBytes)."
            : $"Not authenticated as an uplink within {_preAuth.Timeout} (Tunnel:UplinkPreAuth:Timeout).";
        _preAuth.OnClosed(this, reason, bytes, elapsed);
        Inner.Abort(new ConnectionAbortedException(_closeMessage));
        _active?.Wake();
    }

    public ConnectionAbortedException CreateClosedException(Exception? inner)
    {
        var message = _closeMessage ?? "Closed by the uplink pre-authentication budget.";
        return inner is null ? new ConnectionAbortedException(message) : new ConnectionAbortedException(message, inner);
    }

    private void StartTimer()
    {
        var expired = false;
        lock (_timerLock)
        {
            if (_timer is not null || Volatile.Read(ref _state) != Pending)
            {
                return;
            }

            var remaining = _preAuth.Timeout - _preAuth.Time.GetElapsedTime(_startTimestamp);
            if (remaining > TimeSpan.Zero)
            {
                _timer = _preAuth.Time.CreateTimer(s_onTimeout, this, remaining, System.Threading.Timeout.InfiniteTimeSpan);
            }
            else
            {
                expired = true;
            }
        }

        if (expired)
        {
            OnTimeout();
        }
    }

    private void OnTimeout() => Close(PreAuthCloseReason.Timeout, _active?.ChargedBytes ?? 0);

    private void DisposeTimer()
    {
        lock (_timerLock)
        {
            _timer?.Dispose();
            _timer = null;
        }
    }
}
