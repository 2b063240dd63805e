using System.Buffers;
using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Testing;

namespace Tunnel2.Tests.Protocol.Framing;

public class SettingsFrameTests
{
    [Fact]
    public void WritePayload_ThenReadPayload_RoundTrips()
    {
        var settings = new TunnelSettings(MaxConcurrentStreams: 1, InitialWindowSize: int.MaxValue, MaxFrameSize: TunnelSettings.MaxFrameSizeLimit, MaxHeaderListSize: 0);
        var payload = new byte[SettingsFrame.PayloadSize];

        SettingsFrame.WritePayload(payload, settings);

        Assert.Equal(settings, SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload)));
    }

    [Fact]
    public void WritePayload_UsesTheDocumentedIdentifiers()
    {
        var payload = new byte[SettingsFrame.PayloadSize];

        SettingsFrame.WritePayload(payload, new TunnelSettings(0x0A, 0x0B_0000, 0x0C_0000, 0x0D));

        // docs/protocol.md §3.5: 0x1 MAX_CONCURRENT_STREAMS, 0x2 INITIAL_WINDOW_SIZE, 0x3 MAX_FRAME_SIZE, 0x4 MAX_HEADER_LIST_SIZE.
        Assert.Equal(
            new byte[]
            {
                0, 1, 0, 0, 0, 0x0A,
                0, 2, 0, 0x0B, 0, 0,
                0, 3, 0, 0x0C, 0, 0,
                0, 4, 0, 0, 0, 0x0D,
            },
            payload);
    }

    [Fact]
    public void ReadPayload_Empty_GivesProtocolDefaults()
    {
        var settings = SettingsFrame.ReadPayload(ReadOnlySequence<byte>.Empty);

        Assert.Equal(new TunnelSettings(100, 64 * 1024, 16 * 1024, 16 * 1024), settings);
        Assert.Same(TunnelSettings.ProtocolDefaults, settings);
    }

    [Fact]
    public void ReadPayload_UnknownIdentifier_IsIgnored()
    {
        var payload = TestFrames.SettingsPayload(((SettingsParameter)0x99, 12345), (SettingsParameter.MaxConcurrentStreams, 5));

        var settings = SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload));

        Assert.Equal(TunnelSettings.ProtocolDefaults with { MaxConcurrentStreams = 5 }, settings);
    }

    [Fact]
    public void ReadPayload_RepeatedIdentifier_LastValueWins()
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.MaxFrameSize, 20_000), (SettingsParameter.MaxFrameSize, 30_000));

        Assert.Equal(30_000, SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload)).MaxFrameSize);
    }

    [Fact]
    public void ReadPayload_EntriesSplitAcrossSegments_ReadIdentically()
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.InitialWindowSize, 70_000), (SettingsParameter.MaxHeaderListSize, 4096));
        for (var split = 0; split <= payload.Length; split++)
        {
            var settings = SettingsFrame.ReadPayload(ReadOnlySequenceFactory.Split(payload, split));

            Assert.Equal(TunnelSettings.ProtocolDefaults with { InitialWindowSize = 70_000, MaxHeaderListSize = 4096 }, settings);
        }
    }

    [Theory]
    [InlineData(uint.MaxValue)]
    [InlineData(0x8000_0000u)]
    public void ReadPayload_UnsignedValuesAboveIntMax_AreClamped(uint value)
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.MaxConcurrentStreams, value), (SettingsParameter.MaxHeaderListSize, value));

        var settings = SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload));

        Assert.Equal(int.MaxValue, settings.MaxConcurrentStreams);
        Assert.Equal(int.MaxValue, settings.MaxHeaderListSize);
    }

    [Theory]
    [InlineData(TunnelSettings.MinWindowSize - 1u)]
    [InlineData(0u)]
    [InlineData(0x8000_0000u)]
    public void SETTINGS_InitialWindowSizeOutOfRange_FlowControlError(uint value)
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.InitialWindowSize, value));

        var ex = Assert.Throws<TunnelConnectionException>(() => SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload)));

        Assert.Equal(TunnelErrorCode.FlowControlError, ex.ErrorCode);
    }

    [Theory]
    [InlineData(TunnelSettings.MinFrameSize - 1u)]
    [InlineData(TunnelSettings.MaxFrameSizeLimit + 1u)]
    [InlineData(0u)]
    public void SETTINGS_MaxFrameSizeOutOfRange_ProtocolError(uint value)
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.MaxFrameSize, value));

        var ex = Assert.Throws<TunnelConnectionException>(() => SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload)));

        Assert.Equal(TunnelErrorCode.ProtocolError, ex.ErrorCode);
    }

    [Theory]
    [InlineData(TunnelSettings.MinFrameSize)]
    [InlineData(TunnelSettings.MaxFrameSizeLimit)]
    public void SETTINGS_MaxFrameSizeAtBounds_Accepted(int value)
    {
        var payload = TestFrames.SettingsPayload((SettingsParameter.MaxFrameSize, (uint)value));

        Assert.Equal(value, SettingsFrame.ReadPayload(new ReadOnlySequence<byte>(payload)).MaxFrameSize);
    }
}
