using System.Text.Json;

namespace AotEvents.Diagnostics;

/// <summary>
/// Logs one JSON object per line on stderr (SPEC §8): <c>{"ts":…,"level":…,"msg":…, …fields}</c>.
/// Lines are written whole under a lock so concurrent loggers never interleave.
/// </summary>
public static class JsonLog
{
    private static readonly object Gate = new();
    private static readonly Stream Stderr = Console.OpenStandardError();
    private static readonly JsonWriterOptions Options = new() { Encoder = JsonEscaper.Instance };

    public static void Info(string message, params ReadOnlySpan<KeyValuePair<string, string>> fields) => Write("info", message, fields);
    public static void Warn(string message, params ReadOnlySpan<KeyValuePair<string, string>> fields) => Write("warn", message, fields);
    public static void Error(string message, params ReadOnlySpan<KeyValuePair<string, string>> fields) => Write("error", message, fields);

    public static void Write(string level, string message, ReadOnlySpan<KeyValuePair<string, string>> fields)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer, Options))
        {
            json.WriteStartObject();
            json.WriteString("ts", DateTimeOffset.UtcNow);
            json.WriteString("level", level);
            json.WriteString("msg", message);
            foreach (var (key, value) in fields) json.WriteString(key, value);
            json.WriteEndObject();
        }
        lock (Gate)
        {
            Stderr.Write(buffer.WrittenSpan);
            Stderr.Write("\n"u8);
            Stderr.Flush();
        }
    }
}
