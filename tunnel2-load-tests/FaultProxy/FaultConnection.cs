using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace Tunnel2.FaultProxy;

/// <summary>How <see cref="FaultConnection.Break"/> ends a connection.</summary>
public enum BreakMode
{
    /// <summary>RST to both ends (<c>LingerState(true, 0)</c> then close): both see "connection reset".</summary>
    Reset,

    /// <summary>FIN to both ends: both see an orderly end of stream.</summary>
    Close,

    /// <summary>
    /// Forward nothing more, ever, in either direction, and never send FIN or RST: both ends keep an open socket that
    /// looks alive, as after a silent partition, a dead NAT mapping or a peer that lost power. Only the ends' own
    /// keep-alive can notice. The sockets are released when the proxy is disposed.
    /// </summary>
    HalfOpen,
}

/// <summary>
/// One proxied TCP connection: the accepted client socket, the socket to the target, and one pump per direction
/// that reads into a small bounded queue (so a held direction pushes back on its sender like a full TCP window) and
/// forwards under that direction's <see cref="Toxics"/>.
/// </summary>
public sealed class FaultConnection
{
    private const int QueuedChunks = 8;

    private readonly FaultProxy _proxy;
    private readonly Socket _client;
    private readonly Socket _target;
    private readonly int _bufferSize;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _lock = new();
    private BreakMode? _broken;
    private long _bytesUpstream;
    private long _bytesDownstream;
    private long _segmentsUpstream;
    private long _segmentsDownstream;

    internal FaultConnection(FaultProxy proxy, long id, Socket client, Socket target, int bufferSize)
    {
        _proxy = proxy;
        Id = id;
        _client = client;
        _target = target;
        _bufferSize = bufferSize;
        ClientEndPoint = client.RemoteEndPoint as IPEndPoint;
    }

    /// <summary>1 for the first connection the proxy accepted, then 2, 3, …</summary>
    public long Id { get; }

    public IPEndPoint? ClientEndPoint { get; }

    /// <summary>Bytes forwarded (handed to the target's socket) from the client to the target.</summary>
    public long BytesUpstream => Interlocked.Read(ref _bytesUpstream);

    /// <summary>Bytes forwarded from the target to the client.</summary>
    public long BytesDownstream => Interlocked.Read(ref _bytesDownstream);

    /// <summary>Send operations towards the target (more than one per read when slicing).</summary>
    public long SegmentsUpstream => Interlocked.Read(ref _segmentsUpstream);

    /// <summary>Send operations towards the client.</summary>
    public long SegmentsDownstream => Interlocked.Read(ref _segmentsDownstream);

    /// <summary>How the connection was broken (by a call or by a toxic), or null.</summary>
    public BreakMode? BrokenBy
    {
        get
        {
            lock (_lock)
            {
                return _broken;
            }
        }
    }

    /// <summary>Completes when both sockets have been released.</summary>
    public Task Completion => _completion.Task;

    /// <summary>Ends the connection now (<see cref="BreakMode.Reset"/>, <see cref="BreakMode.Close"/>) or freezes it for good (<see cref="BreakMode.HalfOpen"/>).</summary>
    public void Break(BreakMode mode) => Break(mode, "requested");

    public override string ToString() => $"#{Id} {ClientEndPoint} up={BytesUpstream} down={BytesDownstream}";

    internal async Task RunAsync()
    {
        try
        {
            await Task.WhenAll(
                PumpAsync(_client, _target, _proxy.Upstream, upstream: true),
                PumpAsync(_target, _client, _proxy.Downstream, upstream: false));
        }
        finally
        {
            if (BrokenBy != BreakMode.HalfOpen)
            {
                Release();
            }
        }
    }

    /// <summary>Releases a connection the proxy is shutting down, whatever its state.</summary>
    internal void Shutdown()
    {
        lock (_lock)
        {
            _broken ??= BreakMode.Close;
        }

        _stop.Cancel();
        Release();
    }

    internal void Break(BreakMode mode, string reason)
    {
        lock (_lock)
        {
            if (_broken is not null)
            {
                return;
            }

            _broken = mode;
        }

        Log.ConnectionBroken(_proxy.Logger, Id, mode, reason);
        if (mode == BreakMode.HalfOpen)
        {
            // The pumps see the flag before their next send and park; the sockets stay open.
            return;
        }

        // Decide how the sockets end before the pumps stop: a pump that finishes first releases the sockets too, and
        // must not send a FIN where a RST is due (or the other way round).
        if (mode == BreakMode.Reset)
        {
            MakeAbortive(_client);
            MakeAbortive(_target);
        }
        else
        {
            ShutdownBoth(_client);
            ShutdownBoth(_target);
        }

        _stop.Cancel();
        Release();
    }

