using System.Text.Json;
using System.Text.Json.Serialization;
using Tunnel2.LoadTests.Engine;

namespace Tunnel2.LoadTests.Profiles;

/// <summary>Reads and validates profile JSON; every mistake is reported with the property it concerns.</summary>
internal static class ProfileLoader
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        // A misspelt key must not silently fall back to a default.
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    /// <summary>The folder holding the shipped profiles (copied next to the executable).</summary>
    public static string ProfilesDirectory => Path.Combine(AppContext.BaseDirectory, "profiles");

    /// <summary>A file path, or the name of a shipped profile (<c>smoke</c>, <c>moderate</c>, <c>aggressive</c>).</summary>
    public static LoadProfile Load(string nameOrPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPath);
        var path = File.Exists(nameOrPath) ? nameOrPath : Path.Combine(ProfilesDirectory, nameOrPath + ".json");
        if (!File.Exists(path))
        {
            var shipped = Directory.Exists(ProfilesDirectory)
                ? string.Join(", ", Directory.EnumerateFiles(ProfilesDirectory, "*.json").Select(Path.GetFileNameWithoutExtension).Order())
                : "none";
            throw new InvalidDataException($"Profile '{nameOrPath}' is neither a file nor a shipped profile ({shipped}).");
        }

        return Parse(File.ReadAllText(path), Path.GetFileNameWithoutExtension(path));
    }

    public static LoadProfile Parse(string json, string fallbackName)
    {
        ProfileDocument document;
        try
        {
            document = JsonSerializer.Deserialize<ProfileDocument>(json, JsonOptions)
                ?? throw new InvalidDataException("The profile is empty.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Profile JSON is invalid: {e.Message}", e);
        }

        return Convert(document, fallbackName);
    }

    private static LoadProfile Convert(ProfileDocument d, string fallbackName)
    {
        var scenarios = (d.Scenarios ?? throw Invalid("scenarios", "at least one scenario is required"))
            .Select((s, i) => ConvertScenario(s, $"scenarios[{i}]"))
            .ToList();
        if (scenarios.Count == 0)
        {
            throw Invalid("scenarios", "at least one scenario is required");
        }

        var duplicate = scenarios.GroupBy(s => s.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw Invalid("scenarios", $"the name '{duplicate.Key}' is used twice");
        }

        var stages = (d.LoadSimulations ?? throw Invalid("loadSimulations", "at least one stage is required"))
            .Select((s, i) => ConvertStage(s, $"loadSimulations[{i}]"))
            .ToList();
        if (stages.Count == 0)
        {
            throw Invalid("loadSimulations", "at least one stage is required");
        }

        var thresholds = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (key, value) in d.Thresholds ?? [])
        {
            thresholds[key] = value.ValueKind switch
            {
                JsonValueKind.String => [value.GetString()!],
                JsonValueKind.Array => value.EnumerateArray().Select(item => item.GetString() ?? throw Invalid($"thresholds.{key}", "expressions are strings")).ToList(),
                _ => throw Invalid($"thresholds.{key}", "use a string or an array of strings such as \"p(99)<10\""),
            };
        }

        return new LoadProfile
        {
            Name = d.Name ?? fallbackName,
            Description = d.Description ?? "",
            RequestTimeout = DurationOf(d.RequestTimeout, "requestTimeout") ?? TimeSpan.FromSeconds(10),
            MaxInFlight = Positive(d.MaxInFlight ?? 10_000, "maxInFlight"),
            MaxConnectionsPerServer = Positive(d.MaxConnectionsPerServer ?? 1000, "maxConnectionsPerServer"),
            Spread = d.Spread?.ToLowerInvariant() switch
            {
                null or "even" => ArrivalSpread.Even,
                "random" => ArrivalSpread.Random,
                _ => throw Invalid("spread", "use \"even\" or \"random\""),
            },
            GeneratorCheck = d.GeneratorCheck is null ? null : ConvertCheck(d.GeneratorCheck, "generatorCheck"),
            GeneratorCeilingFraction = d.GeneratorCeilingFraction ?? 0.5,
            Ceiling = d.Ceiling is null ? null : ConvertCheck(d.Ceiling, "ceiling"),
            WarmUp = d.WarmUp is null ? null : new WarmUp(
                NonNegative(d.WarmUp.Rate ?? throw Invalid("warmUp.rate", "required"), "warmUp.rate"),
                DurationOf(d.WarmUp.During, "warmUp.during") ?? throw Invalid("warmUp.during", "required")),
            Scenarios = scenarios,
            Stages = stages,
            Saturation = d.Saturation is null ? null : ConvertSaturation(d.Saturation),
            DefaultThresholds = d.DefaultThresholds ?? true,
            Thresholds = thresholds,
            MaxDuration = DurationOf(d.MaxDuration, "maxDuration"),
        };
    }

    private static ScenarioProfile ConvertScenario(ScenarioDocument s, string at)
    {
        var name = string.IsNullOrWhiteSpace(s.Name) ? throw Invalid(at + ".name", "required") : s.Name;
        var paths = s.Paths ?? throw Invalid(at + ".paths", "give a path per backend, e.g. { \"testbackend\": \"/loadtest/get\", \"httpbin\": \"/get\" }");
        CheckBackends(paths, at + ".paths");
        var weight = s.Weight ?? 1;
        if (weight <= 0)
        {
            throw Invalid(at + ".weight", "must be positive");
        }

        return new ScenarioProfile(name, weight, HttpMethod.Parse(s.Method ?? "GET"), NonNegative(s.BodyBytes ?? 0, at + ".bodyBytes"), paths);
    }

    private static StageProfile ConvertStage(StageDocument s, string at)
    {
        var given = new object?[] { s.Inject, s.RampingInject, s.KeepConstant, s.RampingConstant }.Count(x => x is not null);
        if (given != 1)
        {
            throw Invalid(at, "give exactly one of inject, rampingInject, keepConstant, rampingConstant");
        }

        LoadSimulation simulation = s switch
        {
            { Inject: { } i } => new Inject(NonNegative(i.Rate ?? throw Invalid(at + ".inject.rate", "required"), at + ".inject.rate"), Interval(i.Interval, at + ".inject"), Required(i.During, at + ".inject.during")),
            { RampingInject: { } r } => new RampingInject(NonNegative(r.Rate ?? throw Invalid(at + ".rampingInject.rate", "required"), at + ".rampingInject.rate"), Interval(r.Interval, at + ".rampingInject"), Required(r.During, at + ".rampingInject.during")),
            { KeepConstant: { } k } => new KeepConstant(Positive(k.Copies ?? throw Invalid(at + ".keepConstant.copies", "required"), at + ".keepConstant.copies"), Required(k.During, at + ".keepConstant.during")),
            { RampingConstant: { } c } => new RampingConstant(NonNegative(c.Copies ?? throw Invalid(at + ".rampingConstant.copies", "required"), at + ".rampingConstant.copies"), Required(c.During, at + ".rampingConstant.during")),
            _ => throw Invalid(at, "unreachable"),
        };
        return new StageProfile(simulation, s.Targets, s.Exploratory ?? false);
    }

    private static ClosedLoopCheck ConvertCheck(ClosedLoopDocument c, string at)
    {
        var paths = c.Paths ?? (c.Path is null ? throw Invalid(at + ".paths", "required") : new Dictionary<string, string> { ["testbackend"] = c.Path });
        CheckBackends(paths, at + ".paths");
        return new ClosedLoopCheck(Positive(c.Copies ?? throw Invalid(at + ".copies", "required"), at + ".copies"), Required(c.During, at + ".during"), paths);
    }

    private static SaturationProfile ConvertSaturation(SaturationDocument s)
    {
        var rates = s.Rates ?? throw Invalid("saturation.rates", "required");
        if (rates.Count == 0 || rates.Any(rate => rate <= 0))
        {
            throw Invalid("saturation.rates", "give positive rates per second, ascending");
        }

        var criteria = s.Criteria is null
            ? SaturationCriteria.Default
            : new SaturationCriteria(
                s.Criteria.MinSuccessRate ?? SaturationCriteria.Default.MinSuccessRate,
                s.Criteria.MinAchievedRatio ?? SaturationCriteria.Default.MinAchievedRatio,
                s.Criteria.MaxP99Ms ?? SaturationCriteria.Default.MaxP99Ms,
                s.Criteria.MaxLagP99Ms ?? SaturationCriteria.Default.MaxLagP99Ms);
        return new SaturationProfile(
            s.KneeTarget ?? Targets.TargetCatalog.BackendTunnel,
            s.Targets ?? [Targets.TargetCatalog.BackendDirect, Targets.TargetCatalog.BackendTunnel],
            rates,
            Interval(s.Interval, "saturation"),
            Required(s.During, "saturation.during"),
            criteria);
    }

    private static void CheckBackends(Dictionary<string, string> paths, string at)
    {
        foreach (var (backend, path) in paths)
        {
            if (backend is not ("testbackend" or "httpbin"))
            {
                throw Invalid(at, $"unknown backend '{backend}' (use testbackend or httpbin)");
            }

            if (!path.StartsWith('/'))
            {
                throw Invalid($"{at}.{backend}", "paths start with '/'");
            }
        }
    }

    private static TimeSpan Interval(string? text, string at) => DurationOf(text, at + ".interval") is { } value
        ? value > TimeSpan.Zero ? value : throw Invalid(at + ".interval", "must be positive")
        : TimeSpan.FromSeconds(1);

    private static TimeSpan Required(string? text, string at) => DurationOf(text, at) is { } value && value > TimeSpan.Zero
        ? value
        : throw Invalid(at, "a positive duration is required (e.g. 30s)");

    private static TimeSpan? DurationOf(string? text, string at)
    {
        if (text is null)
        {
            return null;
        }

        return Duration.TryParse(text, out var value) ? value : throw Invalid(at, $"'{text}' is not a duration (e.g. 500ms, 30s, 2m)");
    }

    private static int Positive(int value, string at) => value > 0 ? value : throw Invalid(at, "must be positive");

    private static int NonNegative(int value, string at) => value >= 0 ? value : throw Invalid(at, "cannot be negative");

    private static double NonNegative(double value, string at) => value >= 0 ? value : throw Invalid(at, "cannot be negative");

    private static InvalidDataException Invalid(string at, string problem) => new($"Profile error at '{at}': {problem}.");

    // JSON shape. Nullable everywhere so that a missing value is reported by name instead of defaulting silently.
    private sealed class ProfileDocument
    {
        public string? Name { get; set; }

        public string? Description { get; set; }

        public string? RequestTimeout { get; set; }

        public int? MaxInFlight { get; set; }

        public int? MaxConnectionsPerServer { get; set; }

        public string? Spread { get; set; }

        public ClosedLoopDocument? GeneratorCheck { get; set; }

        public double? GeneratorCeilingFraction { get; set; }

        public ClosedLoopDocument? Ceiling { get; set; }

        public WarmUpDocument? WarmUp { get; set; }

        public List<ScenarioDocument>? Scenarios { get; set; }

        public List<StageDocument>? LoadSimulations { get; set; }

        public SaturationDocument? Saturation { get; set; }

        public bool? DefaultThresholds { get; set; }

        public Dictionary<string, JsonElement>? Thresholds { get; set; }

        public string? MaxDuration { get; set; }
    }

    private sealed class ScenarioDocument
    {
        public string? Name { get; set; }

        public double? Weight { get; set; }

        public string? Method { get; set; }

        public int? BodyBytes { get; set; }

        public Dictionary<string, string>? Paths { get; set; }
    }

    private sealed class StageDocument
    {
        public InjectDocument? Inject { get; set; }

        public InjectDocument? RampingInject { get; set; }

        public CopiesDocument? KeepConstant { get; set; }

        public CopiesDocument? RampingConstant { get; set; }

        public List<string>? Targets { get; set; }

        public bool? Exploratory { get; set; }
    }

    private sealed class InjectDocument
    {
        public double? Rate { get; set; }

        public string? Interval { get; set; }

        public string? During { get; set; }
    }

    private sealed class CopiesDocument
    {
        public int? Copies { get; set; }

        public string? During { get; set; }
    }

    private sealed class ClosedLoopDocument
    {
        public int? Copies { get; set; }

        public string? During { get; set; }

        public string? Path { get; set; }

        public Dictionary<string, string>? Paths { get; set; }
    }

    private sealed class WarmUpDocument
    {
        public double? Rate { get; set; }

        public string? During { get; set; }
    }

    private sealed class SaturationDocument
    {
        public string? KneeTarget { get; set; }

        public List<string>? Targets { get; set; }

        public List<double>? Rates { get; set; }

        public string? Interval { get; set; }

        public string? During { get; set; }

        public CriteriaDocument? Criteria { get; set; }
    }

    private sealed class CriteriaDocument
    {
        public double? MinSuccessRate { get; set; }

        public double? MinAchievedRatio { get; set; }

        public double? MaxP99Ms { get; set; }

        public double? MaxLagP99Ms { get; set; }
    }
}
