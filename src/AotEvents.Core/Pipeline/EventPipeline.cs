using System.Buffers.Text;
using AotEvents.Events;
using AotEvents.Storage;

namespace AotEvents.Pipeline;

public sealed class EventPipelineOptions
{
    public required string DataDir { get; init; }
    public int RingCapacity { get; init; } = 8192;
    public long RingMaxBytes { get; init; } = 16 * 1024 * 1024;
    public TimeSpan FsyncInterval { get; init; } = TimeSpan.FromMilliseconds(200);
    public long SegmentBytes { get; init; } = 64L * 1024 * 1024;

    /// <summary>Total JSONL size kept (SPEC §5 <c>EVENTS_MAX_DISK_BYTES</c>); oldest rotated files go first.</summary>
    public long MaxDiskBytes { get; init; } = 1024L * 1024 * 1024;
    public long MaxQueueBytes { get; init; } = 8 * 1024 * 1024;
    public Func<long>? ClockMicros { get; init; }
}

/// <summary>
/// The publish path (SPEC §1–§3): validate and serialize outside the lock, then under one short
/// lock take the seq, wrap the event in its envelope, apply the 1,000,000-byte rule and hand the
/// same bytes to the ring and the JSONL writer. Seq order = ring order = file order comes from doing
/// those three under the same lock. The capture session is checked under that lock too, so no event
/// can slip in after <c>session_ended</c>.
/// </summary>
public sealed class EventPipeline : IDisposable
{
    /// <summary>SPEC §1: the largest compact envelope.</summary>
    public const int MaxEnvelopeBytes = 1_000_000;

    private static ReadOnlySpan<byte> PrefixStart => "{\"capture_session_id\":\""u8;
    private static ReadOnlySpan<byte> PrefixSeq => "\",\"seq\":"u8;
    private static ReadOnlySpan<byte> PrefixEvent => ",\"event\":"u8;
    private static ReadOnlySpan<byte> TruncatedTail => ",\"data\":null,\"truncated\":true}"u8;

    private readonly object _lock = new();
    private readonly SessionStore _sessions;
    private readonly Func<long> _clockMicros;
    private long _seq;
    private CaptureSession? _active;
    private CaptureSession? _last;
    private bool _closed;

    private EventPipeline(EventPipelineOptions options, long lastSeq, Action<string> log)
    {
        _sessions = new SessionStore(options.DataDir);
        CaptureSession? saved = _sessions.Load(lastSeq);
        // session.json is fsync'd at start and stop, so the seqs it knows of were handed out even when a
        // crash lost their (not yet written) JSONL lines: never give them out again.
        if (saved is not null) lastSeq = Math.Max(lastSeq, saved.LastSeq);
        Ring = new RingBuffer(options.RingCapacity, options.RingMaxBytes);
        Ring.Reset(lastSeq);
        Writer = new JsonlWriter(new JsonlWriterOptions
        {
            DataDir = options.DataDir,
            FsyncInterval = options.FsyncInterval,
            SegmentBytes = options.SegmentBytes,
            MaxDiskBytes = options.MaxDiskBytes,
            MaxQueueBytes = options.MaxQueueBytes,
        }, lastSeq, log);
        _clockMicros = options.ClockMicros ?? DefaultClockMicros;
        _seq = lastSeq;
        if (saved is not null)
        {
            _last = saved;
            if (!saved.IsStopped) _active = saved;
        }
    }

    /// <summary>
    /// Opens the pipeline over a data directory: repairs torn JSONL lines, continues the seq after
    /// the highest one on disk and restores an active capture session.
    /// </summary>
    public static EventPipeline Open(EventPipelineOptions options, Action<string> log)
    {
        JsonlFiles.PrepareDataDir(options.DataDir); // creates it, or stops the start with a plain reason
        long lastSeq = JsonlRecovery.RecoverLastSeq(options.DataDir, log);
        return new EventPipeline(options, lastSeq, log);
    }

    public RingBuffer Ring { get; }
    public JsonlWriter Writer { get; }
    public PipelineMetrics Metrics { get; } = new();

    /// <summary>Highest seq assigned.</summary>
    public long LastSeq => Interlocked.Read(ref _seq);

    public CaptureSession? ActiveSession => Volatile.Read(ref _active);