    private async Task PumpAsync(Socket source, Socket destination, Toxics toxics, bool upstream)
    {
        var queue = Channel.CreateBounded<Chunk>(new BoundedChannelOptions(QueuedChunks) { SingleReader = true, SingleWriter = true });
        var reading = ReadAsync(source, queue.Writer);
        try
        {
            await ForwardAsync(queue.Reader, destination, toxics, upstream);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
            // The destination refused the bytes: it is gone, so the source must learn it the hard way.
            Break(BreakMode.Reset, $"sending {(upstream ? "upstream" : "downstream")} failed: {ex.Message}");
        }
        finally
        {
            // Stop reading; what is still queued will never be forwarded.
            await reading;
            while (queue.Reader.TryRead(out var chunk))
            {
                chunk.Return();
            }
        }
    }

    private async Task ReadAsync(Socket source, ChannelWriter<Chunk> queue)
    {
        var token = _stop.Token;
        Exception? failure = null;
        try
        {
            while (true)
            {
                var buffer = ArrayPool<byte>.Shared.Rent(_bufferSize);
                int read;
                try
                {
                    read = await source.ReceiveAsync(buffer.AsMemory(0, _bufferSize), SocketFlags.None, token);
                }
                catch
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    throw;
                }

                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return;
                }

                var chunk = new Chunk(buffer, read, _proxy.Time.GetTimestamp());
                if (!queue.TryWrite(chunk))
                {
                    try
                    {
                        await queue.WriteAsync(chunk, token);
                    }
                    catch
                    {
                        chunk.Return();
                        throw;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
            failure = ex;
        }
        finally
        {
            // Null: the source sent FIN. An exception: it reset (or the proxy closed the socket).
            queue.TryComplete(failure);
        }
    }

    private async Task ForwardAsync(ChannelReader<Chunk> queue, Socket destination, Toxics toxics, bool upstream)
    {
        var token = _stop.Token;
        var countVersion = toxics.Snapshot.CountVersion;
        long counted = 0;
        while (true)
        {
            bool more;
            try
            {
                more = await queue.WaitToReadAsync(token);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
            {
                // The source reset. Hold it like data while the direction is held, then pass the reset on.
                await WaitWhileHeldAsync(toxics, token);
                Break(BreakMode.Reset, $"the {(upstream ? "client" : "target")} reset: {ex.Message}");
                return;
            }

            if (!more)
            {
                // FIN from the source: pass the half-close on (once nothing holds this direction).
                await WaitWhileHeldAsync(toxics, token);
                try
                {
                    destination.Shutdown(SocketShutdown.Send);
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }

                return;
            }

            while (queue.TryRead(out var chunk))
            {
                try
                {
                    var state = await WaitUntilDueAsync(toxics, chunk, token);
                    if (state.CountVersion != countVersion)
                    {
                        countVersion = state.CountVersion;
                        counted = 0;
                    }

                    // Byte-count toxics: forward up to the limit, then end the connection.
                    var allowed = chunk.Length;
                    BreakMode? end = null;
                    if (state.ResetAfterBytes is { } resetAfter && resetAfter - counted <= allowed)
                    {
                        allowed = (int)Math.Max(0, resetAfter - counted);
                        end = BreakMode.Reset;
                    }

                    if (state.LimitDataBytes is { } limit && limit - counted <= allowed)
                    {
                        allowed = (int)Math.Max(0, limit - counted);
                        end = BreakMode.Close;
                    }

                    await SendAsync(destination, chunk.Buffer.AsMemory(0, allowed), state, toxics, upstream, token);
                    counted += allowed;
                    if (end is { } mode)
                    {
                        Break(mode, $"{(mode == BreakMode.Reset ? "reset-after" : "limit-data")} reached {counted} bytes {(upstream ? "upstream" : "downstream")}");
                        return;
                    }
                }
                finally
                {
                    chunk.Return();
                }
            }
        }
    }

    /// <summary>Waits out holds and the chunk's latency; returns the toxics in force when it may go.</summary>
    private async Task<ToxicState> WaitUntilDueAsync(Toxics toxics, Chunk chunk, CancellationToken token)
    {
        while (true)
        {
            await WaitWhileHeldAsync(toxics, token);
            var state = toxics.Snapshot;
            var delay = _proxy.NextDelay(state);
            var remaining = delay - _proxy.Time.GetElapsedTime(chunk.ReceivedAt);
            if (remaining <= TimeSpan.Zero)
            {
                return state;
            }

            await Task.Delay(remaining, _proxy.Time, token);

            // A hold may have started meanwhile: check again before the bytes go (the jittered delay is drawn anew,
            // but time already waited counts, so a chunk is never delayed by more than one draw).
            if (!IsHeld(toxics.Snapshot))
            {
                return toxics.Snapshot;
            }
        }
    }

    private async Task SendAsync(Socket destination, ReadOnlyMemory<byte> data, ToxicState state, Toxics toxics, bool upstream, CancellationToken token)
    {
        var piece = data.Length;
        if (state.SliceSize > 0)
        {
            piece = Math.Min(piece, state.SliceSize);
        }

        if (state.BandwidthBytesPerSecond > 0)
        {
            // At most 50 ms worth of bytes per send, so the rate holds over short spans too.
            piece = (int)Math.Min(piece, Math.Max(1, state.BandwidthBytesPerSecond / 20));
        }

        while (!data.IsEmpty)
        {
            // A freeze (BreakAll HalfOpen) or a hold set while this chunk was waiting stops it here.
            await WaitWhileHeldAsync(toxics, token);
            var slice = data[..Math.Min(piece, data.Length)];

            // Counted before the send, so a peer that has read the bytes always finds them counted.
            if (upstream)
            {
                Interlocked.Add(ref _bytesUpstream, slice.Length);
                Interlocked.Increment(ref _segmentsUpstream);
            }
            else
            {
                Interlocked.Add(ref _bytesDownstream, slice.Length);
                Interlocked.Increment(ref _segmentsDownstream);
            }

            await destination.SendAsync(slice, SocketFlags.None, token);
            data = data[slice.Length..];

            var pause = TimeSpan.Zero;
            if (state.BandwidthBytesPerSecond > 0)
            {
                pause = TimeSpan.FromSeconds((double)slice.Length / state.BandwidthBytesPerSecond);
            }

            if (state.SliceSize > 0 && !data.IsEmpty && state.SliceDelay > pause)
            {
                pause = state.SliceDelay;
            }

            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause, _proxy.Time, token);
            }
        }
    }

