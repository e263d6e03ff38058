using System.Runtime.InteropServices;
using AotEvents.Archive;
using AotEvents.Config;
using AotEvents.Diagnostics;
using AotEvents.Http.Handlers;
using AotEvents.Http.Server;
using AotEvents.Http.Sse;
using AotEvents.Pipeline;
using AotEvents.S2.Shipping;
using AotEvents.Shipping;
using AotEvents.Storage;

namespace AotEvents;

/// <summary>
/// The executable: configuration → wiring → signals. Everything else lives in the libraries.
/// Exit codes: 0 after a clean shutdown, 2 for a configuration error, 1 when the start fails.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        DaemonConfig? config = DaemonConfig.Load(args, Environment.GetEnvironmentVariable, out string? error, out bool help);
        if (help)
        {
            Console.Out.Write(DaemonConfig.HelpText());
            return 0;
        }
        if (config is null)
        {
            JsonLog.Error("bad configuration: " + error);
            return 2;
        }

        EventPipeline pipeline;
        try
        {
            pipeline = EventPipeline.Open(new EventPipelineOptions
            {
                DataDir = config.DataDir,
                RingCapacity = config.RingCapacity,
                RingMaxBytes = config.RingMaxBytes,
                FsyncInterval = config.FsyncInterval,
                SegmentBytes = config.SegmentBytes,
                MaxDiskBytes = config.MaxDiskBytes,
            }, message => JsonLog.Warn(message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            JsonLog.Error($"cannot use the data directory {Path.GetFullPath(config.DataDir)}: {e.Message}");
            return 1;
        }

        using var shutdown = new CancellationTokenSource();
        Func<string?> defaultSession = () => pipeline.LastSession?.Id;
        S2Shipper? shipper = config.S2Enabled
            ? S2Shipper.Create(config, pipeline, ReadFromFiles, message => JsonLog.Info(message))
            : null;
        // Retention keeps every JSONL segment S2 has not acknowledged yet (SPEC §5, §6).
        if (shipper is not null) pipeline.Writer.ShippedSeq = () => shipper.AckedSeq;
        IArchiveReader archive = shipper is not null
            ? new S2ArchiveReader(shipper.Client, config.S2Stream, defaultSession)
            : new JsonlArchive(pipeline.Writer, defaultSession);

        // The shipper reads from the files when it fell behind the ring (S2 slow or down).
        int ReadFromFiles(long afterSeq, int max, List<(long Seq, byte[] Json)> into)
        {
            using JsonlReplay replay = JsonlReplay.Open(pipeline.Writer, afterSeq);
            ReplayRead read;
            while (into.Count < max && (read = replay.TryRead(out ReplayItem item)) != ReplayRead.End)
                if (read == ReplayRead.Envelope) into.Add((item.Seq, item.Json.ToArray()));
            return into.Count;
        }

        var context = new DaemonContext
        {
            Config = config,
            Pipeline = pipeline,
            Archive = archive,
            Shipper = shipper,
            Shutdown = shutdown.Token,
        };
        var server = new HttpServer(new HttpServerOptions
        {
            Host = config.Host,
            Port = config.Port,
            MaxBodyBytes = config.MaxBodyBytes,
            RequestTimeout = config.RequestTimeout,
            IdleTimeout = config.IdleTimeout,
            MaxConnections = config.MaxConnections,
            Log = message => JsonLog.Warn(message),
        }, new ApiRouter(context));
        context.Connections = () => server.ConnectionCount;

        System.Net.IPEndPoint endpoint;
        try
        {
            endpoint = server.Start();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            JsonLog.Error($"cannot listen on {config.Host}:{config.Port}: {e.Message}");
            pipeline.Dispose();
            return 1;
        }
        shipper?.Start();
        using var heartbeat = new StreamHeartbeat(pipeline.Ring, TimeSpan.FromSeconds(1));
        using var heapBudget = new HeapBudget(() => pipeline.Ring.Bytes + pipeline.Writer.QueuedBytes,
            TimeSpan.FromMilliseconds(100));

        var fields = new List<KeyValuePair<string, string>>(config.Describe())
        {
            new("listening", "http://" + endpoint),
            new("last_seq", pipeline.LastSeq.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new("session", pipeline.ActiveSession?.Id ?? "none"),
        };
        JsonLog.Info("aotevents listening on http://" + endpoint, fields.ToArray());

        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnSignal(PosixSignalContext signal)
        {
            signal.Cancel = true; // we shut down ourselves, in order
            stopping.TrySetResult();
        }
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        await stopping.Task.ConfigureAwait(false);

        // SPEC §6 order: stop accepting publishes, finish the ones in flight, flush JSONL, flush S2
        // within its deadline, end every stream after the last event, exit 0.
        JsonLog.Info("shutting down");
        await server.StopAcceptingAsync().ConfigureAwait(false);
        pipeline.StopAccepting();
        shutdown.Cancel();
        pipeline.Ring.WakeAll();
        await server.DrainAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        pipeline.Dispose();
        if (shipper is not null) await shipper.StopAsync(config.S2ShutdownTimeout).ConfigureAwait(false);
        await server.DisposeAsync().ConfigureAwait(false);
        JsonLog.Info("stopped", new KeyValuePair<string, string>("last_seq",
            pipeline.LastSeq.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return 0;
    }
}
