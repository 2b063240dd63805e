using CsCheck;
using Tunnel2.Protocol.Framing;
using Tunnel2.Protocol.Multiplexing;
using Tunnel2.Tests.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>
/// Runs alone (no other test in parallel), because it measures allocation process-wide: a connection's read loop,
/// writer and streams run on the thread pool, so a per-thread counter would miss most of it.
/// </summary>
[CollectionDefinition(nameof(AllocationMeasuringCollection), DisableParallelization = true)]
public sealed class AllocationMeasuringCollection;

/// <summary>
/// What hostile input can make a connection allocate. For every fuzz case:
/// <c>allocated ≤ FixedBudget + PerInputByteBudget × input bytes</c>, measured with
/// <see cref="GC.GetTotalAllocatedBytes(bool)"/> around the whole case (connection, its loops, the serving work).
/// </summary>
/// <remarks>
/// <para>Why these numbers. Measured on this suite (Debug, .NET 10): a connection that only exchanges SETTINGS
/// allocates about 60 KiB in the Client role and 170 KiB in the Server role (which also opens two streams); a PING
/// costs about 160 bytes (≈10 per input byte: the queued ACK and the writer's pipe segments). The most expensive
/// input per byte is a 13-byte HEADERS frame that opens a stream: the stream, its input pipe, a pooled copy of the
/// head, and the serving work (decode, read, answer) come to about 5 KiB, ≈420 bytes per input byte.</para>
/// <para>The budget is 1 KiB per input byte plus 512 KiB: about 2.5× the worst measured case, so thread-pool and
/// timer noise cannot trip it, while anything that scales with a length the peer merely declares (a 9-byte header
/// claiming 16 MiB would be ~1,800× over) or with the history of the connection (a leak per frame over hundreds of
/// frames) fails at once.</para>
/// </remarks>
[Collection(nameof(AllocationMeasuringCollection))]
public class ConnectionAllocationFuzzTests
{
    private const long FixedBudget = 512 * 1024;
    private const long PerInputByteBudget = 1024;

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public async Task MutatedFrameStreams_AllocationBoundedByInputSize(TunnelRole role)
    {
        await WarmAsync(role);
        await FuzzInputs.Mutated(role).SampleAsync(input => AssertBoundedAsync(input, role), iter: 150, threads: 1, print: input => input.ToString());
    }

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public async Task StreamOpeningFlood_AllocationBoundedByInputSize(TunnelRole role)
    {
        await WarmAsync(role);
        var frames = new List<FuzzInputs.Frame> { new((byte)FrameType.Settings, 0, 0, TestFrames.SettingsPayload()) };
        var head = HeaderBlockTestData.Request("GET", "/");
        var firstPeerId = role == TunnelRole.Client ? 2 : 1;
        for (var i = 0; i < 1_000; i++)
        {
            frames.Add(new FuzzInputs.Frame((byte)FrameType.Headers, (byte)FrameFlags.EndStream, (uint)(firstPeerId + (2 * i)), head));
        }

        await AssertBoundedAsync(new FuzzInput(FuzzInputs.Encode(frames, out _), [], $"1,000 stream-opening HEADERS for {role}"), role);
    }

    [Theory]
    [InlineData(TunnelRole.Client, FrameHeader.MaxLengthFieldValue)]
    [InlineData(TunnelRole.Server, FrameHeader.MaxLengthFieldValue)]
    [InlineData(TunnelRole.Client, 65_537)]
    public async Task HeaderClaimingHugePayload_CostsWhatItsNineBytesCost(TunnelRole role, int declared)
    {
        await WarmAsync(role);
        var frames = new List<FuzzInputs.Frame>
        {
            new((byte)FrameType.Settings, 0, 0, TestFrames.SettingsPayload()),
            new((byte)FrameType.Data, 0, 1, [], declared),
        };

        var outcome = await AssertBoundedAsync(new FuzzInput(FuzzInputs.Encode(frames, out _), [], $"DATA header claiming {declared} bytes"), role);

        Assert.Equal(Tunnel2.Protocol.TunnelErrorCode.FrameSizeError, outcome.CloseErrorCode);
    }

    private static async Task<ConnectionOutcome> AssertBoundedAsync(FuzzInput input, TunnelRole role)
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var outcome = await ConnectionFuzzHarness.RunAsync(input, role);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        ConnectionFuzzHarness.AssertDocumentedOutcome(outcome, input);
        var budget = FixedBudget + (PerInputByteBudget * input.Bytes.Length);
        Assert.True(allocated <= budget, $"Allocated {allocated:N0} bytes for {input.Bytes.Length:N0} input bytes (budget {budget:N0}): {outcome} for {input}");
        return outcome;
    }

    /// <summary>One-time costs (JIT-time statics, pool warm-up, first exceptions) are not the input's doing.</summary>
    private static async Task WarmAsync(TunnelRole role)
    {
        for (var seed = 0; seed < 20; seed++)
        {
            await ConnectionFuzzHarness.RunAsync(FuzzInputs.Build(role, seed, frameCount: 20, mutations: seed % 3, splitCount: 3), role);
        }
    }
}
