using System.Text.Json.Serialization;

namespace AotEvents;

/// <summary>Session object of SPEC §2, as answered over HTTP.</summary>
public sealed class SessionDto
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("status")] public required string Status { get; init; }
    [JsonPropertyName("created_at")] public required string CreatedAt { get; init; }
    [JsonPropertyName("config")] public required SessionConfigDto Config { get; init; }
    [JsonPropertyName("first_seq")] public long? FirstSeq { get; init; }
    [JsonPropertyName("last_seq")] public long? LastSeq { get; init; }
    [JsonPropertyName("published")] public long Published { get; init; }

    public static SessionDto From(CaptureSession s)
    {
        var categories = new List<string>();
        for (int c = 0; c < Events.EventVocabulary.CategoryCount; c++)
            if ((s.CategoryMask & (1 << c)) != 0) categories.Add(Events.EventVocabulary.Name((Events.EventCategory)c));
        return new SessionDto
        {
            Id = s.Id,
            Status = s.IsStopped ? "stopped" : "running",
            CreatedAt = s.CreatedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            Config = new SessionConfigDto { Categories = categories, DetailLevel = Events.EventVocabulary.Name(s.DetailLevel) },
            FirstSeq = s.FirstSeq,
            LastSeq = s.LastSeqOrNull,
            Published = s.Published,
        };
    }
}

public sealed class SessionConfigDto
{
    [JsonPropertyName("categories")] public required List<string> Categories { get; init; }
    [JsonPropertyName("detail_level")] public required string DetailLevel { get; init; }
}

/// <summary>Body of <c>POST /events/start</c>.</summary>
public sealed class StartSessionRequest
{
    [JsonPropertyName("categories")] public List<string>? Categories { get; init; }
    [JsonPropertyName("detail_level")] public string? DetailLevel { get; init; }
}

/// <summary>What the data directory keeps about the current (or last) session: enough to rebuild it.</summary>
public sealed class SessionFile
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("created_at")] public required DateTimeOffset CreatedAt { get; init; }
    [JsonPropertyName("category_mask")] public int CategoryMask { get; init; }
    [JsonPropertyName("detail_level")] public required string DetailLevel { get; init; }
    [JsonPropertyName("start_after_seq")] public long StartAfterSeq { get; init; }
    [JsonPropertyName("stopped")] public bool Stopped { get; init; }
    [JsonPropertyName("last_seq")] public long LastSeq { get; init; }
}

public sealed class MessageDto
{
    [JsonPropertyName("message")] public required string Message { get; init; }
}

public sealed class BatchResultDto
{
    [JsonPropertyName("accepted")] public int Accepted { get; init; }
    [JsonPropertyName("first_seq")] public long FirstSeq { get; init; }
    [JsonPropertyName("last_seq")] public long LastSeq { get; init; }
}

public sealed class DroppedDto
{
    [JsonPropertyName("from_seq")] public long FromSeq { get; init; }
    [JsonPropertyName("to_seq")] public long ToSeq { get; init; }
    [JsonPropertyName("count")] public long Count { get; init; }
}

/// <summary>System.Text.Json source generation for every shape the daemon reads or writes (no reflection).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    RespectNullableAnnotations = true, AllowTrailingCommas = false)]
[JsonSerializable(typeof(SessionDto))]
[JsonSerializable(typeof(StartSessionRequest))]
[JsonSerializable(typeof(SessionFile))]
[JsonSerializable(typeof(MessageDto))]
[JsonSerializable(typeof(BatchResultDto))]
[JsonSerializable(typeof(DroppedDto))]
public sealed partial class AotEventsJsonContext : JsonSerializerContext;
