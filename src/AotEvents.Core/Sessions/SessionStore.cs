using AotEvents.Events;

namespace AotEvents;

/// <summary>
/// Keeps the current (or last) capture session in <c>session.json</c> in the data directory, so an
/// active session survives a restart (SPEC §2). Written to a temporary file, fsync'd and renamed,
/// so a crash leaves either the old or the new state.
/// </summary>
public sealed class SessionStore
{
    private readonly string _path;

    public SessionStore(string dataDir) => _path = Path.Combine(dataDir, "session.json");

    public void Save(CaptureSession session)
    {
        byte[] json = ApiJson.WriteSessionFile(new ApiJson.SessionFileData(session.Id, session.CreatedAt,
            session.CategoryMask, EventVocabulary.Name(session.DetailLevel), session.StartAfterSeq,
            session.IsStopped, session.LastSeq));
        string tmp = _path + ".tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(json);
            stream.Flush(flushToDisk: true);
        }
        File.Move(tmp, _path, overwrite: true);
        Storage.JsonlFiles.SyncDirectory(Path.GetDirectoryName(_path)!);
    }

    /// <summary>
    /// Loads the saved session. A running session's LastSeq is the highest seq on disk (every seq
    /// after its start belongs to it); a stopped one keeps what was saved.
    /// </summary>
    public CaptureSession? Load(long recoveredLastSeq)
    {
        if (!File.Exists(_path)) return null;
        if (ApiJson.ReadSessionFile(File.ReadAllBytes(_path)) is not { } file) return null;
        EventVocabulary.TryParseDetailLevel(file.DetailLevel, out DetailLevel level);
        var session = new CaptureSession(file.Id, file.CreatedAt, file.CategoryMask, level, file.StartAfterSeq)
        {
            IsStopped = file.Stopped,
        };
        session.LastSeq = file.Stopped ? file.LastSeq : Math.Max(file.StartAfterSeq, recoveredLastSeq);
        return session;
    }
}
