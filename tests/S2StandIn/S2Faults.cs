namespace S2StandIn;

/// <summary>Kinds of request the stand-in serves; flags so a fault can target several.</summary>
[Flags]
public enum S2Op
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary><c>POST /streams/{s}/records</c>.</summary>
    Append = 1,

    /// <summary><c>GET /streams/{s}/records</c> (JSON or SSE).</summary>
    Read = 2,

    /// <summary><c>GET /streams/{s}/records/tail</c>.</summary>
    CheckTail = 4,

    /// <summary><c>POST /streams</c> and <c>PUT /streams/{s}</c>.</summary>
    CreateStream = 8,

    /// <summary><c>GET /streams</c>.</summary>
    ListStreams = 16,

    /// <summary><c>GET</c>, <c>PATCH</c>, <c>DELETE /streams/{s}</c>.</summary>
    StreamConfig = 32,

    /// <summary>Unknown paths and methods.</summary>
    Other = 64,

    /// <summary>Every kind.</summary>
    All = Append | Read | CheckTail | CreateStream | ListStreams | StreamConfig | Other,
}

/// <summary>What the stand-in did to a request instead of (or besides) serving it.</summary>
public enum S2FaultKind
{
    /// <summary>Served normally.</summary>
    None,

    /// <summary>Answered with an injected error status.</summary>
    Status,

    /// <summary>Connection aborted before the request took effect.</summary>
    DroppedBeforeLanding,

    /// <summary>Request took effect (an append landed), then the connection was aborted: the ack is lost.</summary>
    DroppedAfterLanding,

    /// <summary>Answer delayed.</summary>
    Delayed,

    /// <summary>Refused or aborted because the stand-in was down.</summary>
    Down,
}

/// <summary>How a down stand-in treats requests.</summary>
public enum S2DownMode
{
    /// <summary>Accept the connection, then close it without answering (the client sees a dropped connection).</summary>
    Abort,

    /// <summary>Answer every request 503 <c>unavailable</c>.</summary>
    Unavailable,
}

/// <summary>
/// Fault injection. One-shot rules (<see cref="FailNext"/>, <see cref="RateLimitNext"/>, <see cref="DropNext"/>,
/// <see cref="DelayNext"/>) are consumed first-in first-out, one per matching request; the random rule
/// (<see cref="FailRandomly"/>) applies to matching requests no one-shot rule took; <see cref="Latency"/>
/// delays every request; <see cref="GoDown"/> refuses everything for a while. Thread-safe.
/// </summary>
public sealed class S2Faults
{
    private readonly object _gate = new();
    private readonly List<Rule> _rules = [];
    private Random? _random;
    private double _probability;
    private S2Op _randomOps;
    private int _randomStatus;
    private TimeSpan? _randomRetryAfter;
    private long _downUntilTicks; // UTC ticks; 0 = up, long.MaxValue = until ComeBackUp
    private S2DownMode _downMode;
    private long _latencyTicks;

