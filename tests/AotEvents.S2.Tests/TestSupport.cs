using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using AotEvents.S2.Transport;
using S2StandIn;

namespace AotEvents.S2.Tests;

internal static class TestSupport
{
    public const string Basin = "aotevents-test";
    public const string Token = "test-token";

    public static string NewStream() => "stream-" + Guid.NewGuid().ToString("N");

    public static ReadOnlyMemory<byte>[] Bodies(params string[] texts) => [.. texts.Select(t => (ReadOnlyMemory<byte>)Encoding.UTF8.GetBytes(t))];

    public static string Text(ReadOnlyMemory<byte> body) => Encoding.UTF8.GetString(body.Span);

    public static Task<S2StandIn.S2StandIn> StartStandInAsync() => S2StandIn.S2StandIn.StartAsync(new S2StandInOptions { AccessToken = Token });

    /// <summary>A client pointed at the stand-in the S2_ENDPOINT way (basin in the s2-basin header).</summary>
    public static S2Client Client(S2StandIn.S2StandIn standIn, TimeSpan? timeout = null, string token = Token, bool reuseConnections = true)
    {
        var options = new S2Options
        {
            Basin = Basin,
            AccessToken = token,
            Endpoint = standIn.Endpoint,
            RequestTimeout = timeout ?? TimeSpan.FromSeconds(10),
        };
        return new S2Client(options, (endpoint, o) => new S2HttpConnectionPool(
            S2HttpOrigin.FromUrl(endpoint.BaseUrl),
            new S2HttpPoolOptions { ConnectTimeout = o.ConnectTimeout, ReuseConnections = reuseConnections }));
    }

    /// <summary>A TCP port on 127.0.0.1 that nothing listens on.</summary>
    public static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>The repository root (the directory holding AotEvents.sln).</summary>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AotEvents.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Runs a process to completion; returns exit code and merged output.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string fileName, string arguments, string workingDirectory, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(fileName, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + fileName);
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            lock (output)
            {
                return (-1, output + $"\n[timed out after {timeout}]");
            }
        }

        process.WaitForExit(); // flush the asynchronous output readers
        lock (output)
        {
            return (process.ExitCode, output.ToString());
        }
    }
}

/// <summary>A transport that records requests and answers with a canned response.</summary>
internal sealed class RecordingTransport : IS2HttpTransport
{
    private readonly Func<S2HttpRequest, S2HttpResponse> _respond;

    public RecordingTransport(Func<S2HttpRequest, S2HttpResponse> respond) => _respond = respond;

    public List<(S2HttpRequest Request, string? Body)> Requests { get; } = [];

    public static S2HttpResponse Respond(HttpStatusCode status, string body, string contentType = "application/json", params (string Name, string Value)[] headers)
        => new((int)status, status.ToString(), [new("Content-Type", contentType), .. headers.Select(h => new KeyValuePair<string, string>(h.Name, h.Value))],
            new MemoryStream(Encoding.UTF8.GetBytes(body)));

    public Task<S2HttpResponse> SendAsync(S2HttpRequest request, CancellationToken cancellationToken)
    {
        string? body = request.Content is { } content ? Encoding.UTF8.GetString(content.Span) : null;
        Requests.Add((request, body));
        return Task.FromResult(_respond(request));
    }

    public void Dispose()
    {
    }
}
