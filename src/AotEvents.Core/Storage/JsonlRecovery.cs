using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using AotEvents.Events;

namespace AotEvents.Storage;

/// <summary>
/// Start-up check of the JSONL files (SPEC §5): cuts a partial or corrupt last line left by a crash
/// (and logs it) and finds the highest seq written, so numbering continues after it.
/// </summary>
public static class JsonlRecovery
{
    private const int ChunkBytes = 64 * 1024;

    public static long RecoverLastSeq(string dataDir, Action<string> log)
    {
        long last = 0;
        for (int c = 0; c < EventVocabulary.CategoryCount; c++)
        {
            foreach (string path in JsonlFiles.AllSegments(dataDir, (EventCategory)c))
            {
                long seq = RepairAndReadLastSeq(path, log);
                if (seq > last) last = seq;
            }
        }
        return last;
    }

    /// <summary>
    /// Makes <paramref name="path"/> end with a complete, valid line and returns that line's seq
    /// (0 for an empty file).
    /// </summary>
    public static long RepairAndReadLastSeq(string path, Action<string> log)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        long length = RandomAccess.GetLength(handle);
        long end = length;
        while (end > 0)
        {
            // A complete line ends with '\n'; whatever follows the last '\n' is a torn write.
            long lastNewline = FindLastNewline(handle, end);
            long cleanEnd = lastNewline + 1;
            if (cleanEnd != end)
            {
                end = cleanEnd;
                continue;
            }
            long lineStart = FindLastNewline(handle, end - 1) + 1;
            byte[] line = ArrayPool<byte>.Shared.Rent((int)(end - lineStart));
            try
            {
                int n = (int)(end - lineStart);
                RandomAccess.Read(handle, line.AsSpan(0, n), lineStart);
                if (TryReadSeq(line.AsSpan(0, n - 1), out long seq))
                {
                    if (end != length)
                    {
                        RandomAccess.SetLength(handle, end);
                        RandomAccess.FlushToDisk(handle);
                        log($"cut {length - end} bytes of a partial or corrupt last line from {path}");
                    }
                    return seq;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(line);
            }
            end = lineStart; // the last "line" is not a valid envelope (e.g. zero-filled after a crash)
        }

        if (length != 0)
        {
            RandomAccess.SetLength(handle, 0);
            RandomAccess.FlushToDisk(handle);
            log($"cut {length} bytes holding no complete line from {path}");
        }
        return 0;
    }

    /// <summary>Parses an envelope line and returns its seq; false if it is not a whole valid envelope.</summary>
    public static bool TryReadSeq(ReadOnlySpan<byte> line, out long seq)
    {
        seq = 0;
        try
        {
            var reader = new Utf8JsonReader(line);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isSeq = reader.ValueTextEquals("seq"u8);
                reader.Read();
                if (isSeq && reader.TokenType == JsonTokenType.Number) reader.TryGetInt64(out seq);
                reader.Skip();
            }
            if (reader.TokenType != JsonTokenType.EndObject || reader.Read()) return false;
            return seq > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>
    /// Fast seq extraction for a line known to be written by this daemon: the seq member always
    /// follows the capture_session_id, so no full parse is needed.
    /// </summary>
    public static long ReadSeqFast(ReadOnlySpan<byte> line)
    {
        int i = line.IndexOf("\"seq\":"u8);
        if (i < 0) return 0;
        return Utf8Parser.TryParse(line[(i + 6)..], out long seq, out _) ? seq : 0;
    }

    /// <summary>Offset of the last '\n' before <paramref name="end"/>, or -1.</summary>
    private static long FindLastNewline(Microsoft.Win32.SafeHandles.SafeFileHandle handle, long end)
    {
        byte[] chunk = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            long pos = end;
            while (pos > 0)
            {
                int size = (int)Math.Min(ChunkBytes, pos);
                pos -= size;
                int read = RandomAccess.Read(handle, chunk.AsSpan(0, size), pos);
                int idx = chunk.AsSpan(0, read).LastIndexOf((byte)'\n');
                if (idx >= 0) return pos + idx;
            }
            return -1;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}
