using System.Buffers;

namespace Tunnel2.Protocol.Multiplexing;

/// <summary>
/// Relays opaque bytes both ways between a tunnel stream and a byte stream after a 101 Switching Protocols
/// (WebSocket or any other upgraded protocol), on the server (public connection) and on the client (backend
/// connection) alike. Each direction ends on its own: the byte stream's EOF becomes END_STREAM; the tunnel
/// stream's END_STREAM ends the relay, after which the caller closes its connection.
/// </summary>
public static class OpaqueRelay
{
    /// <summary>Read size towards the tunnel: one default DATA frame.</summary>
    private const int BufferSize = 16 * 1024;

    /// <summary>Once the byte-stream side has ended, how long the tunnel side may take to follow.</summary>
    private static readonly TimeSpan s_halfClosedTimeout = TimeSpan.FromSeconds(30);

    /// <returns>
    /// True when both sides ended cleanly; false when either ended abruptly, in which case the stream has been reset
    /// and the caller must abort its connection (a cut must never look like a close).
    /// </returns>
    public static Task<bool> RunAsync(TunnelStream stream, Stream other) => RunAsync(stream, other, idleTimeout: null);

    /// <param name="idleTimeout">When set, both sides are torn down after this long without a byte either way.</param>
    public static async Task<bool> RunAsync(TunnelStream stream, Stream other, TimeSpan? idleTimeout)
    {
        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(stream.Aborted);
        using var idle = idleTimeout is { } timeout ? new IdleWatch(stream, timeout) : null;
        var toTunnel = OtherToTunnelAsync(other, stream, idle, stopReading.Token);
        var fromTunnel = TunnelToOtherAsync(stream, other, idle);
        bool clean;
        if (await Task.WhenAny(toTunnel, fromTunnel) == fromTunnel)
        {
            // The tunnel side finished first: stop reading the other side and end ours.
            clean = await fromTunnel;
            stopReading.Cancel();
            await toTunnel;
            if (clean)
            {
                stream.Complete();
            }
        }
        else
        {
            // The other side ended (END_STREAM sent): wait, bounded, for the tunnel side to follow.
            clean = await toTunnel && await WaitQuietlyAsync(fromTunnel);
        }

        if (!clean)
        {
            stream.Reset(TunnelErrorCode.Cancel, "The upgraded connection ended abruptly.");
        }

        return clean;
    }

    /// <returns>True when the other side ended cleanly (EOF) and END_STREAM went out.</returns>
    private static async Task<bool> OtherToTunnelAsync(Stream other, TunnelStream stream, IdleWatch? idle, CancellationToken cancellationToken)
    {
        while (true)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            int read;
            try
            {
                read = await other.ReadAsync(buffer.AsMemory(0, BufferSize), cancellationToken);
            }
            catch (Exception)
            {
                ArrayPool<byte>.Shared.Return(buffer);
                return false;
            }

            try
            {
                if (read == 0)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    stream.Complete();
                    return true;
                }

                idle?.Touch();
                await stream.SendDataAsync(buffer, read, endStream: false, cancellationToken);
            }
            catch (Exception)
            {
                return false;
            }
        }
    }

    /// <returns>True when the stream ended with END_STREAM and everything reached the other side.</returns>
    private static async Task<bool> TunnelToOtherAsync(TunnelStream stream, Stream other, IdleWatch? idle)
    {
        var input = stream.Input;
        try
        {
            while (true)
            {
                var result = await input.ReadAsync();
                foreach (var segment in result.Buffer)
                {
                    await other.WriteAsync(segment);
                }

                input.AdvanceTo(result.Buffer.End);
                await other.FlushAsync();
                idle?.Touch();
                if (result.IsCompleted)
                {
                    return true;
                }
            }
        }
        catch (Exception)
        {
            return false;
        }
        finally
        {
            await input.CompleteAsync();
        }
    }

    private static async Task<bool> WaitQuietlyAsync(Task<bool> direction)
    {
        try
        {
            return await direction.WaitAsync(s_halfClosedTimeout);
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>Resets the stream when no byte has moved for the timeout (the reset ends both relay directions).</summary>
    private sealed class IdleWatch : IDisposable
    {
        private readonly CancellationTokenSource _timer;
        private readonly TimeSpan _timeout;
        private readonly CancellationTokenRegistration _registration;

        public IdleWatch(TunnelStream stream, TimeSpan timeout)
        {
            _timeout = timeout;
            _timer = new CancellationTokenSource(timeout);
            _registration = _timer.Token.UnsafeRegister(
                static state => ((TunnelStream)state!).Reset(TunnelErrorCode.Cancel, "Idle timeout."),
                stream);
        }

        public void Touch() => _timer.CancelAfter(_timeout);

        public void Dispose()
        {
            _registration.Dispose();
            _timer.Dispose();
        }
    }
}