    /// <summary>Delay added before serving every request.</summary>
    public TimeSpan Latency
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _latencyTicks));
        set => Interlocked.Exchange(ref _latencyTicks, value.Ticks);
    }

    /// <summary>Whether the stand-in is down now.</summary>
    public bool IsDown
    {
        get
        {
            long until = Interlocked.Read(ref _downUntilTicks);
            return until != 0 && DateTime.UtcNow.Ticks < until;
        }
    }

    /// <summary>How requests are refused while down.</summary>
    public S2DownMode DownMode
    {
        get { lock (_gate) { return _downMode; } }
    }

    /// <summary>One-shot rules not yet consumed.</summary>
    public int PendingRules
    {
        get { lock (_gate) { return _rules.Sum(r => r.Remaining); } }
    }

    /// <summary>
    /// The next <paramref name="count"/> matching requests are answered <paramref name="status"/> with an
    /// <c>ErrorInfo</c> body (code derived from the status unless given) and, when
    /// <paramref name="retryAfter"/> is set, a <c>retry-after-ms</c> header. Nothing lands.
    /// </summary>
    public void FailNext(int count, int status = 503, S2Op ops = S2Op.Append, TimeSpan? retryAfter = null, string? code = null)
        => Add(new Rule(count, ops, RuleKind.Status, status, code, retryAfter, TimeSpan.Zero, AfterLanding: false));

    /// <summary>The next <paramref name="count"/> matching requests get 429 <c>rate_limited</c> with <c>retry-after-ms</c>.</summary>
    public void RateLimitNext(int count, TimeSpan retryAfter, S2Op ops = S2Op.Append)
        => FailNext(count, 429, ops, retryAfter, "rate_limited");

    /// <summary>
    /// The next <paramref name="count"/> matching requests have their connection aborted: before they take
    /// effect, or — <paramref name="afterLanding"/> — after (an append's records are stored, its ack is lost).
    /// </summary>
    public void DropNext(int count, bool afterLanding = false, S2Op ops = S2Op.Append)
        => Add(new Rule(count, ops, RuleKind.Drop, 0, null, null, TimeSpan.Zero, afterLanding));

    /// <summary>The next <paramref name="count"/> appends land, then their connection is aborted (ack lost).</summary>
    public void LoseNextAcks(int count) => DropNext(count, afterLanding: true, S2Op.Append);

    /// <summary>
    /// The next <paramref name="count"/> matching requests are delayed by <paramref name="delay"/>: before they
    /// take effect, or — <paramref name="afterLanding"/> — between taking effect and answering (a client that
    /// times out meanwhile has its append stored anyway).
    /// </summary>
    public void DelayNext(int count, TimeSpan delay, bool afterLanding = false, S2Op ops = S2Op.Append)
        => Add(new Rule(count, ops, RuleKind.Delay, 0, null, null, delay, afterLanding));

    /// <summary>
    /// Each matching request fails with probability <paramref name="probability"/> (seeded, so a run is
    /// reproducible) with <paramref name="status"/>. Nothing lands for a failed request.
    /// </summary>
    public void FailRandomly(double probability, int seed, int status = 503, S2Op ops = S2Op.Append, TimeSpan? retryAfter = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(probability);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(probability, 1.0);
        lock (_gate)
        {
            _random = new Random(seed);
            _probability = probability;
            _randomOps = ops;
            _randomStatus = status;
            _randomRetryAfter = retryAfter;
        }
    }

    /// <summary>Ends <see cref="FailRandomly"/>.</summary>
    public void StopFailingRandomly()
    {
        lock (_gate)
        {
            _random = null;
            _probability = 0;
        }
    }

    /// <summary>Refuse every request for <paramref name="duration"/> (null: until <see cref="ComeBackUp"/>).</summary>
    public void GoDown(TimeSpan? duration = null, S2DownMode mode = S2DownMode.Abort)
    {
        lock (_gate)
        {
            _downMode = mode;
        }

        long until = duration is { } d ? DateTime.UtcNow.Ticks + d.Ticks : long.MaxValue;
        Interlocked.Exchange(ref _downUntilTicks, until);
    }

    /// <summary>Ends a <see cref="GoDown"/> early.</summary>
    public void ComeBackUp() => Interlocked.Exchange(ref _downUntilTicks, 0);

    /// <summary>Removes every fault: rules, random failures, latency, down time.</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _rules.Clear();
            _random = null;
            _probability = 0;
        }

        Latency = TimeSpan.Zero;
        ComeBackUp();
    }

    /// <summary>Takes the fault for one request of kind <paramref name="op"/> (null: serve normally).</summary>
    internal Rule? Take(S2Op op)
    {
        lock (_gate)
        {
            for (int i = 0; i < _rules.Count; i++)
            {
                Rule rule = _rules[i];
                if ((rule.Ops & op) == 0)
                {
                    continue;
                }

                if (rule.Remaining <= 1)
                {
                    _rules.RemoveAt(i);
                }
                else
                {
                    _rules[i] = rule with { Remaining = rule.Remaining - 1 };
                }

                return rule;
            }

            if (_random is not null && (_randomOps & op) != 0 && _random.NextDouble() < _probability)
            {
                return new Rule(1, op, RuleKind.Status, _randomStatus, null, _randomRetryAfter, TimeSpan.Zero, AfterLanding: false);
            }

            return null;
        }
    }

    private void Add(Rule rule)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rule.Remaining, "count");
        lock (_gate)
        {
            _rules.Add(rule);
        }
    }

    internal enum RuleKind
    {
        Status,
        Drop,
        Delay,
    }

    internal sealed record Rule(int Remaining, S2Op Ops, RuleKind Kind, int Status, string? Code, TimeSpan? RetryAfter, TimeSpan Delay, bool AfterLanding);
}
