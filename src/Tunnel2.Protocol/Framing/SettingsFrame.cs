using System.Buffers;
using System.Buffers.Binary;

namespace Tunnel2.Protocol.Framing;

/// <summary>Identifiers of SETTINGS entries (docs/protocol.md §3.5).</summary>
public enum SettingsParameter : ushort
{
    MaxConcurrentStreams = 0x1,
    InitialWindowSize = 0x2,
    MaxFrameSize = 0x3,
    MaxHeaderListSize = 0x4,
}

/// <summary>
/// SETTINGS payload: a list of 6-byte entries. Unknown identifiers are ignored so that later versions can add
/// settings without breaking older peers (as RFC 9113 §6.5.2).
/// <code>
/// +-------------------------------+
/// |       Identifier (16)         |
/// +-------------------------------+-------------------------------+
/// |                        Value (32)                             |
/// +---------------------------------------------------------------+
/// </code>
/// </summary>
public static class SettingsFrame
{
    public const int EntrySize = 6;

    /// <summary>Bytes needed for the SETTINGS payload that <see cref="WritePayload"/> writes.</summary>
    public const int PayloadSize = 4 * EntrySize;

    public static void WritePayload(Span<byte> destination, TunnelSettings settings)
    {
        WriteEntry(destination, SettingsParameter.MaxConcurrentStreams, (uint)settings.MaxConcurrentStreams);
        WriteEntry(destination.Slice(EntrySize), SettingsParameter.InitialWindowSize, (uint)settings.InitialWindowSize);
        WriteEntry(destination.Slice(2 * EntrySize), SettingsParameter.MaxFrameSize, (uint)settings.MaxFrameSize);
        WriteEntry(destination.Slice(3 * EntrySize), SettingsParameter.MaxHeaderListSize, (uint)settings.MaxHeaderListSize);
    }

    /// <summary>Reads a SETTINGS payload over the protocol defaults.</summary>
    /// <exception cref="TunnelConnectionException">A value is outside the range docs/protocol.md §3.5 allows.</exception>
    public static TunnelSettings ReadPayload(ReadOnlySequence<byte> payload)
    {
        var settings = TunnelSettings.ProtocolDefaults;
        Span<byte> entry = stackalloc byte[EntrySize];
        while (payload.Length >= EntrySize)
        {
            payload.Slice(0, EntrySize).CopyTo(entry);
            payload = payload.Slice(EntrySize);
            var id = (SettingsParameter)BinaryPrimitives.ReadUInt16BigEndian(entry);
            var value = BinaryPrimitives.ReadUInt32BigEndian(entry.Slice(2));
            switch (id)
            {
                case SettingsParameter.MaxConcurrentStreams:
                    settings = settings with { MaxConcurrentStreams = (int)Math.Min(value, int.MaxValue) };
                    break;
                case SettingsParameter.InitialWindowSize:
                    if (value < TunnelSettings.MinWindowSize || value > TunnelSettings.MaxWindowSize)
                    {
                        throw new TunnelConnectionException(
                            TunnelErrorCode.FlowControlError,
                            $"SETTINGS InitialWindowSize {value} is outside [{TunnelSettings.MinWindowSize}, {TunnelSettings.MaxWindowSize}].");
                    }

                    settings = settings with { InitialWindowSize = (int)value };
                    break;
                case SettingsParameter.MaxFrameSize:
                    if (value < TunnelSettings.MinFrameSize || value > TunnelSettings.MaxFrameSizeLimit)
                    {
                        throw new TunnelConnectionException(
                            TunnelErrorCode.ProtocolError,
                            $"SETTINGS MaxFrameSize {value} is outside [{TunnelSettings.MinFrameSize}, {TunnelSettings.MaxFrameSizeLimit}].");
                    }

                    settings = settings with { MaxFrameSize = (int)value };
                    break;
                case SettingsParameter.MaxHeaderListSize:
                    settings = settings with { MaxHeaderListSize = (int)Math.Min(value, int.MaxValue) };
                    break;
                default:
                    break;
            }
        }

        return settings;
    }

    private static void WriteEntry(Span<byte> destination, SettingsParameter id, uint value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)id);
        BinaryPrimitives.WriteUInt32BigEndian(destination.Slice(2), value);
    }
}

/// <summary>The values one endpoint announces in its SETTINGS frame: limits on what it will receive.</summary>
public sealed record TunnelSettings(int MaxConcurrentStreams, int InitialWindowSize, int MaxFrameSize, int MaxHeaderListSize)
{
    public const int MinFrameSize = 16 * 1024;
    public const int MaxFrameSizeLimit = 1024 * 1024;
    public const int MinWindowSize = 16 * 1024;
    public const int MaxWindowSize = int.MaxValue;

    /// <summary>Values in force until the peer's SETTINGS arrive (docs/protocol.md §3.5).</summary>
    public static TunnelSettings ProtocolDefaults { get; } = new(100, 64 * 1024, MinFrameSize, 16 * 1024);
}
