using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Threading.Channels;
using HdrHistogram;
using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.WebSockets;

/// <summary>
/// N WebSockets to one echo URL. First every socket connects (bounded concurrency, each connect timed); then each
/// connected socket sends a message every interval from its own random phase for the run's duration (open loop: a
/// late echo never delays the next send; one precise scheduler thread hands out every due send, as the HTTP engine
/// does) and times each echo from the message's intended send time (coordinated-omission corrected) into
/// HdrHistogram; then, after a bounded wait for the last echoes, every socket closes with a close handshake.
/// Everything that goes wrong is counted by reason: connect failures, sockets dropped during the run, messages not
/// sent or never echoed, close failures.
/// </summary>
internal sealed class WebSocketLoadRunner
{
    private readonly WebSocketLoadOptions _options;
    private readonly ArrivalPacer _pacer;
    private readonly Recorder _connect = Histograms.CreateRecorder();
    private readonly Recorder _latency = Histograms.CreateRecorder();
    private readonly Recorder _service = Histograms.CreateRecorder();
    private readonly Recorder _lag = Histograms.CreateRecorder();
    private readonly ReasonCounter _connectFailures = new();
    private readonly ReasonCounter _messageFailures = new();
    private readonly ReasonCounter _drops = new();
    private readonly ReasonCounter _closeFailures = new();
    private readonly HistogramBase _latencyTotal = Histograms.Create();
    private HistogramBase? _latencyInterval;
    private long _sent;
    private long _echoed;
    private long _lost;

    // Reader side of the per-second ticks (one reader at a time).
    private long _lastSent;
    private long _lastEchoed;
    private long _lastFailed;

    public WebSocketLoadRunner(WebSocketLoadOptions options, ArrivalPacer? pacer = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _pacer = pacer ?? ArrivalPacer.For(TimeProvider.System);
    }

