using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AotEvents.S2.Tests;

/// <summary>What a <see cref="ScriptedHttpServer"/> does after writing its reply.</summary>
internal enum AfterReply
{
    KeepOpen,
    Close,
    Reset,
    Hang,
}

/// <summary>A request as the scripted server read it (head text and body), with its connection and position.</summary>
internal sealed record ScriptedRequest(int Connection, int Index, string Head, string Body)
{
    public string RequestLine => Head[..Head.IndexOf("\r\n", StringComparison.Ordinal)];

    public string? Header(string name)
    {
        foreach (string line in Head.Split("\r\n").Skip(1))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && line[..colon].Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                return line[(colon + 1)..].Trim();
            }
        }

        return null;
    }
}

/// <summary>The reply: raw bytes written in parts (with a pause between them), then <see cref="After"/>.</summary>
internal sealed record ScriptedReply(IReadOnlyList<byte[]> Parts, AfterReply After = AfterReply.KeepOpen)
{
    public static ScriptedReply Raw(string text, AfterReply after = AfterReply.KeepOpen) => new([Encoding.UTF8.GetBytes(text)], after);

    public static ScriptedReply Nothing(AfterReply after) => new([], after);

    /// <summary>A JSON answer with Content-Length.</summary>
    public static ScriptedReply Json(int status, string body, AfterReply after = AfterReply.KeepOpen, string extraHeaders = "")
        => Raw($"HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n{extraHeaders}\r\n{body}", after);

    /// <summary>A JSON answer in chunks of the given sizes, each written separately.</summary>
    public static ScriptedReply Chunked(int status, string body, int[] chunkSizes, string trailer = "")
    {
        byte[] bytes = Encoding.UTF8.GetBytes(body);
        var parts = new List<byte[]> { Encoding.ASCII.GetBytes($"HTTP/1.1 {status} Status\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n") };
        int at = 0;
        for (int i = 0; at < bytes.Length; i++)
        {
            int size = Math.Min(chunkSizes[i % chunkSizes.Length], bytes.Length - at);
            string ext = i == 1 ? ";ext=1" : string.Empty;
            parts.Add([.. Encoding.ASCII.GetBytes($"{size:x}{ext}\r\n"), .. bytes.AsSpan(at, size).ToArray(), .. "\r\n"u8.ToArray()]);
            at += size;
        }

        parts.Add(Encoding.ASCII.GetBytes("0\r\n" + trailer + "\r\n"));
        return new ScriptedReply(parts);
    }
}

/// <summary>
/// A raw HTTP/1.1 server on loopback that answers each request through a script, byte for byte, and can
/// close, reset or stall connections: what the transport tests need and a real server would not do on demand.
/// </summary>
internal sealed class ScriptedHttpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Func<ScriptedRequest, ScriptedReply> _script;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<TcpClient> _clients = [];
    private readonly Task _accepting;
    private int _connections;
    private int _closedByServer;
    private int _closedByClient;

    public ScriptedHttpServer(Func<ScriptedRequest, ScriptedReply> script)
    {
        _script = script;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public string Endpoint => $"http://127.0.0.1:{Port}";

    public ConcurrentQueue<ScriptedRequest> Requests { get; } = new();

    public int Connections => Volatile.Read(ref _connections);

    public int ClosedByServer => Volatile.Read(ref _closedByServer);

    public int ClosedByClient => Volatile.Read(ref _closedByClient);

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (TcpClient client in _clients)
        {
            client.Dispose();
        }

        try
        {
            await _accepting;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client = await _listener.AcceptTcpClientAsync(_stop.Token);
            _clients.Add(client);
            int id = Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(client, id));
        }
    }

    private async Task ServeAsync(TcpClient client, int connection)
    {
        try
        {
            NetworkStream stream = client.GetStream();
            var pending = new List<byte>();
            byte[] buffer = new byte[64 * 1024];
            for (int index = 0; ; index++)
            {
                int headEnd;
                while ((headEnd = IndexOf(pending, "\r\n\r\n"u8)) < 0)
                {
                    int read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        Interlocked.Increment(ref _closedByClient);
                        return;
                    }

                    pending.AddRange(buffer.AsSpan(0, read));
                }

                string head = Encoding.ASCII.GetString([.. pending.Take(headEnd)]);
                pending.RemoveRange(0, headEnd + 4);
                var request = new ScriptedRequest(connection, index, head, string.Empty);
                int length = int.Parse(request.Header("Content-Length") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
                while (pending.Count < length)
                {
                    int read = await stream.ReadAsync(buffer, _stop.Token);
                    if (read == 0)
                    {
                        return;
                    }

                    pending.AddRange(buffer.AsSpan(0, read));
                }

                request = request with { Body = Encoding.UTF8.GetString([.. pending.Take(length)]) };
                pending.RemoveRange(0, length);
                Requests.Enqueue(request);

                ScriptedReply reply = _script(request);
                for (int i = 0; i < reply.Parts.Count; i++)
                {
                    if (i > 0)
                    {
                        await Task.Delay(15, _stop.Token);
                    }

                    await stream.WriteAsync(reply.Parts[i], _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                }

                switch (reply.After)
                {
                    case AfterReply.Close:
                        client.Client.Shutdown(SocketShutdown.Both);
                        client.Dispose();
                        Interlocked.Increment(ref _closedByServer);
                        return;
                    case AfterReply.Reset:
                        client.Client.LingerState = new LingerOption(true, 0);
                        client.Dispose();
                        Interlocked.Increment(ref _closedByServer);
                        return;
                    case AfterReply.Hang:
                        await Task.Delay(Timeout.Infinite, _stop.Token);
                        return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
        {
        }
    }

    private static int IndexOf(List<byte> data, ReadOnlySpan<byte> pattern)
    {
        for (int i = 0; i + pattern.Length <= data.Count; i++)
        {
            int j = 0;
            while (j < pattern.Length && data[i + j] == pattern[j])
            {
                j++;
            }

            if (j == pattern.Length)
            {
                return i;
            }
        }

        return -1;
    }
}