    /// <summary>The active session, else the one stopped most recently (archive reads default to it).</summary>
    public CaptureSession? LastSession => Volatile.Read(ref _last);

    private static long DefaultClockMicros() =>
        (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) / (TimeSpan.TicksPerMillisecond / 1000);

    /// <summary>Publishes one event object (<c>application/json</c>).</summary>
    public PublishOutcome Publish(ReadOnlySpan<byte> json)
    {
        EventDrafts drafts = EventDrafts.Rent();
        try
        {
            while (true)
            {
                CaptureSession? session = Volatile.Read(ref _active);
                if (!TryPrepare(session, drafts, out PublishOutcome refused)) return Refuse(refused);
                if (!EventParser.TryParse(json, _clockMicros(), session.DetailLevel, drafts, 1, out string? error))
                    return Refuse(PublishOutcome.Error(400, error!));
                ref EventDraft draft = ref drafts[0];
                if (!session.Admits(draft.Category)) return Refuse(NotAdmitted(draft.Category, 0));

                Writer.WaitForRoom();
                lock (_lock)
                {
                    if (_active != session)
                    {
                        drafts.Clear(); // stopped or restarted meanwhile: re-check against the new state
                        continue;
                    }
                    if (_closed) return Refuse(PublishOutcome.Error(503, "the daemon is shutting down"));
                    long seq = _seq + 1;
                    byte[]? line = BuildLine(session, seq, drafts.EventJson(draft), draft.DataFieldStart,
                        out bool truncated, out int eventStart);
                    if (line is null) return Refuse(TooLarge(0));
                    var envelope = Commit(session, seq, line, in draft, eventStart);
                    if (truncated) Interlocked.Increment(ref Metrics.Truncated);
                    Interlocked.Increment(ref Metrics.Published);
                    return PublishOutcome.Single(envelope);
                }
            }
        }
        finally
        {
            drafts.Return();
        }
    }

    /// <summary>
    /// Publishes an NDJSON batch atomically: every line is checked first; the first refused line
    /// refuses the whole batch; otherwise the events get consecutive seqs.
    /// </summary>
    public PublishOutcome PublishBatch(ReadOnlySpan<byte> ndjson)
    {
        EventDrafts drafts = EventDrafts.Rent();
        try
        {
            while (true)
            {
                CaptureSession? session = Volatile.Read(ref _active);
                if (!TryPrepare(session, drafts, out PublishOutcome refused)) return Refuse(refused);
                long now = _clockMicros();
                int lineNumber = 0;
                ReadOnlySpan<byte> rest = ndjson;
                while (!rest.IsEmpty)
                {
                    lineNumber++;
                    int nl = rest.IndexOf((byte)'\n');
                    ReadOnlySpan<byte> line = nl < 0 ? rest : rest[..nl];
                    rest = nl < 0 ? default : rest[(nl + 1)..];
                    if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
                    if (line.Trim(" \t"u8).IsEmpty) continue;
                    if (!EventParser.TryParse(line, now, session.DetailLevel, drafts, lineNumber, out string? error))
                        return Refuse(PublishOutcome.Error(400, $"line {lineNumber}: {error}"));
                    ref EventDraft added = ref drafts[drafts.Count - 1];
                    if (!session.Admits(added.Category)) return Refuse(NotAdmitted(added.Category, lineNumber));
                }
                if (drafts.Count == 0) return Refuse(PublishOutcome.Error(400, "the batch holds no events"));

                Writer.WaitForRoom();
                lock (_lock)
                {
                    if (_active != session)
                    {
                        drafts.Clear();
                        continue;
                    }
                    if (_closed) return Refuse(PublishOutcome.Error(503, "the daemon is shutting down"));
                    long first = _seq + 1;
                    // Size every envelope before assigning any seq: a refused batch publishes nothing.
                    for (int i = 0; i < drafts.Count; i++)
                    {
                        ref EventDraft d = ref drafts[i];
                        if (EnvelopeLength(session, first + i, d.Length, d.DataFieldStart, out _) < 0)
                            return Refuse(TooLarge(d.LineNumber));
                    }
                    for (int i = 0; i < drafts.Count; i++)
                    {
                        ref EventDraft d = ref drafts[i];
                        long seq = first + i;
                        byte[] line = BuildLine(session, seq, drafts.EventJson(d), d.DataFieldStart,
                            out bool truncated, out int eventStart)!;
                        Commit(session, seq, line, in d, eventStart);
                        if (truncated) Interlocked.Increment(ref Metrics.Truncated);
                    }
                    Interlocked.Add(ref Metrics.Published, drafts.Count);
                    return PublishOutcome.Batch(drafts.Count, first, first + drafts.Count - 1);
                }
            }
        }
        finally
        {
            drafts.Return();
        }
    }

