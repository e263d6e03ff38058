using Microsoft.Win32.SafeHandles;
using System.Globalization;
using System.Runtime.InteropServices;
using AotEvents.Events;

namespace AotEvents.Storage;

/// <summary>
/// Naming of the per-category JSONL files (SPEC §5): the live segment <c>&lt;category&gt;.log</c> and
/// rotated segments <c>&lt;category&gt;.&lt;n&gt;.log</c>, where a larger n is newer.
/// </summary>
public static partial class JsonlFiles
{
    public static string ActivePath(string dataDir, EventCategory category) =>
        Path.Combine(dataDir, EventVocabulary.Name(category) + ".log");

    public static string RotatedPath(string dataDir, EventCategory category, int number) =>
        Path.Combine(dataDir, EventVocabulary.Name(category) + "." + number.ToString(CultureInfo.InvariantCulture) + ".log");

    /// <summary>A category's rotated segments, oldest first, with their numbers.</summary>
    public static List<(int Number, string Path)> RotatedSegments(string dataDir, EventCategory category)
    {
        var result = new List<(int, string)>();
        string prefix = EventVocabulary.Name(category) + ".";
        if (!Directory.Exists(dataDir)) return result;
        foreach (string path in Directory.EnumerateFiles(dataDir, prefix + "*.log"))
        {
            string name = Path.GetFileName(path);
            ReadOnlySpan<char> middle = name.AsSpan(prefix.Length, name.Length - prefix.Length - ".log".Length);
            if (int.TryParse(middle, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                result.Add((n, path));
        }
        result.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return result;
    }

    /// <summary>
    /// All segments of a category, oldest first (rotated ones, then the active one if it exists).
    /// </summary>
    public static List<string> AllSegments(string dataDir, EventCategory category)
    {
        var paths = new List<string>();
        foreach (var (_, path) in RotatedSegments(dataDir, category)) paths.Add(path);
        string active = ActivePath(dataDir, category);
        if (File.Exists(active)) paths.Add(active);
        return paths;
    }

    /// <summary>
    /// Creates the data directory if needed and checks that files can be created in it, so an
    /// unusable directory stops the start with a message that says why (SPEC §8) instead of refusing
    /// every publish later. Throws <see cref="IOException"/> with a plain-language message; the
    /// runtime's own messages are resource keys in the AOT build (<c>IO_PathNotFound_Path</c>).
    /// </summary>
    public static void PrepareDataDir(string dataDir)
    {
        string full = Path.GetFullPath(dataDir);
        try
        {
            Directory.CreateDirectory(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException(DescribeCreateFailure(full, e), e);
        }
        string probe = Path.Combine(full, ".aotevents-write-check");
        try
        {
            using (File.OpenHandle(probe, FileMode.Create, FileAccess.Write)) { }
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException("files cannot be created in it (" +
                (e is UnauthorizedAccessException ? "permission denied" : e.Message) + ")", e);
        }
    }

    private static string DescribeCreateFailure(string full, Exception e)
    {
        // Walk up to the first path that exists: a regular file there is the usual mistake.
        for (string? p = full; !string.IsNullOrEmpty(p); p = Path.GetDirectoryName(p))
        {
            if (File.Exists(p)) return p == full ? "it is a regular file, not a directory" : $"{p} is a regular file, not a directory";
            if (Directory.Exists(p)) break;
        }
        return e switch
        {
            UnauthorizedAccessException => "it cannot be created (permission denied)",
            DirectoryNotFoundException or FileNotFoundException => "it cannot be created (a parent is missing or not a directory)",
            _ => "it cannot be created (" + e.Message + ")",
        };
    }

    /// <summary>
    /// fsyncs a directory so that files created or renamed in it survive a crash (a file's own
    /// fsync does not persist its directory entry).
    /// </summary>
    public static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return;
        int fd = NativeMethods.open(dir, 0 /* O_RDONLY */);
        if (fd < 0) return;
        try
        {
            NativeMethods.fsync(fd);
        }
        finally
        {
            NativeMethods.close(fd);
        }
    }

    /// <summary>
    /// Tells the kernel it may drop the cached pages of [offset, offset + length) of a file (they must already be on
    /// disk: dirty pages are not dropped). Advice only: errors are ignored, and it does nothing off Linux.
    /// </summary>
    public static void DropCachedPages(SafeFileHandle file, long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            NativeMethods.posix_fadvise((int)file.DangerousGetHandle(), offset, length, 4 /* POSIX_FADV_DONTNEED */);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    private static partial class NativeMethods
    {
        [LibraryImport("libc")]
        internal static partial int posix_fadvise(int fd, long offset, long length, int advice);

        [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int open(string path, int flags);

        [LibraryImport("libc", SetLastError = true)]
        internal static partial int fsync(int fd);

        [LibraryImport("libc")]
        internal static partial int close(int fd);
    }
}
