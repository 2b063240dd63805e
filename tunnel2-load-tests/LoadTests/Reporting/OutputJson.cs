using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tunnel2.LoadTests.Reporting;

/// <summary>How every JSON file the harness writes looks: indented, camelCase, enums as camelCase strings, NaN allowed.</summary>
internal static class OutputJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}