    private bool TryPrepare([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] CaptureSession? session, EventDrafts drafts, out PublishOutcome refused)
    {
        drafts.Clear();
        if (session is null)
        {
            refused = PublishOutcome.Error(400, "no active capture session; POST /events/start first");
            return false;
        }
        if (Writer.Fault is { } fault)
        {
            refused = PublishOutcome.Error(507, "the data directory cannot take the write: " + fault.Message);
            return false;
        }
        refused = default;
        return true;
    }

    private PublishOutcome Refuse(PublishOutcome outcome)
    {
        Interlocked.Increment(ref Metrics.Refused);
        return outcome;
    }

    private static PublishOutcome NotAdmitted(EventCategory category, int lineNumber) =>
        PublishOutcome.Error(422, (lineNumber > 0 ? $"line {lineNumber}: " : "") +
            $"category {EventVocabulary.Name(category)} is not admitted by the capture session");

    private static PublishOutcome TooLarge(int lineNumber) =>
        PublishOutcome.Error(413, (lineNumber > 0 ? $"line {lineNumber}: " : "") +
            "the envelope is over 1,000,000 bytes even without data");

    /// <summary>Under the lock: assigns the seq and hands the bytes to the ring and the writer.</summary>
    private Envelope Commit(CaptureSession session, long seq, byte[] line, in EventDraft draft, int eventStart)
    {
        var envelope = new Envelope(seq, line, draft.Category, draft.SourceKind,
            (ushort)(eventStart + draft.TypeStart), (ushort)draft.TypeLength, session);
        _seq = seq;
        session.LastSeq = seq;
        Ring.Publish(in envelope);
        Writer.Enqueue(in envelope);
        return envelope;
    }

    private static int PrefixLength(CaptureSession session, long seq) =>
        PrefixStart.Length + session.IdUtf8.Length + PrefixSeq.Length + CountDigits(seq) + PrefixEvent.Length;

    /// <summary>
    /// The exact envelope length for this seq (without the newline), after truncation if needed;
    /// -1 when even the truncated envelope is too big.
    /// </summary>
    private static int EnvelopeLength(CaptureSession session, long seq, int eventLength, int dataFieldStart,
        out bool truncated)
    {
        int prefix = PrefixLength(session, seq);
        truncated = false;
        int length = prefix + eventLength + 1;
        if (length <= MaxEnvelopeBytes) return length;
        if (dataFieldStart < 0) return -1;
        truncated = true;
        length = prefix + dataFieldStart + TruncatedTail.Length + 1;
        return length <= MaxEnvelopeBytes ? length : -1;
    }

    /// <summary>
    /// The one allocation per event: prefix + event (+ truncation) + '}' + '\n' in an exact-size array.
    /// </summary>
    private static byte[]? BuildLine(CaptureSession session, long seq, ReadOnlySpan<byte> eventJson,
        int dataFieldStart, out bool truncated, out int eventStart)
    {
        int length = EnvelopeLength(session, seq, eventJson.Length, dataFieldStart, out truncated);
        eventStart = 0;
        if (length < 0) return null;
        byte[] line = GC.AllocateUninitializedArray<byte>(length + 1);
        Span<byte> w = line;
        PrefixStart.CopyTo(w);
        w = w[PrefixStart.Length..];
        session.IdUtf8.CopyTo(w);
        w = w[session.IdUtf8.Length..];
        PrefixSeq.CopyTo(w);
        w = w[PrefixSeq.Length..];
        Utf8Formatter.TryFormat(seq, w, out int digits);
        w = w[digits..];
        PrefixEvent.CopyTo(w);
        w = w[PrefixEvent.Length..];
        eventStart = length + 1 - w.Length;
        if (truncated)
        {
            eventJson[..dataFieldStart].CopyTo(w);
            w = w[dataFieldStart..];
            TruncatedTail.CopyTo(w);
            w = w[TruncatedTail.Length..];
        }
        else
        {
            eventJson.CopyTo(w);
            w = w[eventJson.Length..];
        }
        w[0] = (byte)'}';
        w[1] = (byte)'\n';
        return line;
    }

