using Tunnel2.Protocol;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Testing;
using Tunnel2.Tests.Protocol.Multiplexing;
using Xunit.Abstractions;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>Deterministic reproductions of what the fuzzers found (corpus/README.md lists the inputs).</summary>
public class FuzzFindingsTests(ITestOutputHelper output)
{
    /// <summary>
    /// Found by <see cref="TunnelConnectionFuzzTests"/> (corpus/reset-races-final-data.bin): a peer RESET that lands
    /// while the last DATA of a stream waits for credit makes <see cref="TunnelStream.SendDataAsync"/> throw
    /// <see cref="InvalidOperationException"/> ("Stream N has already ended its side") instead of the stream's
    /// <see cref="TunnelStreamException"/>. The credit wait completes (WINDOW_UPDATE), the read loop then processes the
    /// RESET, which sets the stream's local end; the resumed producer checks only that flag, not the abort reason.
    /// </summary>
    [Fact]
    public async Task ResetRightAfterCreditGrant_FinalDataFailsWithTheStreamException()
    {
        // Bounded: 20 attempts, each its own connection; the race goes the wrong way in nearly all of them.
        for (var attempt = 0; attempt < 20; attempt++)
        {
            await using var peer = RawTunnelPeer.Start(output);
            await peer.HandshakeAsync((SettingsParameter.InitialWindowSize, 16 * 1024));
            Assert.True(peer.Connection.TryOpenStream(out var stream));
            Assert.True(stream.SendHead(TunnelStreamTestExtensions.RequestHead()));
            await peer.ExpectAsync(FrameType.Headers, withStreamId: stream.StreamId);

            // 16 KiB go at once; the last 10 bytes (with END_STREAM) wait for stream credit.
            var send = stream.WriteAsync(TestFrames.Pattern((16 * 1024) + 10), endStream: true, CancellationToken.None).AsTask();
            await peer.ExpectAsync(FrameType.Data, withLength: 16 * 1024, withStreamId: stream.StreamId);
            Assert.False(send.IsCompleted);

            // Credit and RESET in one read: the grant resumes the producer asynchronously, after the RESET is handled.
            await peer.SendAsync([
                .. TestFrames.Create(FrameType.WindowUpdate, FrameFlags.None, stream.StreamId, TestFrames.UInt32(10)),
                .. TestFrames.Create(FrameType.Reset, FrameFlags.None, stream.StreamId, TestFrames.UInt32((uint)TunnelErrorCode.Cancel)),
            ]);

            var failure = await Record.ExceptionAsync(() => send.DefaultTimeout());
            Assert.True(failure is null or TunnelStreamException, $"Attempt {attempt}: {failure}");
        }
    }
}
