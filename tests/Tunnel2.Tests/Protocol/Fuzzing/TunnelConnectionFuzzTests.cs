using CsCheck;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>
/// Random and mutated peer input against a real <see cref="TunnelConnection"/> in each role (reliability.md §2 A1–A13):
/// the process never crashes, no case hangs (each is bounded by <see cref="ConnectionFuzzHarness.CaseTimeout"/>), and
/// the connection only ever ends in a documented way (<see cref="ConnectionFuzzHarness.AssertDocumentedOutcome"/>).
/// </summary>
public class TunnelConnectionFuzzTests
{
    private const long Iterations = 250;

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public Task ValidFrameStreams_EndOnlyInDocumentedWays(TunnelRole role)
        => FuzzInputs.Valid(role).SampleAsync(input => RunCaseAsync(input, role), iter: Iterations, threads: 1, print: input => input.ToString());

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public Task MutatedFrameStreams_EndOnlyInDocumentedWays(TunnelRole role)
        => FuzzInputs.Mutated(role).SampleAsync(input => RunCaseAsync(input, role), iter: Iterations * 2, threads: 1, print: input => input.ToString());

    [Theory]
    [InlineData(TunnelRole.Client)]
    [InlineData(TunnelRole.Server)]
    public Task RandomBytes_EndOnlyInDocumentedWays(TunnelRole role)
        => FuzzInputs.RandomBytes.SampleAsync(input => RunCaseAsync(input, role), iter: Iterations, threads: 1, print: input => input.ToString());

    private static async Task RunCaseAsync(FuzzInput input, TunnelRole role)
        => ConnectionFuzzHarness.AssertDocumentedOutcome(await ConnectionFuzzHarness.RunAsync(input, role), input);
}
