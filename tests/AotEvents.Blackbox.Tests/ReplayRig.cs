using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace AotEvents.Blackbox.Tests;

/// <summary>An <c>event: dropped</c> frame (or NDJSON <c>{"from_seq":…}</c> line) as a subscriber got it.</summary>
public sealed record DroppedFrame(long From, long To, long Count, long PreviousSeq, string Raw);

/// <summary>
/// One <c>GET /events/stream</c> subscriber on its own loopback socket that parses the stream while it
/// arrives (SSE frames or <c>format=ndjson</c> lines) and checks it on the fly: every envelope must be
/// the seq right after the previous one, or right after the range of a <c>dropped</c> frame, which in
/// turn must start right after the previous seq. The first violation is kept in <see cref="Error"/>.
/// Reading can be slowed (<see cref="ReadDelayMs"/>) or stopped (<see cref="Paused"/>: the socket is
/// not read at all, so the daemon's sends back up).
/// </summary>
public sealed class StreamTap : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly bool _sse;
    private readonly bool _record;
    private readonly CancellationTokenSource _cts = new();
    private readonly List<DroppedFrame> _dropped = [];
    private readonly List<long> _seqs = [];
    private readonly int _chunk;
    private Task _loop = Task.CompletedTask;
    private long _position;
    private long _envelopes;
    private volatile string? _error;
    private volatile bool _closed;

    private StreamTap(Socket socket, bool sse, long startAfter, bool record, int chunk)
    {
        _socket = socket;
        _sse = sse;
        _position = startAfter;
        _record = record;
        _chunk = chunk;
    }

    /// <summary>Last seq received (or covered by a dropped frame).</summary>
    public long Position => Interlocked.Read(ref _position);

    public long Envelopes => Interlocked.Read(ref _envelopes);

    /// <summary>The first violation of the stream's order rules, or null.</summary>
    public string? Error => _error;

    public bool Closed => _closed;

    /// <summary>True when the daemon ended the stream with a FIN (not a reset).</summary>
    public bool EndedCleanly => _endedCleanly;

    private volatile bool _endedCleanly;

    /// <summary>While true the socket is not read at all.</summary>
    public volatile bool Paused;

    /// <summary>Delay after every receive (0 = read as fast as possible).</summary>
    public volatile int ReadDelayMs;

    public IReadOnlyList<DroppedFrame> Dropped
    {
        get
        {
            lock (_dropped) return _dropped.ToArray();
        }
    }

    /// <summary>Every envelope seq received, in order (only when opened with <c>record: true</c>).</summary>
    public long[] Seqs
    {
        get
        {
            lock (_seqs) return _seqs.ToArray();
        }
    }

    /// <summary>
    /// Opens the stream and starts reading. <paramref name="startAfter"/> is the seq the first item
    /// must follow (-1: accept whatever comes first). <paramref name="receiveBuffer"/> &gt; 0 shrinks the
    /// socket's receive buffer (and so the TCP window) before connecting.
    /// </summary>
    public static async Task<StreamTap> OpenAsync(DaemonProcess daemon, string pathAndQuery, long startAfter,
        bool record = false, int receiveBuffer = 0, int readChunk = 64 * 1024, int readDelayMs = 0,
        bool paused = false, params string[] headers)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBuffer > 0) socket.ReceiveBufferSize = receiveBuffer;
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, daemon.Port));
        bool sse = !pathAndQuery.Contains("format=ndjson", StringComparison.Ordinal);
        var tap = new StreamTap(socket, sse, startAfter, record, readChunk) { ReadDelayMs = readDelayMs, Paused = paused };
        string extra = string.Concat(headers.Select(h => h + "\r\n"));
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"));
        tap._loop = Task.Run(tap.RunAsync);
        return tap;
    }

    private async Task RunAsync()
    {
        byte[] buffer = new byte[Math.Max(_chunk, 4096) * 2];
        int start = 0, end = 0;
        bool headDone = false;
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                while (Paused && !_cts.IsCancellationRequested) await Task.Delay(10, _cts.Token);
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    end -= start;
                    start = 0;
                }
                if (buffer.Length - end < _chunk) Array.Resize(ref buffer, Math.Max(buffer.Length * 2, end + _chunk));
                int n = await _socket.ReceiveAsync(buffer.AsMemory(end, _chunk), SocketFlags.None, _cts.Token);
                if (n == 0)
                {
                    _endedCleanly = true;
                    break;
                }
                end += n;
                if (!headDone)
                {
                    int headEnd = buffer.AsSpan(0, end).IndexOf("\r\n\r\n"u8);
                    if (headEnd < 0) continue;
                    string status = Encoding.ASCII.GetString(buffer, 0, buffer.AsSpan(0, end).IndexOf("\r\n"u8));
                    if (!status.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                    {
                        Fail("not 200: " + Encoding.UTF8.GetString(buffer, 0, end));
                        break;
                    }
                    start = headEnd + 4;
                    headDone = true;
                }
                start = _sse ? ParseSse(buffer, start, end) : ParseNdjson(buffer, start, end);
                int delay = ReadDelayMs;
                if (delay > 0) await Task.Delay(delay, _cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (Exception e)
        {
            Fail("reader failed: " + e);
        }
        finally
        {
            _closed = true;
        }
    }

    private int ParseNdjson(byte[] buffer, int start, int end)
    {
        while (true)
        {
            int nl = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
            if (nl < 0) return start;
            ReadOnlySpan<byte> line = buffer.AsSpan(start, nl);
            start += nl + 1;
            if (line.IsEmpty) continue; // keepalive
            OnJson(line, idLine: -1, dropped: line.StartsWith("{\"from_seq\""u8));
        }
    }

    private int ParseSse(byte[] buffer, int start, int end)
    {
        while (true)
        {
            int frameEnd = buffer.AsSpan(start, end - start).IndexOf("\n\n"u8);
            if (frameEnd < 0) return start;
            ReadOnlySpan<byte> frame = buffer.AsSpan(start, frameEnd + 1); // keeps the last line's '\n'
            start += frameEnd + 2;
            long id = -1;
            bool dropped = false;
            ReadOnlySpan<byte> data = default;
            bool hasData = false;
            while (!frame.IsEmpty)
            {
                int nl = frame.IndexOf((byte)'\n');
                ReadOnlySpan<byte> line = frame[..nl];
                frame = frame[(nl + 1)..];
                if (line.StartsWith("id: "u8))
                {
                    if (!long.TryParse(line[4..], NumberStyles.None, CultureInfo.InvariantCulture, out id))
                        Fail("bad id line: " + Encoding.UTF8.GetString(line));
                }
                else if (line.SequenceEqual("event: dropped"u8)) dropped = true;
                else if (line.StartsWith("data: "u8))
                {
                    data = line[6..];
                    hasData = true;
                }
                else if (line.StartsWith("event:"u8)) Fail("unexpected event line: " + Encoding.UTF8.GetString(line));
                // retry: and comment lines (":…") are ignored
            }
            if (hasData) OnJson(data, id, dropped);
            else if (id >= 0 || dropped) Fail("frame without data");
        }
    }

    private void OnJson(ReadOnlySpan<byte> json, long idLine, bool dropped)
    {
        long seq = 0, from = 0, to = 0, count = 0;
        bool hasEvent = false;
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) throw new JsonException("not an object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                string name = reader.GetString()!;
                reader.Read();
                switch (name)
                {
                    case "seq": seq = reader.GetInt64(); break;
                    case "from_seq": from = reader.GetInt64(); break;
                    case "to_seq": to = reader.GetInt64(); break;
                    case "count": count = reader.GetInt64(); break;
                    case "event": hasEvent = reader.TokenType == JsonTokenType.StartObject; break;
                }
                reader.Skip();
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) throw new JsonException("trailing bytes");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            Fail($"unparsable item after seq {Position}: {e.Message}: {Encoding.UTF8.GetString(json)}");
            return;
        }

        long position = Interlocked.Read(ref _position);
        if (dropped)
        {
            string raw = (_sse ? "event: dropped\ndata: " : "") + Encoding.UTF8.GetString(json);
            lock (_dropped) _dropped.Add(new DroppedFrame(from, to, count, position, raw));
            if (position >= 0 && from != position + 1) Fail($"dropped frame {raw} does not follow seq {position}");
            if (to < from || count != to - from + 1) Fail($"inconsistent dropped frame {raw}");
            Interlocked.Exchange(ref _position, to);
            return;
        }
        if (!hasEvent || seq <= 0) Fail($"not an envelope after seq {position}: {Encoding.UTF8.GetString(json)}");
        if (_sse && idLine != seq) Fail($"id: {idLine} but data seq {seq}");
        if (position >= 0 && seq != position + 1) Fail($"got seq {seq} after {position}");
        if (_record)
        {
            lock (_seqs) _seqs.Add(seq);
        }
        Interlocked.Increment(ref _envelopes);
        Interlocked.Exchange(ref _position, seq);
    }

    private void Fail(string message)
    {
        _error ??= message;
    }

    /// <summary>Waits until the tap is at <paramref name="seq"/> or further; throws with the reason when not in time.</summary>
    public async Task WaitForAsync(long seq, TimeSpan timeout, string? name = null)
    {
        DateTime until = DateTime.UtcNow + timeout;
        while (Position < seq && _error is null && !_closed && DateTime.UtcNow < until) await Task.Delay(20);
        Assert.True(_error is null, $"{name ?? "subscriber"}: {_error}");
        Assert.True(Position >= seq,
            $"{name ?? "subscriber"} is at seq {Position} (closed: {_closed}), not {seq}, after {timeout.TotalSeconds:0.#} s");
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _socket.Dispose();
        try
        {
            await _loop.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
        }
        _cts.Dispose();
    }
}

