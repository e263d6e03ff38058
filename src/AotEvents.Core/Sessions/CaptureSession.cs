using System.Text;
using AotEvents.Events;

namespace AotEvents;

/// <summary>
/// A capture session (SPEC §2). Immutable but for its seq range, which the pipeline updates under
/// its lock. Every seq assigned while a session is active belongs to it (one session at a time), so
/// first_seq / last_seq / published follow from <see cref="StartAfterSeq"/> and <see cref="LastSeq"/>
/// and survive a restart without being counted again.
/// </summary>
public sealed class CaptureSession
{
    public CaptureSession(string id, DateTimeOffset createdAt, int categoryMask, DetailLevel detailLevel,
        long startAfterSeq)
    {
        Id = id;
        IdUtf8 = Encoding.UTF8.GetBytes(id);
        CreatedAt = createdAt;
        CategoryMask = categoryMask;
        DetailLevel = detailLevel;
        StartAfterSeq = startAfterSeq;
        LastSeq = startAfterSeq;
    }

    public string Id { get; }
    public byte[] IdUtf8 { get; }
    public DateTimeOffset CreatedAt { get; }
    public int CategoryMask { get; }
    public DetailLevel DetailLevel { get; }

    /// <summary>The global seq before the session started; its first event is this + 1.</summary>
    public long StartAfterSeq { get; }

    /// <summary>Highest seq published in the session (== StartAfterSeq while it has none).</summary>
    public long LastSeq { get; internal set; }

    public bool IsStopped { get; internal set; }

    public long Published => LastSeq - StartAfterSeq;
    public long? FirstSeq => Published > 0 ? StartAfterSeq + 1 : null;
    public long? LastSeqOrNull => Published > 0 ? LastSeq : null;

    public bool Admits(EventCategory category) => (CategoryMask & (1 << (int)category)) != 0;
}
