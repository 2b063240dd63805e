namespace Tunnel2.LoadTests.WebSockets;

/// <summary>One WebSocket run: N sockets to one URL, each sending at a fixed rate for a fixed time.</summary>
internal sealed record WebSocketLoadOptions
{
    public required string Label { get; init; }

    /// <summary>ws:// or wss:// URL of an echo endpoint (TestBackend /loadtest/ws, or it through the tunnel).</summary>
    public required Uri Url { get; init; }

    public int Sockets { get; init; } = 1000;

    /// <summary>Messages per second each socket sends (open loop; a random phase per socket).</summary>
    public double MessagesPerSecond { get; init; } = 1;

    /// <summary>Bytes per message, at least <see cref="WebSocketSchedule.HeaderSize"/>.</summary>
    public int MessageSize { get; init; } = 64;

    /// <summary>How long the sockets send, after all of them have connected (or failed to).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Connects in progress at once.</summary>
    public int ConnectConcurrency { get; init; } = 100;

    /// <summary>Deadline of one connect (TCP + upgrade); then it counts as a connect timeout.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of the whole connect phase; connects not done by then are cancelled and counted.</summary>
    public TimeSpan ConnectPhaseTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>After the last send, how long echoes may take before the missing ones count as lost.</summary>
    public TimeSpan EchoTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadline of the close handshakes at the end.</summary>
    public TimeSpan CloseTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Seed of the send phases: the same seed gives the same schedule.</summary>
    public int Seed { get; init; } = 1;

    public TimeSpan Interval => TimeSpan.FromSeconds(1 / MessagesPerSecond);

    /// <summary>Throws for settings that cannot run.</summary>
    public void Validate()
    {
        if (Sockets < 1)
        {
            throw new ArgumentException("At least one socket.");
        }

        if (!(MessagesPerSecond > 0) || double.IsInfinity(MessagesPerSecond))
        {
            throw new ArgumentException("The message rate must be positive.");
        }

        if (MessageSize < WebSocketSchedule.HeaderSize)
        {
            throw new ArgumentException($"Messages carry a {WebSocketSchedule.HeaderSize}-byte header: the size must be at least that.");
        }

        if (Duration <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero || ConnectPhaseTimeout <= TimeSpan.Zero
            || EchoTimeout <= TimeSpan.Zero || CloseTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("Durations and timeouts must be positive.");
        }

        if (ConnectConcurrency < 1)
        {
            throw new ArgumentException("At least one connect at a time.");
        }
    }
}