/// <summary>Every line of every JSONL segment file of a data directory, parsed.</summary>
public sealed class JsonlScan
{
    /// <summary>Per file name: the seqs of its lines, in file order.</summary>
    public Dictionary<string, List<long>> Files { get; } = [];

    /// <summary>Torn or unparsable lines, files not ending with '\n', seqs out of order within a file.</summary>
    public List<string> Problems { get; } = [];

    /// <summary>seq → line text (without the newline), when read with <c>keepLines</c>.</summary>
    public Dictionary<long, string> Lines { get; } = [];

    /// <summary>Seqs present in more than one line.</summary>
    public List<long> Duplicates { get; } = [];

    /// <summary>Every seq found, ascending, without duplicates.</summary>
    public long[] Seqs { get; private set; } = [];

    public long MaxSeq => Seqs.Length == 0 ? 0 : Seqs[^1];
    public long MinSeq => Seqs.Length == 0 ? 0 : Seqs[0];

    public static JsonlScan Read(string dataDir, bool keepLines = false)
    {
        var scan = new JsonlScan();
        var all = new List<long>();
        foreach (string path in Directory.EnumerateFiles(dataDir, "*.log").Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(path);
            byte[] bytes = File.ReadAllBytes(path);
            var seqs = new List<long>();
            scan.Files[name] = seqs;
            if (bytes.Length > 0 && bytes[^1] != (byte)'\n') scan.Problems.Add($"{name} does not end with a newline");
            int start = 0, lineNo = 0;
            while (start < bytes.Length)
            {
                int nl = Array.IndexOf(bytes, (byte)'\n', start);
                int end = nl < 0 ? bytes.Length : nl;
                lineNo++;
                ReadOnlyMemory<byte> line = bytes.AsMemory(start, end - start);
                start = end + 1;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    long seq = doc.RootElement.GetProperty("seq").GetInt64();
                    if (doc.RootElement.GetProperty("event").ValueKind != JsonValueKind.Object)
                        throw new JsonException("no event object");
                    if (seqs.Count > 0 && seq <= seqs[^1]) scan.Problems.Add($"{name}:{lineNo}: seq {seq} after {seqs[^1]}");
                    seqs.Add(seq);
                    all.Add(seq);
                    if (keepLines) scan.Lines[seq] = Encoding.UTF8.GetString(line.Span);
                }
                catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
                {
                    string text = Encoding.UTF8.GetString(line.Span);
                    scan.Problems.Add($"{name}:{lineNo}: unparsable line ({e.Message}): {(text.Length > 200 ? text[..200] + "…" : text)}");
                }
            }
        }
        all.Sort();
        var distinct = new List<long>(all.Count);
        for (int i = 0; i < all.Count; i++)
        {
            if (i > 0 && all[i] == all[i - 1])
            {
                scan.Duplicates.Add(all[i]);
                continue;
            }
            distinct.Add(all[i]);
        }
        scan.Seqs = distinct.ToArray();
        return scan;
    }

    /// <summary>Contiguous ranges of seqs in [<paramref name="from"/>, <paramref name="to"/>] that no file holds.</summary>
    public List<(long From, long To)> Missing(long from, long to)
    {
        var ranges = new List<(long, long)>();
        long next = from;
        foreach (long s in Seqs)
        {
            if (s < from) continue;
            if (s > to) break;
            if (s > next) ranges.Add((next, s - 1));
            next = s + 1;
        }
        if (next <= to) ranges.Add((next, to));
        return ranges;
    }

    public string Describe() =>
        string.Join(", ", Files.Select(f => $"{f.Key}: {f.Value.Count} lines" + (f.Value.Count > 0 ? $" ({f.Value[0]}..{f.Value[^1]})" : "")));
}

