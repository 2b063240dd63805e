using Tunnel2.Protocol;
using Tunnel2.Protocol.Multiplexing;

namespace Tunnel2.Tests.Protocol.Fuzzing;

/// <summary>Replays every checked-in corpus file (corpus/README.md) through the decoder and through a connection in both roles.</summary>
public class FuzzCorpusTests
{
    private static readonly string s_corpus = Path.Combine(AppContext.BaseDirectory, "Protocol", "Fuzzing", "corpus");

    /// <summary>Expected close codes (Client role, Server role) for the hand-made cases; other files get the generic properties.</summary>
    private static readonly Dictionary<string, (TunnelErrorCode Client, TunnelErrorCode Server)> s_expected = new()
    {
        ["settings-then-eof"] = (TunnelErrorCode.ConnectionLost, TunnelErrorCode.ConnectionLost),
        ["header-claims-16mib"] = (TunnelErrorCode.FrameSizeError, TunnelErrorCode.FrameSizeError),
        ["truncated-mid-payload"] = (TunnelErrorCode.ConnectionLost, TunnelErrorCode.ConnectionLost),
        ["first-frame-not-settings"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["settings-ack-first"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["settings-twice"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["settings-bad-length"] = (TunnelErrorCode.FrameSizeError, TunnelErrorCode.FrameSizeError),
        ["settings-max-frame-size-too-small"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["settings-window-too-large"] = (TunnelErrorCode.FlowControlError, TunnelErrorCode.FlowControlError),
        ["unknown-frame-type-priority"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["continuation-type"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["data-on-stream-zero"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["ping-wrong-length"] = (TunnelErrorCode.FrameSizeError, TunnelErrorCode.FrameSizeError),
        ["reset-wrong-length"] = (TunnelErrorCode.FrameSizeError, TunnelErrorCode.FrameSizeError),
        ["goaway-short"] = (TunnelErrorCode.FrameSizeError, TunnelErrorCode.FrameSizeError),
        ["undefined-flags-on-reset"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["window-update-zero-connection"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["window-update-overflow-connection"] = (TunnelErrorCode.FlowControlError, TunnelErrorCode.FlowControlError),
        ["data-on-never-opened-stream"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["goaway-error-from-peer"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ProtocolError),
        ["ping-flood"] = (TunnelErrorCode.ConnectionLost, TunnelErrorCode.ConnectionLost),
        ["headers-invalid-block"] = (TunnelErrorCode.ConnectionLost, TunnelErrorCode.ConnectionLost),
        ["headers-after-end-stream"] = (TunnelErrorCode.ConnectionLost, TunnelErrorCode.ConnectionLost),
        ["data-before-headers-on-local-stream"] = (TunnelErrorCode.ProtocolError, TunnelErrorCode.ConnectionLost),
    };

    public static TheoryData<string> CorpusFiles
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var file in Directory.EnumerateFiles(s_corpus, "*.bin").Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetFileNameWithoutExtension(file));
            }

            return data;
        }
    }

    [Fact]
    public void Corpus_IsCopiedAndDocumented()
    {
        var readme = File.ReadAllText(Path.Combine(s_corpus, "README.md"));
        var files = Directory.EnumerateFiles(s_corpus, "*.bin").Select(Path.GetFileNameWithoutExtension).ToList();

        Assert.True(files.Count >= 20, $"Only {files.Count} corpus files were found in {s_corpus}.");
        Assert.All(files, name => Assert.Contains($"`{name}.bin`", readme, StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(CorpusFiles))]
    public async Task Corpus_ReplaysWithItsDocumentedOutcome(string name)
    {
        var bytes = await File.ReadAllBytesAsync(Path.Combine(s_corpus, name + ".bin"));
        var input = new FuzzInput(bytes, FuzzInputs.Normalize([1, 9, 10, bytes.Length / 2, bytes.Length - 1], bytes.Length), name);

        FrameDecoderFuzzTests.AssertDecoderProperties(input, 64 * 1024);
        foreach (var role in new[] { TunnelRole.Client, TunnelRole.Server })
        {
            var outcome = await ConnectionFuzzHarness.RunAsync(input, role);

            ConnectionFuzzHarness.AssertDocumentedOutcome(outcome, input);
            if (s_expected.TryGetValue(name, out var expected))
            {
                Assert.True((role == TunnelRole.Client ? expected.Client : expected.Server) == outcome.CloseErrorCode, $"{name}: {outcome}");
            }
        }
    }
}