    private static int CountDigits(long value)
    {
        int digits = 1;
        while (value >= 10)
        {
            value /= 10;
            digits++;
        }
        return digits;
    }

    /// <summary>
    /// <c>POST /events/start</c>: opens a session (201), 409 when one is active, 400 on a bad body.
    /// </summary>
    public SessionOutcome StartSession(ReadOnlySpan<byte> body)
    {
        int mask = EventVocabulary.AllCategoriesMask;
        DetailLevel level = DetailLevel.Standard;
        if (!body.Trim(" \t\r\n"u8).IsEmpty)
        {
            if (!ApiJson.TryReadStartRequest(body, out List<string?>? categories, out string? detail, out string? error))
                return new SessionOutcome(400, "malformed JSON: " + error, null);
            if (categories is not null)
            {
                mask = 0;
                foreach (string? name in categories)
                {
                    if (!EventVocabulary.TryParseCategory(name ?? "", out EventCategory c))
                        return new SessionOutcome(400, $"unknown category: {name} (allowed: console, network, page, interaction, liveview, captcha, system)", null);
                    mask |= 1 << (int)c;
                }
                if (mask == 0) mask = EventVocabulary.AllCategoriesMask;
            }
            if (detail is not null && !EventVocabulary.TryParseDetailLevel(detail, out level))
                return new SessionOutcome(400, $"unknown detail_level: {detail} (allowed: minimal, standard, verbose, raw)", null);
        }

        lock (_lock)
        {
            if (_active is not null) return new SessionOutcome(409, "a capture session is already active", null);
            if (_closed) return new SessionOutcome(503, "the daemon is shutting down", null);
            var session = new CaptureSession(Guid.NewGuid().ToString(), DateTimeOffset.UtcNow, mask, level, _seq);
            _sessions.Save(session);
            _active = session;
            _last = session;
            return new SessionOutcome(201, null, session);
        }
    }

    /// <summary>
    /// <c>POST /events/stop</c>: publishes <c>session_ended</c> in the session (whatever its
    /// categories), closes it, and answers its final state; 404 when none is active.
    /// </summary>
    public SessionOutcome StopSession()
    {
        EventDrafts drafts = EventDrafts.Rent();
        try
        {
            while (true)
            {
                CaptureSession? session = Volatile.Read(ref _active);
                if (session is null) return new SessionOutcome(404, "no active capture session", null);
                drafts.Clear();
                EventParser.TryParse("{\"type\":\"session_ended\",\"category\":\"system\"}"u8, _clockMicros(),
                    session.DetailLevel, drafts, 1, out _);
                ref EventDraft draft = ref drafts[0];
                Writer.WaitForRoom();
                lock (_lock)
                {
                    if (_active != session) continue;
                    if (_closed) return new SessionOutcome(503, "the daemon is shutting down", null);
                    long seq = _seq + 1;
                    byte[] line = BuildLine(session, seq, drafts.EventJson(draft), -1, out _, out int eventStart)!;
                    Commit(session, seq, line, in draft, eventStart);
                    Interlocked.Increment(ref Metrics.Published);
                    session.IsStopped = true;
                    _active = null;
                    _sessions.Save(session);
                    return new SessionOutcome(200, null, session);
                }
            }
        }
        finally
        {
            drafts.Return();
        }
    }

    /// <summary>
    /// Shutdown step: refuse further publishes (in-flight ones have finished once this returns,
    /// since they hold the lock while they publish).
    /// </summary>
    public void StopAccepting()
    {
        lock (_lock) _closed = true;
    }

    /// <summary>Flushes and closes the JSONL files. The session stays active on disk (SIGTERM does not end it).</summary>
    public void Dispose()
    {
        StopAccepting();
        Writer.Dispose();
        Ring.WakeAll();
    }
}
