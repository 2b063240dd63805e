using Tunnel2.Protocol.Framing;

namespace Tunnel2.Protocol;

/// <summary>
/// Limits of one uplink connection, validated in the setters as Kestrel's Http2Limits. The receive-side values are
/// announced to the peer in SETTINGS; docs/protocol.md §7 explains each default.
/// </summary>
public sealed class TunnelLimits
{
    private int _maxFrameSize = 64 * 1024;
    private int _maxConcurrentStreams = 1000;
    private int _initialStreamWindowSize = 1024 * 1024;
    private int _connectionWindowSize = 16 * 1024 * 1024;
    private int _maxStreamWindowSize = 16 * 1024 * 1024;
    private int _maxHeaderListSize = 64 * 1024;
    private TimeSpan _keepAliveInterval = TimeSpan.FromSeconds(10);
    private TimeSpan _keepAliveTimeout = TimeSpan.FromSeconds(30);
    private int _maxQueuedControlFrames = 10_000;

    /// <summary>
    /// Largest frame payload this endpoint accepts. 64 KiB by default: a whole Kestrel request head (32 KiB limit)
    /// fits one HEADERS frame, and the 9-byte header is 0.01 % of a full DATA frame.
    /// </summary>
    public int MaxFrameSize
    {
        get => _maxFrameSize;
        set => _maxFrameSize = InRange(value, TunnelSettings.MinFrameSize, TunnelSettings.MaxFrameSizeLimit);
    }

    /// <summary>Streams the peer may have open at once on one connection; more are refused with RESET(REFUSED_STREAM).</summary>
    public int MaxConcurrentStreams
    {
        get => _maxConcurrentStreams;
        set => _maxConcurrentStreams = InRange(value, 1, int.MaxValue);
    }

    /// <summary>
    /// Credit each new stream gets for sending to this endpoint. 1 MiB, as Kestrel's HTTP/2 stream window since .NET 7
    /// (dotnet/aspnetcore#43302); it bounds the memory one slow consumer can pin.
    /// </summary>
    public int InitialStreamWindowSize
    {
        get => _initialStreamWindowSize;
        set => _initialStreamWindowSize = InRange(value, TunnelSettings.MinWindowSize, TunnelSettings.MaxWindowSize);
    }

    /// <summary>
    /// Largest window a stream's receive window may grow to. A stream whose consumer keeps up with a window's worth
    /// per round trip gets its window doubled (BDP estimation, as HttpClient's since dotnet/runtime#54755), so one
    /// stream fills a long fat path: 1 MiB per 200 ms RTT is only 5 MB/s. Equal to
    /// <see cref="InitialStreamWindowSize"/> turns growth off.
    /// </summary>
    public int MaxStreamWindowSize
    {
        get => Math.Max(_maxStreamWindowSize, _initialStreamWindowSize);
        set => _maxStreamWindowSize = InRange(value, TunnelSettings.MinWindowSize, TunnelSettings.MaxWindowSize);
    }

    /// <summary>Credit shared by all streams of the connection; bounds the receive buffers of one uplink.</summary>
    public int ConnectionWindowSize
    {
        get => _connectionWindowSize;
        set => _connectionWindowSize = InRange(value, FlowControl.FlowControlConstants.InitialConnectionWindowSize, int.MaxValue);
    }

    /// <summary>Largest decoded header list (names + values + 32 bytes per field, as RFC 9113 §6.5.2) accepted.</summary>
    public int MaxHeaderListSize
    {
        get => _maxHeaderListSize;
        set => _maxHeaderListSize = InRange(value, 1024, int.MaxValue);
    }

    /// <summary>How long the connection may be silent before this endpoint sends a PING.</summary>
    public TimeSpan KeepAliveInterval
    {
        get => _keepAliveInterval;
        set => _keepAliveInterval = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must be positive.");
    }

    /// <summary>How long the connection may receive nothing at all before the peer is declared dead.</summary>
    public TimeSpan KeepAliveTimeout
    {
        get => _keepAliveTimeout;
        set => _keepAliveTimeout = value > TimeSpan.Zero ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Must be positive.");
    }

    /// <summary>
    /// Control frames (PING/SETTINGS acknowledgements, window updates, resets) that may wait for the writer at once.
    /// A peer that makes us queue more is flooding us (CERT VU#605641 classes) and gets ENHANCE_YOUR_CALM.
    /// </summary>
    public int MaxQueuedControlFrames
    {
        get => _maxQueuedControlFrames;
        set => _maxQueuedControlFrames = InRange(value, 16, int.MaxValue);
    }

    internal TunnelSettings ToSettings() => new(MaxConcurrentStreams, InitialStreamWindowSize, MaxFrameSize, MaxHeaderListSize);

    private static int InRange(int value, int min, int max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"Must be between {min} and {max}.");
        }

        return value;
    }
}
