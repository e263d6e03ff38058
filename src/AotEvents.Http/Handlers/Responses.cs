using AotEvents.Http.Server;

namespace AotEvents.Http.Handlers;

/// <summary>Pre-encoded content types and the JSON answers every handler shares.</summary>
internal static class Responses
{
    public static ReadOnlySpan<byte> Json => "application/json"u8;
    public static ReadOnlySpan<byte> Text => "text/plain; charset=utf-8"u8;

    /// <summary>Writes <c>{"message":"…"}</c> with <paramref name="status"/>.</summary>
    public static void Message(HttpResponse response, int status, string message)
    {
        response.Write(status, Json, ApiJson.Message(message));
    }

    public static void Session(HttpResponse response, int status, CaptureSession session)
    {
        response.Write(status, Json, ApiJson.Session(session));
    }
}
