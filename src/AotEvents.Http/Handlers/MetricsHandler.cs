using System.Globalization;
using System.Text;
using AotEvents.Http.Server;

namespace AotEvents.Http.Handlers;

/// <summary><c>GET /metrics</c>: Prometheus text exposition of the daemon's counters (SPEC §8).</summary>
internal sealed class MetricsHandler(DaemonContext context)
{
    public void Write(HttpResponse response)
    {
        var sb = new StringBuilder(2048);
        var pipeline = context.Pipeline;
        Counter(sb, "aotevents_events_published_total", "Events accepted and sequenced.", pipeline.Metrics.Published);
        Counter(sb, "aotevents_events_refused_total", "Publish requests refused.", pipeline.Metrics.Refused);
        Counter(sb, "aotevents_events_truncated_total", "Events whose data was dropped by the 1 MB rule.", pipeline.Metrics.Truncated);
        Counter(sb, "aotevents_events_written_total", "Events written to the JSONL files.", pipeline.Writer.WrittenCount);
        Gauge(sb, "aotevents_last_seq", "Highest seq assigned.", pipeline.LastSeq);
        Gauge(sb, "aotevents_durable_seq", "Highest seq fsync'd.", pipeline.Writer.DurableSeq);
        Counter(sb, "aotevents_events_replayed_total", "Events streamed to subscribers from the JSONL files.", Interlocked.Read(ref context.StreamMetrics.Replayed));
        Counter(sb, "aotevents_events_dropped_total", "Events reported to subscribers as dropped (deleted by retention).", Interlocked.Read(ref context.StreamMetrics.Dropped));
        Gauge(sb, "aotevents_subscribers", "Connected stream subscribers.", Interlocked.Read(ref context.StreamMetrics.Subscribers));
        Gauge(sb, "aotevents_ring_events", "Envelopes held in the ring.", Math.Max(0, pipeline.Ring.Count));
        Gauge(sb, "aotevents_ring_bytes", "Bytes held in the ring.", pipeline.Ring.Bytes);
        Gauge(sb, "aotevents_ring_capacity", "Ring capacity in envelopes.", pipeline.Ring.Capacity);
        Gauge(sb, "aotevents_jsonl_queue_bytes", "Bytes waiting for the JSONL writer.", pipeline.Writer.QueuedBytes);
        Gauge(sb, "aotevents_jsonl_fault", "1 while the data directory refuses writes.", pipeline.Writer.Fault is null ? 0 : 1);
        if (context.Connections is { } connections)
            Gauge(sb, "aotevents_connections", "Open HTTP connections.", connections());
        if (context.Shipper is { } shipper)
        {
            Counter(sb, "aotevents_s2_shipped_total", "Records appended to S2 (retries included).", shipper.Shipped);
            Counter(sb, "aotevents_s2_acked_total", "Records acknowledged by S2.", shipper.Acked);
            Counter(sb, "aotevents_s2_retries_total", "S2 append retries.", shipper.Retries);
            Gauge(sb, "aotevents_s2_lag_events", "Events published but not yet acknowledged by S2.", Math.Max(0, pipeline.LastSeq - shipper.AckedSeq));
            GaugeD(sb, "aotevents_s2_lag_seconds", "Age of the oldest event not yet acknowledged by S2.", shipper.LagSeconds);
        }
        Gauge(sb, "aotevents_process_resident_memory_bytes", "Resident set size.", ResidentBytes());
        response.Write(200, "text/plain; version=0.0.4; charset=utf-8"u8, Encoding.UTF8.GetBytes(sb.ToString()));
    }

    private static void Counter(StringBuilder sb, string name, string help, long value) => Metric(sb, name, help, "counter", value.ToString(CultureInfo.InvariantCulture));
    private static void Gauge(StringBuilder sb, string name, string help, long value) => Metric(sb, name, help, "gauge", value.ToString(CultureInfo.InvariantCulture));
    private static void GaugeD(StringBuilder sb, string name, string help, double value) => Metric(sb, name, help, "gauge", value.ToString("0.###", CultureInfo.InvariantCulture));

    private static void Metric(StringBuilder sb, string name, string help, string type, string value) =>
        sb.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
          .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n')
          .Append(name).Append(' ').Append(value).Append('\n');

    /// <summary>RSS from /proc/self/statm (pages × page size); 0 where there is no procfs.</summary>
    internal static long ResidentBytes()
    {
        try
        {
            string statm = File.ReadAllText("/proc/self/statm");
            string[] parts = statm.Split(' ');
            return long.Parse(parts[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
