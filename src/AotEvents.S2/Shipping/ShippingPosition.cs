using System.Globalization;

namespace AotEvents.S2.Shipping;

/// <summary>
/// The shipper's position on disk (<c>s2-position</c> in the data directory): the highest seq S2
/// acknowledged. It only says where to start reading after a restart; exactly-once does not depend
/// on it being current, because before appending to a stream the shipper reads the stream's last
/// record and skips everything already there.
/// </summary>
public sealed class ShippingPosition
{
    private readonly string _path;

    public ShippingPosition(string dataDir) => _path = Path.Combine(dataDir, "s2-position");

    public long Load()
    {
        try
        {
            string text = File.ReadAllText(_path).Trim();
            return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long seq) ? seq : 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 0; // missing or unreadable: start from the beginning; the stream's tail says what to skip
        }
    }

    /// <summary>Atomically replaces the position (temp file + rename; no fsync: it is a hint).</summary>
    public void Save(long shippedSeq)
    {
        string tmp = _path + ".tmp";
        File.WriteAllText(tmp, shippedSeq.ToString(CultureInfo.InvariantCulture));
        File.Move(tmp, _path, overwrite: true);
    }
}