/// <summary>Publishing and inspection helpers of the replay, crash and disk-full suites.</summary>
public static class ReplayRig
{
    /// <summary>Types whose categories differ (console, network, page, interaction): replay merges them by seq.</summary>
    public static readonly string[] MixedTypes = ["console.log", "network.request", "page.navigated", "interaction.click"];

    /// <summary>One event object; <paramref name="pad"/> characters of data make lines bigger.</summary>
    public static string Event(string type, long tag, int pad = 0) =>
        $"{{\"type\":\"{type}\",\"data\":{{\"tag\":{tag.ToString(CultureInfo.InvariantCulture)}" +
        (pad > 0 ? $",\"pad\":\"{new string('x', pad)}\"" : "") + "}}";

    /// <summary>An NDJSON body of <paramref name="count"/> events, types chosen by index.</summary>
    public static string Batch(int count, Func<int, string> type, int pad = 0, long tagBase = 0)
    {
        var sb = new StringBuilder(count * (80 + pad));
        for (int i = 0; i < count; i++) sb.Append(Event(type(i), tagBase + i, pad)).Append('\n');
        return sb.ToString();
    }

    /// <summary>Publishes an NDJSON batch, asserts 200 and returns its first and last seq.</summary>
    public static async Task<(long First, long Last)> PublishBatchAsync(HttpClient http, string ndjson, string query = "")
    {
        ApiResult r = await http.PublishNdjsonAsync(ndjson, query);
        Assert.True(r.Status == 200, "publish batch → " + r);
        JsonElement j = r.Json();
        return (j.GetProperty("first_seq").GetInt64(), j.GetProperty("last_seq").GetInt64());
    }

    /// <summary>A value of <c>/metrics</c> (a line <c>name value</c>).</summary>
    public static async Task<long> MetricAsync(HttpClient http, string name)
    {
        ApiResult r = await http.GetResultAsync("/metrics");
        Assert.Equal(200, r.Status);
        foreach (string line in r.Text.Split('\n'))
        {
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
                return long.Parse(line[(name.Length + 1)..].Trim(), CultureInfo.InvariantCulture);
        }
        throw new Xunit.Sdk.XunitException($"metric {name} not found in:\n{r.Text}");
    }

    /// <summary>Waits (bounded) until every published event is written to the files.</summary>
    public static async Task WaitWrittenAsync(HttpClient http, long seq, TimeSpan? timeout = null)
    {
        DateTime until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (true)
        {
            long written = await MetricAsync(http, "aotevents_durable_seq");
            if (written >= seq) return;
            Assert.True(DateTime.UtcNow < until, $"durable seq {written} did not reach {seq}");
            await Task.Delay(50);
        }
    }

    /// <summary>Runs a command to its end; returns exit code and output.</summary>
    public static (int Code, string Output) Run(string file, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }
}
