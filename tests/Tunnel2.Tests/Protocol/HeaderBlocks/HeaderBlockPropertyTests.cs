using CsCheck;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Tests.Protocol.HeaderBlocks;

/// <summary>Property tests: every valid block round-trips; no input at all makes the reader throw or read outside the block.</summary>
public class HeaderBlockPropertyTests
{
    private const long Iterations = 2_000;

    private static readonly Gen<string> s_token =
        Gen.Char["!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"].Array[1, 24].Select(c => new string(c));

    // HTAB, SP, VCHAR and obs-text: every char a value may carry.
    private static readonly Gen<char> s_valueChar = Gen.Frequency(
        (1, (IGen<char>)Gen.Const('\t')),
        (12, Gen.Char[' ', '~']),
        (4, Gen.Char['\u0080', '\u00ff']));

    private static readonly Gen<string> s_value = s_valueChar.Array[0, 48].Select(c => new string(c));

    private static readonly Gen<string> s_name = Gen.OneOf(
        Gen.Int[1, StaticTable.NameCount - 1].Select(i => StaticTable.GetName(i)!),
        Gen.Int[1, StaticTable.NameCount - 1].Select(i => StaticTable.GetName(i)!.ToLowerInvariant()),
        s_token);

    private static readonly Gen<string> s_method = Gen.OneOf(
        Gen.Int[1, StaticTable.MethodCount - 1].Select(i => StaticTable.GetMethod(i)!),
        s_token);

    private static readonly Gen<BlockSpec> s_block = Gen.Select(
        Gen.Int[1, 3].Select(k => (HeaderBlockKind)k),
        s_method,
        s_valueChar.Array[1, 64].Select(c => new string(c)),
        Gen.Int[100, 999],
        Gen.Select(s_name, s_value).Array[0, 24],
        (kind, method, target, status, fields) => new BlockSpec(kind, method, target, status, fields));

    [Fact]
    public void Read_OfWrite_RoundTripsEveryValidBlock()
    {
        s_block.Sample(
            spec =>
            {
                var block = spec.Encode();

                var decoded = HeaderBlockTestData.Decode(block);

                Assert.Equal(spec.Kind, decoded.Kind);
                switch (spec.Kind)
                {
                    case HeaderBlockKind.Request:
                        Assert.Equal(spec.Method, decoded.Method);
                        Assert.Equal(StaticTable.FindMethod(spec.Method), decoded.MethodCode);
                        Assert.Equal(spec.Target, decoded.Target);
                        break;
                    case HeaderBlockKind.Response:
                        Assert.Equal(spec.Status, decoded.Status);
                        break;
                }

                Assert.Equal(spec.Fields.Length, decoded.Fields.Count);
                for (var i = 0; i < spec.Fields.Length; i++)
                {
                    var (name, value) = spec.Fields[i];
                    var field = decoded.Fields[i];
                    var index = StaticTable.FindName(name);
                    Assert.Equal(index, field.StaticIndex);
                    Assert.Equal(index == 0 ? name : StaticTable.GetName(index), field.Name);
                    Assert.Equal(name, field.Name, ignoreCase: true);
                    Assert.Equal(value, field.ValueText);
                }
            },
            iter: Iterations,
            print: spec => spec.ToString());
    }

    [Fact]
    public void Read_RandomBytes_NeverThrowsNorLeavesTheBlock()
    {
        // Start most inputs with a valid kind byte so the generator reaches past the first check.
        var inputs = Gen.Frequency(
            (1, (IGen<byte[]>)Gen.Byte.Array[0, 96]),
            (4, Gen.Select(Gen.Byte[1, 3], Gen.Byte.Array[0, 96], (kind, rest) => (byte[])[kind, .. rest])));

        inputs.Sample(AssertReadIsSafe, iter: Iterations * 5, print: Convert.ToHexString);
    }

    [Fact]
    public void Read_MutatedValidBlocks_NeverThrowsNorLeavesTheBlock()
    {
        var mutation = Gen.Select(Gen.Int[0, 3], Gen.Int[0, int.MaxValue], Gen.Byte);
        var inputs = Gen.Select(s_block, mutation.Array[1, 6], (spec, mutations) =>
        {
            var bytes = spec.Encode().ToList();
            foreach (var (kind, position, value) in mutations)
            {
                var at = bytes.Count == 0 ? 0 : position % bytes.Count;
                switch (kind)
                {
                    case 0 when bytes.Count > 0:
                        bytes[at] = value;
                        break;
                    case 1 when bytes.Count > 0:
                        bytes.RemoveAt(at);
                        break;
                    case 2:
                        bytes.Insert(at, value);
                        break;
                    default:
                        bytes.RemoveRange(at, bytes.Count - at);
                        break;
                }
            }

            return bytes.ToArray();
        });

        inputs.Sample(AssertReadIsSafe, iter: Iterations * 5, print: Convert.ToHexString);
    }

    private static void AssertReadIsSafe(byte[] input)
    {
        // Copy into a larger array, so a read past the block's end would see bytes rather than fault.
        var padded = new byte[input.Length + 16];
        input.CopyTo(padded, 0);
        padded.AsSpan(input.Length).Fill((byte)'A');
        var handler = new CollectingHandler(padded, input.Length);
        string? error;
        try
        {
            error = HeaderBlockReader.Read(padded.AsSpan(0, input.Length), ref handler, maxHeaderListSize: 4096);
        }
        catch (Exception ex)
        {
            Assert.Fail($"HeaderBlockReader.Read threw {ex.GetType().Name}: {ex.Message}");
            return;
        }

        if (error is null)
        {
            // Whatever the reader accepted must be something the writer could have produced.
            Assert.NotNull(handler.Kind);
            foreach (var field in handler.Fields)
            {
                Assert.True(HeaderValidation.IsToken(field.Name));
                Assert.True(HeaderValidation.IsValidValue(field.Value));
            }
        }
        else
        {
            Assert.NotEmpty(error);
        }
    }

    internal sealed record BlockSpec(HeaderBlockKind Kind, string Method, string Target, int Status, (string Name, string Value)[] Fields)
    {
        public byte[] Encode()
            => HeaderBlockTestData.Encode(Kind, Method, Target, Status, Fields).Block;

        public override string ToString()
            => $"{Kind} {Method} {Target} {Status} [{string.Join(", ", Fields.Select(f => $"{f.Name}: {f.Value}"))}]";
    }
}
