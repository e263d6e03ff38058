using AotEvents.Http.Server;

namespace AotEvents.Http.Handlers;

/// <summary><c>GET /openapi.yaml</c>: the API description kept in docs/openapi.yaml, embedded at build.</summary>
internal static class OpenApiDocument
{
    private static readonly Lazy<byte[]> Document = new(() =>
    {
        using Stream? stream = typeof(OpenApiDocument).Assembly.GetManifestResourceStream("openapi.yaml");
        if (stream is null) return "openapi: 3.1.0\n"u8.ToArray();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    });

    public static byte[] Bytes => Document.Value;

    public static void Write(HttpResponse response) => response.Write(200, "application/yaml"u8, Document.Value);
}
