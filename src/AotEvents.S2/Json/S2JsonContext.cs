using System.Text.Json.Serialization;

namespace AotEvents.S2.Json;

/// <summary>Source-generated (AOT-safe) serialization of every S2 shape the client uses.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    GenerationMode = JsonSourceGenerationMode.Metadata)]
[JsonSerializable(typeof(AppendInputWire))]
[JsonSerializable(typeof(CreateStreamRequestWire))]
[JsonSerializable(typeof(ErrorInfoWire))]
[JsonSerializable(typeof(AppendConditionFailedWire))]
[JsonSerializable(typeof(TailResponseWire))]
[JsonSerializable(typeof(S2AppendAck))]
[JsonSerializable(typeof(S2ReadBatch))]
internal sealed partial class S2JsonContext : JsonSerializerContext;