    private async Task WaitWhileHeldAsync(Toxics toxics, CancellationToken token)
    {
        while (true)
        {
            if (BrokenBy == BreakMode.HalfOpen)
            {
                // Frozen for good: only the proxy's shutdown ends this wait.
                await Task.Delay(Timeout.InfiniteTimeSpan, _proxy.Time, token);
            }

            var changed = toxics.Changed;
            var state = toxics.Snapshot;
            if (state.HalfOpen)
            {
                await changed.WaitAsync(token);
                continue;
            }

            if (state.StalledUntil is { } until)
            {
                var remaining = until - _proxy.Time.GetUtcNow();
                if (remaining > TimeSpan.Zero)
                {
                    await Task.WhenAny(changed, Task.Delay(remaining, _proxy.Time, token));
                    token.ThrowIfCancellationRequested();
                    continue;
                }
            }

            return;
        }
    }

    private bool IsHeld(ToxicState state)
        => BrokenBy == BreakMode.HalfOpen || state.HalfOpen || (state.StalledUntil is { } until && until > _proxy.Time.GetUtcNow());

    private void Release()
    {
        if (BrokenBy == BreakMode.Reset)
        {
            Abort(_client);
            Abort(_target);
        }
        else
        {
            _client.Dispose();
            _target.Dispose();
        }

        if (_completion.TrySetResult())
        {
            _proxy.OnConnectionClosed(this);
        }
    }

    /// <summary>RST: linger 0, then <c>Close(0)</c>, which .NET treats as an abortive close even while a read is pending.</summary>
    internal static void Abort(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close(0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }

    /// <summary>SO_LINGER {on, 0}: from now on, however the socket is closed, the kernel sends RST, not FIN.</summary>
    private static void MakeAbortive(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    private static void ShutdownBoth(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    private readonly record struct Chunk(byte[] Buffer, int Length, long ReceivedAt)
    {
        public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
    }
}
