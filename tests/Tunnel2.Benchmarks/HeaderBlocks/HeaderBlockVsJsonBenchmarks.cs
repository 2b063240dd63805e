using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Tunnel2.Protocol.HeaderBlocks;

namespace Tunnel2.Benchmarks.HeaderBlocks;

/// <summary>
/// Our binary header block against JSON for the same request head (<see cref="SampleHeads"/>), the comparison the
/// Go-Tunnel-Lite report made: bytes on the wire (the "Wire B" column), time and allocations. JSON is the baseline.
/// <para>
/// JSON side: System.Text.Json with a source-generated context, serialising a <see cref="RequestHeadDto"/> (method,
/// target, headers as name → values, the shape of Go's <c>http.Header</c>) through a reused
/// <see cref="Utf8JsonWriter"/>, with the relaxed escaper so '+' and '&amp;' are not written as \uXXXX (the default
/// escaper's size is printed in the setup output). The DTO is built once, outside the measurement, which favours JSON.
/// </para>
/// <para>
/// Binary side: <see cref="HeaderBlockWriter"/> from the same strings; decode once into the non-allocating handler
/// (what the codec costs) and once into the same DTO JSON produces (strings, dictionary), to separate the cost of
/// parsing from the cost of the object graph.
/// </para>
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class HeaderBlockVsJsonBenchmarks
{
    private const string Encode = "Encode";
    private const string Decode = "Decode";

    private static readonly JsonTypeInfo<RequestHeadDto> s_relaxedTypeInfo = new RequestHeadJsonContext(new JsonSerializerOptions
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    }).RequestHeadDto;

    private readonly byte[] _binaryBuffer = new byte[4096];
    private readonly ArrayBufferWriter<byte> _jsonBuffer = new(4096);
    private readonly RequestHeadDto _dto = CreateDto();
    private Utf8JsonWriter _jsonWriter = null!;
    private byte[] _binaryBlock = [];
    private byte[] _jsonBlock = [];

    [GlobalSetup]
    public void Setup()
    {
        _jsonWriter = new Utf8JsonWriter(_jsonBuffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, SkipValidation = true });
        _binaryBlock = _binaryBuffer.AsSpan(0, BinaryEncode()).ToArray();
        JsonSerialize();
        _jsonBlock = _jsonBuffer.WrittenSpan.ToArray();

        var defaultEscaped = JsonSerializer.SerializeToUtf8Bytes(_dto, RequestHeadJsonContext.Default.RequestHeadDto).Length;
        Console.WriteLine(
            $"// Request head on the wire: binary header block {_binaryBlock.Length} B; JSON {_jsonBlock.Length} B "
            + $"(relaxed escaping), {defaultEscaped} B (default escaping); HTTP/1.1 text {HttpText().Length} B.");

        var decoded = BinaryDecodeToDto();
        if (BinaryDecode() != SampleHeads.RequestFields.Length
            || JsonDeserialize().Headers.Count != SampleHeads.RequestFields.Length
            || decoded.Target != SampleHeads.RequestTarget
            || decoded.Headers.Count != SampleHeads.RequestFields.Length)
        {
            throw new InvalidOperationException("The heads did not round-trip.");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _jsonWriter.Dispose();

    /// <returns>Bytes on the wire.</returns>
    [Benchmark(Baseline = true)]
    [BenchmarkCategory(Encode)]
    public int JsonSerialize()
    {
        _jsonBuffer.ResetWrittenCount();
        _jsonWriter.Reset(_jsonBuffer);
        JsonSerializer.Serialize(_jsonWriter, _dto, s_relaxedTypeInfo);
        _jsonWriter.Flush();
        return _jsonBuffer.WrittenCount;
    }

    /// <returns>Bytes on the wire.</returns>
    [Benchmark]
    [BenchmarkCategory(Encode)]
    public int BinaryEncode() => SampleHeads.EncodeRequest(_binaryBuffer);

    [Benchmark(Baseline = true)]
    [BenchmarkCategory(Decode)]
    public RequestHeadDto JsonDeserialize() => JsonSerializer.Deserialize(_jsonBlock, s_relaxedTypeInfo)!;

    /// <returns>The number of fields decoded.</returns>
    [Benchmark]
    [BenchmarkCategory(Decode)]
    public int BinaryDecode()
    {
        var handler = default(CountingHandler);
        return HeaderBlockReader.Read(_binaryBlock, ref handler, SampleHeads.MaxHeaderListSize) is null ? handler.Fields : -1;
    }

    [Benchmark]
    [BenchmarkCategory(Decode)]
    public RequestHeadDto BinaryDecodeToDto()
    {
        var handler = new DtoHandler(new RequestHeadDto());
        return HeaderBlockReader.Read(_binaryBlock, ref handler, SampleHeads.MaxHeaderListSize) is null
            ? handler.Dto
            : throw new InvalidOperationException("Bad block.");
    }

    /// <summary>Bytes on the wire for a benchmark of this class, for the "Wire B" column (computed in the host process).</summary>
    internal static int WireBytes(string benchmarkName)
    {
        if (benchmarkName.StartsWith("Json", StringComparison.Ordinal))
        {
            var buffer = new ArrayBufferWriter<byte>();
            using var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            JsonSerializer.Serialize(writer, CreateDto(), s_relaxedTypeInfo);
            writer.Flush();
            return buffer.WrittenCount;
        }

        return SampleHeads.EncodeRequest(new byte[4096]);
    }

    private static RequestHeadDto CreateDto()
    {
        var dto = new RequestHeadDto { Method = SampleHeads.RequestMethod, Target = SampleHeads.RequestTarget };
        foreach (var (name, value) in SampleHeads.RequestFields)
        {
            dto.Headers.Add(name, [value]);
        }

        return dto;
    }

    private static string HttpText()
    {
        var text = new StringBuilder();
        text.Append(SampleHeads.RequestMethod).Append(' ').Append(SampleHeads.RequestTarget).Append(" HTTP/1.1\r\n");
        foreach (var (name, value) in SampleHeads.RequestFields)
        {
            text.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        return text.Append("\r\n").ToString();
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new WireBytesColumn());
        }
    }

    /// <summary>Builds the DTO JSON would produce: Latin-1 strings (as the codec defines them) in a dictionary.</summary>
    private struct DtoHandler(RequestHeadDto dto) : IHeaderBlockHandler
    {
        public RequestHeadDto Dto { get; } = dto;

        public readonly void OnRequestHead(int methodCode, ReadOnlySpan<byte> method, ReadOnlySpan<byte> target)
        {
            Dto.Method = methodCode != 0 ? StaticTable.GetMethod(methodCode)! : Encoding.Latin1.GetString(method);
            Dto.Target = Encoding.Latin1.GetString(target);
        }

        public readonly void OnResponseHead(int statusCode)
        {
        }

        public readonly void OnTrailersHead()
        {
        }

        public readonly void OnField(int staticIndex, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
        {
            var nameString = staticIndex != 0 ? StaticTable.GetName(staticIndex)! : Encoding.Latin1.GetString(name);
            Dto.Headers.Add(nameString, [Encoding.Latin1.GetString(value)]);
        }
    }
}

/// <summary>A request head as a JSON message: the shape of Go's net/http request line plus <c>http.Header</c>.</summary>
public sealed class RequestHeadDto
{
    public string Method { get; set; } = string.Empty;

    public string Target { get; set; } = string.Empty;

    public Dictionary<string, string[]> Headers { get; init; } = new(StringComparer.OrdinalIgnoreCase);
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(RequestHeadDto))]
internal sealed partial class RequestHeadJsonContext : JsonSerializerContext;
