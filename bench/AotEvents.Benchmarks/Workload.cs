using System.Text;
using AotEvents.Events;

namespace AotEvents.Benchmarks;

/// <summary>The "typical" event every benchmark uses: a ~300-byte console event from the extension.</summary>
public static class Workload
{
    /// <summary>The publish body (≈300 bytes of JSON, with whitespace after colons like real clients send).</summary>
    public static readonly byte[] Body = Encoding.UTF8.GetBytes(
        "{\"type\":\"console.log\",\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\"," +
        "\"metadata\":{\"target_id\":\"8F2A6C1D0B7E4F3A9C5D2E1F0A3B4C5D\"}},\"url\":\"https://example.com/app/dashboard?tab=overview\"," +
        "\"data\": {\"level\": \"info\", \"message\": \"User clicked export; preparing CSV with 1243 rows\", \"line\": 214, \"column\": 17}}");

    public static readonly CaptureSession Session =
        new("9b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", DateTimeOffset.UnixEpoch, EventVocabulary.AllCategoriesMask, DetailLevel.Standard, 0);

    /// <summary>The envelope line of <see cref="Body"/> at a 6-digit seq, as the pipeline builds it.</summary>
    public static readonly byte[] Line = Encoding.UTF8.GetBytes(
        "{\"capture_session_id\":\"" + Session.Id + "\",\"seq\":100000,\"event\":{\"ts\":1795233936666000,\"type\":\"console.log\"," +
        "\"category\":\"console\",\"detail_level\":\"standard\",\"source\":{\"kind\":\"extension\",\"event\":\"Runtime.consoleAPICalled\"," +
        "\"metadata\":{\"target_id\":\"8F2A6C1D0B7E4F3A9C5D2E1F0A3B4C5D\"}},\"url\":\"https://example.com/app/dashboard?tab=overview\"," +
        "\"data\":{\"level\":\"info\",\"message\":\"User clicked export; preparing CSV with 1243 rows\",\"line\":214,\"column\":17}}}\n");

    public static int LineBytes => Line.Length;

    /// <summary>A scratch data directory: tmpfs when there is one (in-memory path), else the temp dir.</summary>
    public static string NewDataDir(bool preferTmpfs)
    {
        string root = preferTmpfs && Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string dir = Path.Combine(root, "aotevents-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// Deletes rotated segments (<c>&lt;category&gt;.&lt;n&gt;.log</c>) in the background so a long run
    /// does not fill the disk; the writer has closed them already.
    /// </summary>
    public static Timer StartSegmentSweeper(string dir) => new(_ =>
    {
        try
        {
            foreach (string path in Directory.EnumerateFiles(dir, "*.*.log"))
            {
                try
                {
                    File.Delete(path);
                }
                catch (IOException)
                {
                }
            }
        }
        catch (IOException)
        {
        }
    }, null, TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(200));

    public static void DeleteDir(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