    /// <summary>Runs connect, message and close phases; every phase is bounded in time.</summary>
    /// <param name="onSecond">Called once per second of the message phase.</param>
    public async Task<WebSocketLoadResult> RunAsync(Action<WebSocketSecond>? onSecond, CancellationToken cancellationToken)
    {
        var started = DateTime.UtcNow;
        var notes = new List<string>();
        using var handler = CreateHandler(_options.ConnectTimeout);
        using var invoker = new HttpMessageInvoker(handler, disposeHandler: false);

        var connectStart = Stopwatch.GetTimestamp();
        var connections = await ConnectAllAsync(invoker, cancellationToken);
        var connectPhase = Stopwatch.GetElapsedTime(connectStart);
        var connectTotal = _connect.GetIntervalHistogram();

        var interval = _options.Interval;
        var phases = WebSocketSchedule.Phases(_options.Sockets, interval, _options.Seed);
        var activePhases = connections.Select((connection, i) => connection is null ? (TimeSpan?)null : phases[i]).ToArray();
        var scheduled = activePhases.Sum(phase => phase is { } p && p < interval ? WebSocketSchedule.CountFor(p, interval, _options.Duration) : 0);

        // Sends may block on a stuck socket; after the echo wait they are cancelled (which aborts that socket).
        using var stopSending = new CancellationTokenSource();
        foreach (var connection in connections.OfType<Connection>())
        {
            connection.Receiver = Task.Run(() => ReceiveLoopAsync(connection), CancellationToken.None);
            connection.Sender = Task.Run(() => SendLoopAsync(connection, stopSending.Token), CancellationToken.None);
        }

        var seconds = new List<WebSocketSecond>();
        using var stopTicker = new CancellationTokenSource();
        var origin = Stopwatch.GetTimestamp();
        var ticker = TickAsync(connections, seconds, onSecond, stopTicker.Token);
        var dispatched = _pacer.Blocks
            ? await Task.Factory.StartNew(
                () => ScheduleAsync(connections, activePhases, origin, cancellationToken),
                CancellationToken.None,
                TaskCreationOptions.LongRunning,
                TaskScheduler.Default).Unwrap()
            : await ScheduleAsync(connections, activePhases, origin, cancellationToken);
        if (dispatched < scheduled)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"Cancelled: {dispatched} of {scheduled} scheduled messages were handed out."));
        }

        foreach (var connection in connections.OfType<Connection>())
        {
            connection.Due.Writer.TryComplete();
        }

        // The last echoes: bounded; what has not come back by then is lost.
        var settled = Task.WhenAll(connections.OfType<Connection>().Select(connection => connection.Settled.Task));
        try
        {
            await settled.WaitAsync(_options.EchoTimeout, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"Echoes still missing {_options.EchoTimeout.TotalSeconds:0.#} s after the last send were counted as lost."));
        }

        foreach (var connection in connections.OfType<Connection>())
        {
            AddLost(connection.StopCounting());
        }

        await stopSending.CancelAsync();
        await Task.WhenAll(connections.OfType<Connection>().Select(connection => connection.Sender));
        await stopTicker.CancelAsync();
        await ticker;
        EmitSecond(seconds.Count + 1, connections, seconds, onSecond, finalFold: true);

        var closedCleanly = await CloseAllAsync(connections);
        foreach (var connection in connections.OfType<Connection>())
        {
            connection.Socket.Dispose();
        }

        var lag = LatencySummary.From(_lag.GetIntervalHistogram());
        if (lag.P99Ms > 10)
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture, $"Send lag p99 {lag.P99Ms:0.#} ms: the generator (or the machine) was behind its schedule; latencies include that delay."));
        }

        return new WebSocketLoadResult
        {
            Label = _options.Label,
            Url = _options.Url.ToString(),
            Sockets = _options.Sockets,
            MessagesPerSecond = _options.MessagesPerSecond,
            MessageSize = _options.MessageSize,
            DurationSec = _options.Duration.TotalSeconds,
            StartedUtc = started,
            Connected = connections.Count(connection => connection is not null),
            ConnectFailures = _connectFailures.Snapshot(),
            ConnectTime = LatencySummary.From(connectTotal),
            ConnectPhaseSec = Math.Round(connectPhase.TotalSeconds, 3),
            MessagesScheduled = scheduled,
            MessagesSent = Interlocked.Read(ref _sent),
            MessagesEchoed = Interlocked.Read(ref _echoed),
            MessagesLost = Interlocked.Read(ref _lost),
            MessageFailures = _messageFailures.Snapshot(),
            Drops = _drops.Snapshot(),
            Latency = LatencySummary.From(_latencyTotal),
            ServiceTime = LatencySummary.From(_service.GetIntervalHistogram()),
            SendLag = lag,
            ClosedCleanly = closedCleanly,
            CloseFailures = _closeFailures.Snapshot(),
            Seconds = seconds,
            Notes = notes,
        };
    }

    /// <summary>One handler for every socket of the run: no proxy, no cookies, no redirects, connections never recycled.</summary>
    public static SocketsHttpHandler CreateHandler(TimeSpan connectTimeout) => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        ConnectTimeout = connectTimeout,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        MaxConnectionsPerServer = int.MaxValue,
    };

    private static long Micros(long fromTimestamp, long toTimestamp) =>
        Histograms.ToMicroseconds(Stopwatch.GetElapsedTime(fromTimestamp, toTimestamp));

    private async Task<Connection?[]> ConnectAllAsync(HttpMessageInvoker invoker, CancellationToken cancellationToken)
    {
        var connections = new Connection?[_options.Sockets];
        using var phase = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        phase.CancelAfter(_options.ConnectPhaseTimeout);
        using var gate = new SemaphoreSlim(_options.ConnectConcurrency);
        var connects = new Task[connections.Length];
        for (var i = 0; i < connects.Length; i++)
        {
            connects[i] = ConnectOneAsync(i, invoker, gate, phase.Token, cancellationToken, connections);
        }

        await Task.WhenAll(connects);
        return connections;
    }

    private async Task ConnectOneAsync(
        int index, HttpMessageInvoker invoker, SemaphoreSlim gate, CancellationToken phase, CancellationToken run, Connection?[] connections)
    {
        try
        {
            await gate.WaitAsync(phase);
        }
        catch (OperationCanceledException)
        {
            _connectFailures.Add(run.IsCancellationRequested ? "cancelled" : WebSocketFailures.ConnectPhaseTimeout);
            return;
        }

        var socket = new ClientWebSocket();
        var handedOver = false;
        try
        {
            socket.Options.KeepAliveInterval = TimeSpan.Zero;
            socket.Options.CollectHttpResponseDetails = true;
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(phase);
            deadline.CancelAfter(_options.ConnectTimeout);
            var start = Stopwatch.GetTimestamp();
            try
            {
                await socket.ConnectAsync(_options.Url, invoker, deadline.Token);
                _connect.RecordValue(Micros(start, Stopwatch.GetTimestamp()));
                connections[index] = new Connection(socket);
                handedOver = true;
            }
            catch (Exception e)
            {
                _connectFailures.Add(run.IsCancellationRequested
                    ? "cancelled"
                    : WebSocketFailures.ForConnect(e, socket.HttpStatusCode, timedOut: deadline.IsCancellationRequested, phaseOver: phase.IsCancellationRequested));
            }
        }
        finally
        {
            if (!handedOver)
            {
                socket.Dispose();
            }

            gate.Release();
        }
    }

    private async Task<long> ScheduleAsync(Connection?[] connections, TimeSpan?[] phases, long origin, CancellationToken cancellationToken)
    {
        long dispatched = 0;
        var frequency = (double)Stopwatch.Frequency;
        using var arrivals = WebSocketSchedule.Arrivals(phases, _options.Interval, _options.Duration).GetEnumerator();
        var more = arrivals.MoveNext();
        try
        {
            while (more)
            {
                var now = Stopwatch.GetElapsedTime(origin);
                while (more && arrivals.Current.Offset <= now)
                {
                    var (socket, offset) = arrivals.Current;
                    connections[socket]!.Due.Writer.TryWrite(origin + (long)(offset.TotalSeconds * frequency));
                    dispatched++;
                    more = arrivals.MoveNext();
                }

                if (more)
                {
                    var wait = arrivals.Current.Offset - Stopwatch.GetElapsedTime(origin);
                    if (wait > TimeSpan.Zero)
                    {
                        await _pacer.WaitAsync(wait, cancellationToken);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Cancelled: what was handed out is still sent, echoed and counted.
        }

        return dispatched;
    }

    private async Task SendLoopAsync(Connection connection, CancellationToken stop)
    {
        var message = new byte[_options.MessageSize];
        await foreach (var intended in connection.Due.Reader.ReadAllAsync(CancellationToken.None))
        {
            if (!connection.TryBeginSend(out var sequence))
            {
                _messageFailures.Add(connection.IsDown ? WebSocketFailures.NotSentSocketDown : WebSocketFailures.NotSentRunOver);
                continue;
            }

            var now = Stopwatch.GetTimestamp();
            _lag.RecordValue(Micros(intended, Math.Max(intended, now)));
            WebSocketSchedule.WriteHeader(message, sequence, intended, now);
            Interlocked.Increment(ref _sent);
            try
            {
                await connection.Socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, stop);
            }
            catch (Exception e)
            {
                OnDropped(connection, WebSocketFailures.ForDrop(e));
            }
        }

        connection.SendingDone();
    }

    private async Task ReceiveLoopAsync(Connection connection)
    {
        var buffer = new byte[_options.MessageSize];
        byte[]? overflow = null;
        try
        {
            while (true)
            {
                var length = 0;
                var oversized = false;
                ValueWebSocketReceiveResult result;
                do
                {
                    Memory<byte> target = length < buffer.Length ? buffer.AsMemory(length) : (overflow ??= new byte[4096]);
                    result = await connection.Socket.ReceiveAsync(target, CancellationToken.None);
                    if (length < buffer.Length)
                    {
                        length += result.Count;
                    }
                    else
                    {
                        oversized |= result.Count > 0;
                    }
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (!connection.Closing)
                    {
                        OnDropped(connection, WebSocketFailures.ForPeerClose(connection.Socket.CloseStatus));
                    }

                    return;
                }

                var now = Stopwatch.GetTimestamp();
                if (oversized || length != buffer.Length
                    || !WebSocketSchedule.TryReadHeader(buffer.AsSpan(0, length), out var sequence, out var intended, out var sent))
                {
                    _messageFailures.Add(WebSocketFailures.BadEcho);
                    continue;
                }

                switch (connection.OnEcho(sequence))
                {
                    case EchoOutcome.InOrder:
                        RecordEcho(intended, sent, now);
                        break;
                    case EchoOutcome.OutOfOrder:
                        RecordEcho(intended, sent, now);
                        _messageFailures.Add(WebSocketFailures.OutOfOrder);
                        break;
                    case EchoOutcome.NotCounted:
                        break;
                }
            }
        }
        catch (Exception e)
        {
            if (!connection.Closing)
            {
                OnDropped(connection, WebSocketFailures.ForDrop(e));
            }
        }
    }

    private void RecordEcho(long intended, long sent, long now)
    {
        _latency.RecordValue(Micros(intended, Math.Max(intended, now)));
        _service.RecordValue(Micros(sent, Math.Max(sent, now)));
        Interlocked.Increment(ref _echoed);
    }

    private void OnDropped(Connection connection, string reason)
    {
        var outstanding = connection.Drop();
        if (outstanding >= 0)
        {
            _drops.Add(reason);
            AddLost(outstanding);
        }
    }

    private void AddLost(long count)
    {
        if (count > 0)
        {
            Interlocked.Add(ref _lost, count);
            _messageFailures.Add(WebSocketFailures.Lost, count);
        }
    }

    /// <returns>Sockets whose close handshake completed.</returns>
    private async Task<int> CloseAllAsync(Connection?[] connections)
    {
        using var deadline = new CancellationTokenSource(_options.CloseTimeout);
        var closes = connections.OfType<Connection>().Where(connection => !connection.IsDown).Select(async connection =>
        {
            connection.BeginClose();
            try
            {
                await connection.Socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "done", deadline.Token);

                // The receive loop ends on the server's close frame.
                await connection.Receiver.WaitAsync(deadline.Token);
                if (connection.Socket.State == WebSocketState.Closed)
                {
                    return true;
                }

                _closeFailures.Add("close state " + connection.Socket.State);
            }
            catch (OperationCanceledException)
            {
                _closeFailures.Add(WebSocketFailures.CloseTimeout);
            }
            catch (Exception e)
            {
                _closeFailures.Add("close failed: " + WebSocketFailures.ForDrop(e));
            }

            connection.Socket.Abort();
            return false;
        }).ToList();
        var results = await Task.WhenAll(closes);
        return results.Count(closed => closed);
    }

    private async Task TickAsync(Connection?[] connections, List<WebSocketSecond> seconds, Action<WebSocketSecond>? onSecond, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        var second = 0;
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                EmitSecond(++second, connections, seconds, onSecond, finalFold: false);
            }
        }
        catch (OperationCanceledException)
        {
            // The message phase is over; the caller folds the rest.
        }
    }

    private void EmitSecond(int second, Connection?[] connections, List<WebSocketSecond> seconds, Action<WebSocketSecond>? onSecond, bool finalFold)
    {
        _latencyInterval = _latencyInterval is null ? _latency.GetIntervalHistogram() : _latency.GetIntervalHistogram(_latencyInterval);
        _latencyTotal.Add(_latencyInterval);
        var sent = Interlocked.Read(ref _sent);
        var echoed = Interlocked.Read(ref _echoed);
        var failed = _messageFailures.Total + _drops.Total;
        if (finalFold && sent == _lastSent && echoed == _lastEchoed && failed == _lastFailed)
        {
            return;
        }

        var summary = LatencySummary.From(_latencyInterval);
        var sample = new WebSocketSecond(
            second,
            connections.Count(connection => connection is { IsDown: false }),
            sent - _lastSent,
            echoed - _lastEchoed,
            failed - _lastFailed,
            summary.P50Ms,
            summary.P99Ms,
            summary.MaxMs);
        (_lastSent, _lastEchoed, _lastFailed) = (sent, echoed, failed);
        seconds.Add(sample);
        onSecond?.Invoke(sample);
    }

    private enum EchoOutcome
    {
        InOrder,
        OutOfOrder,
        NotCounted,
    }

    /// <summary>One socket and its counters; the lock is per socket, so it is never contended across sockets.</summary>
    private sealed class Connection(ClientWebSocket socket)
    {
        private readonly Lock _lock = new();
        private long _sent;
        private long _echoed;
        private long _expected;
        private bool _sendingDone;
        private bool _down;
        private bool _counting = true;
        private volatile bool _closing;

        public ClientWebSocket Socket { get; } = socket;

        /// <summary>Intended send timestamps, written by the scheduler thread, read by the sender.</summary>
        public Channel<long> Due { get; } = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        /// <summary>Completes when everything sent has been echoed after the last send, or the socket is down.</summary>
        public TaskCompletionSource Settled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Receiver { get; set; } = Task.CompletedTask;

        public Task Sender { get; set; } = Task.CompletedTask;

        public bool Closing => _closing;

        public bool IsDown
        {
            get
            {
                lock (_lock)
                {
                    return _down;
                }
            }
        }

        public void BeginClose() => _closing = true;

        public bool TryBeginSend(out long sequence)
        {
            lock (_lock)
            {
                sequence = _sent;
                if (_down || !_counting)
                {
                    return false;
                }

                _sent++;
                return true;
            }
        }

        public EchoOutcome OnEcho(long sequence)
        {
            lock (_lock)
            {
                if (!_counting)
                {
                    return EchoOutcome.NotCounted;
                }

                var inOrder = sequence == _expected;
                _expected = sequence + 1;
                _echoed++;
                SettleIfDone();
                return inOrder ? EchoOutcome.InOrder : EchoOutcome.OutOfOrder;
            }
        }

        public void SendingDone()
        {
            lock (_lock)
            {
                _sendingDone = true;
                SettleIfDone();
            }
        }

        /// <summary>The socket ended during the run.</summary>
        /// <returns>Messages sent and not echoed, now lost; -1 when the socket was already down or no longer counted.</returns>
        public long Drop()
        {
            lock (_lock)
            {
                if (_down || !_counting)
                {
                    return -1;
                }

                _down = true;
                Settled.TrySetResult();
                return _sent - _echoed;
            }
        }

        /// <summary>Freezes the counters at the end of the echo wait.</summary>
        /// <returns>Messages sent and not echoed by now (lost), 0 for a socket already down.</returns>
        public long StopCounting()
        {
            lock (_lock)
            {
                if (!_counting || _down)
                {
                    _counting = false;
                    return 0;
                }

                _counting = false;
                Settled.TrySetResult();
                return _sent - _echoed;
            }
        }

        private void SettleIfDone()
        {
            if (_sendingDone && _echoed >= _sent)
            {
                Settled.TrySetResult();
            }
        }
    }
}
