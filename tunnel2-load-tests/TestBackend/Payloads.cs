using System.Text.Json;

namespace Tunnel2.TestBackend;

/// <summary>
/// Response bodies built once per process. Handlers write these arrays as they are, so the hot endpoints
/// allocate no payload per request.
/// </summary>
internal static class Payloads
{
    public const string TextPlain = "text/plain";
    public const string TextPlainUtf8 = "text/plain; charset=utf-8";
    public const string ApplicationJson = "application/json";
    public const string TextEventStream = "text/event-stream";
    public const string ApplicationOctetStream = "application/octet-stream";

    /// <summary>Body of <c>/loadtest/ping</c>.</summary>
    public static readonly byte[] Pong = "pong"u8.ToArray();

    /// <summary>Body of <c>/loadtest/get</c> (about 70 bytes, like the original load report's backend).</summary>
    public static readonly byte[] Get = """{"status":"ok","message":"Hello from TestBackend","data":[1,2,3]}"""u8.ToArray();

    /// <summary>Body of <c>/loadtest/delay/{ms}</c>.</summary>
    public static readonly byte[] Delayed = """{"status":"ok","delayed":true}"""u8.ToArray();

    /// <summary>Body of <c>/loadtest/fast</c>: a small document serialized once at start-up.</summary>
    public static readonly byte[] Fast = BuildFast();

    private static byte[] BuildFast()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteNumber("id", 1);
            writer.WriteString("name", "fast");
            writer.WriteString("description", "Pre-serialized response from TestBackend");
            writer.WriteBoolean("cached", true);
            writer.WriteStartArray("items");
            for (var i = 1; i <= 5; i++)
            {
                writer.WriteStartObject();
                writer.WriteNumber("id", i);
                writer.WriteString("value", "item");
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return stream.ToArray();
    }
}
