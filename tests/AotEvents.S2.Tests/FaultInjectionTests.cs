using System.Diagnostics;
using S2StandIn;

namespace AotEvents.S2.Tests;

/// <summary>The stand-in's injected faults, as the client sees them.</summary>
public sealed class FaultInjectionTests : IAsyncLifetime
{
    private S2StandIn.S2StandIn _standIn = null!;
    private string _stream = null!;

    public async Task InitializeAsync()
    {
        _standIn = await TestSupport.StartStandInAsync();
        _stream = TestSupport.NewStream();
        _standIn.CreateStream(TestSupport.Basin, _stream);
    }

    public async Task DisposeAsync() => await _standIn.DisposeAsync();

    private IReadOnlyList<string> Stored => _standIn.Bodies(TestSupport.Basin, _stream);

    [Fact]
    public async Task Failing_the_next_appends_answers_5xx_and_stores_nothing()
    {
        using S2Client client = TestSupport.Client(_standIn);
        _standIn.Faults.FailNext(2, 503);

        S2Exception first = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));
        S2Exception second = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));
        S2AppendAck ack = await client.AppendAsync(_stream, TestSupport.Bodies("a"), 0);

        Assert.All([first, second], e =>
        {
            Assert.Equal(503, e.StatusCode);
            Assert.Equal("unavailable", e.Code);
            Assert.True(e.IsRetryable);
            Assert.Null(e.RetryAfter);
        });
        Assert.Equal(0, ack.Start.SeqNum);
        Assert.Equal(["a"], Stored);
        Assert.Equal(0, _standIn.Faults.PendingRules);
        Assert.Equal(2, _standIn.Requests.Count(r => r.Fault == S2FaultKind.Status));
    }

    [Fact]
    public async Task Faults_target_only_the_operations_asked_for()
    {
        using S2Client client = TestSupport.Client(_standIn);
        _standIn.Faults.FailNext(1, 500, S2Op.CheckTail);

        await client.AppendAsync(_stream, TestSupport.Bodies("a"), 0);
        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync(_stream));

        Assert.Equal(500, e.StatusCode);
        Assert.Equal("other", e.Code);
        Assert.Equal(1, (await client.CheckTailAsync(_stream)).SeqNum);
    }

    [Fact]
    public async Task Rate_limiting_answers_429_with_retry_after_ms()
    {
        using S2Client client = TestSupport.Client(_standIn);
        _standIn.Faults.RateLimitNext(1, TimeSpan.FromMilliseconds(750));

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));

        Assert.Equal(429, e.StatusCode);
        Assert.Equal("rate_limited", e.Code);
        Assert.Equal(TimeSpan.FromMilliseconds(750), e.RetryAfter);
        Assert.True(e.IsRetryable);
        Assert.Empty(Stored);
    }

    [Fact]
    public async Task A_connection_dropped_before_landing_is_a_retryable_network_error_and_nothing_is_stored()
    {
        using S2Client client = TestSupport.Client(_standIn, reuseConnections: false);
        _standIn.Faults.DropNext(1);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.Equal(0, e.StatusCode);
        Assert.True(e.IsRetryable);
        Assert.Empty(Stored);
        Assert.Equal(-1, _standIn.Requests.Single(r => r.Op == S2Op.Append).Status);
    }

    [Fact]
    public async Task A_lost_ack_leaves_the_records_stored_and_the_retry_sees_412_with_the_new_tail()
    {
        using S2Client client = TestSupport.Client(_standIn, reuseConnections: false);
        _standIn.Faults.LoseNextAcks(1);

        S2Exception lost = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a", "b"), 0));
        Assert.Equal(S2FailureKind.Network, lost.Kind);
        Assert.True(lost.IsRetryable);
        Assert.Equal(["a", "b"], Stored);

        // The same batch again: match_seq_num refuses the duplicate and says where the stream ends.
        S2Exception retry = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a", "b"), 0));
        Assert.True(retry.IsSeqNumMismatch);
        Assert.Equal(2, retry.ExpectedSeqNum);
        Assert.Equal(["a", "b"], Stored);
        Assert.Equal(S2FaultKind.DroppedAfterLanding, _standIn.Requests.First(r => r.Op == S2Op.Append).Fault);
    }

    [Fact]
    public async Task A_lost_ack_on_a_reused_connection_never_yields_a_second_copy()
    {
        // On a reused keep-alive connection the HTTP stack may resend a request whose connection died
        // before any answer byte. Either way — network error, or a resend refused with 412 — the
        // caller ends up knowing the tail, and match_seq_num keeps the stream free of duplicates.
        using S2Client client = TestSupport.Client(_standIn, reuseConnections: true);
        await client.AppendAsync(_stream, TestSupport.Bodies("warm-up"), 0); // a pooled connection now exists
        _standIn.Faults.LoseNextAcks(1);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 1));
        if (!e.IsSeqNumMismatch)
        {
            Assert.Equal(S2FailureKind.Network, e.Kind);
            e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 1));
        }

        Assert.True(e.IsSeqNumMismatch);
        Assert.Equal(2, e.ExpectedSeqNum);
        Assert.Equal(["warm-up", "a"], Stored);
    }

    [Fact]
    public async Task A_slow_answer_times_out_the_client_while_the_append_lands()
    {
        using S2Client client = TestSupport.Client(_standIn, timeout: TimeSpan.FromMilliseconds(300));
        _standIn.Faults.DelayNext(1, TimeSpan.FromSeconds(3), afterLanding: true);

        var clock = Stopwatch.StartNew();
        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("slow"), 0));

        Assert.Equal(S2FailureKind.Timeout, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(2.5));
        Assert.Equal(["slow"], Stored);
    }

    [Fact]
    public async Task Latency_slows_every_answer()
    {
        using S2Client client = TestSupport.Client(_standIn);
        _standIn.Faults.Latency = TimeSpan.FromMilliseconds(200);

        var clock = Stopwatch.StartNew();
        await client.CheckTailAsync(_stream);
        await client.AppendAsync(_stream, TestSupport.Bodies("a"), 0);

        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(390), $"took {clock.Elapsed}");
        Assert.Equal(["a"], Stored);
    }

    [Fact]
    public async Task A_delay_before_landing_stores_the_append_only_after_the_delay()
    {
        using S2Client client = TestSupport.Client(_standIn, timeout: TimeSpan.FromMilliseconds(200));
        _standIn.Faults.DelayNext(1, TimeSpan.FromSeconds(2));

        var clock = Stopwatch.StartNew();
        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("late"), 0));
        Assert.Equal(S2FailureKind.Timeout, e.Kind);
        if (clock.Elapsed < TimeSpan.FromSeconds(1.5))
        {
            Assert.Empty(Stored); // still being delayed
        }

        for (int i = 0; i < 100 && Stored.Count == 0; i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(["late"], Stored);
    }

    [Fact]
    public async Task Down_in_abort_mode_drops_connections_until_it_comes_back()
    {
        using S2Client client = TestSupport.Client(_standIn);
        await client.CheckTailAsync(_stream);
        _standIn.Faults.GoDown();

        S2Exception e1 = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));
        S2Exception e2 = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync(_stream));
        Assert.All([e1, e2], e =>
        {
            Assert.Equal(S2FailureKind.Network, e.Kind);
            Assert.True(e.IsRetryable);
        });
        Assert.True(_standIn.RefusedConnections > 0);

        _standIn.Faults.ComeBackUp();
        Assert.Equal(0, (await client.AppendAsync(_stream, TestSupport.Bodies("a"), 0)).Start.SeqNum);
        Assert.Equal(["a"], Stored);
    }

    [Fact]
    public async Task Down_for_a_period_answers_503_then_recovers_by_itself()
    {
        using S2Client client = TestSupport.Client(_standIn);
        await client.CheckTailAsync(_stream); // connection warm, so the next request arrives at once
        _standIn.Faults.GoDown(TimeSpan.FromSeconds(1), S2DownMode.Unavailable);

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.AppendAsync(_stream, TestSupport.Bodies("a"), 0));
        Assert.Equal(503, e.StatusCode);
        Assert.Equal("unavailable", e.Code);
        Assert.True(e.IsRetryable);

        for (int i = 0; i < 60 && _standIn.Faults.IsDown; i++)
        {
            await Task.Delay(50);
        }

        Assert.False(_standIn.Faults.IsDown);
        await client.AppendAsync(_stream, TestSupport.Bodies("a"), 0);
        Assert.Equal(["a"], Stored);
    }

    [Fact]
    public async Task Connection_refused_is_a_retryable_network_error()
    {
        using var client = new S2Client(new S2Options
        {
            Basin = TestSupport.Basin,
            AccessToken = TestSupport.Token,
            Endpoint = $"http://127.0.0.1:{TestSupport.ClosedPort()}",
        });

        S2Exception e = await Assert.ThrowsAsync<S2Exception>(() => client.CheckTailAsync(_stream));

        Assert.Equal(S2FailureKind.Network, e.Kind);
        Assert.True(e.IsRetryable);
        Assert.IsType<System.Net.Sockets.SocketException>(e.InnerException);
    }

    [Fact]
    public async Task Random_failures_are_reproducible_and_retrying_with_match_seq_num_stores_each_batch_once()
    {
        // p = 0.4 of appends fail with 503, every third surviving ack is lost: a retry loop that
        // reconciles through match_seq_num must still end with every batch stored exactly once, in order.
        using S2Client client = TestSupport.Client(_standIn, reuseConnections: false);
        _standIn.Faults.FailRandomly(0.4, seed: 1234, status: 503);
        _standIn.Faults.LoseNextAcks(3);
        const int batches = 30;
        long tail = 0;
        int failures = 0;
        for (int b = 0; b < batches; b++)
        {
            ReadOnlyMemory<byte>[] batch = TestSupport.Bodies($"b{b}-0", $"b{b}-1");
            while (true)
            {
                try
                {
                    tail = (await client.AppendAsync(_stream, batch, tail)).End.SeqNum;
                    break;
                }
                catch (S2Exception e) when (e.IsSeqNumMismatch && e.ExpectedSeqNum == tail + batch.Length)
                {
                    tail = e.ExpectedSeqNum.Value; // the earlier attempt landed; its ack was lost
                    break;
                }
                catch (S2Exception e) when (e.IsRetryable)
                {
                    failures++;
                }
            }
        }

        Assert.Equal(Enumerable.Range(0, batches).SelectMany(b => new[] { $"b{b}-0", $"b{b}-1" }), Stored);
        Assert.InRange(failures, 10, 40);
        Assert.Equal(failures, _standIn.Requests.Count(r => r.Fault is S2FaultKind.Status or S2FaultKind.DroppedAfterLanding));
    }

    [Fact]
    public void The_same_seed_fails_the_same_requests()
    {
        static string Pattern(int seed)
        {
            var faults = new S2Faults();
            faults.FailRandomly(0.5, seed);
            return string.Concat(Enumerable.Range(0, 40).Select(_ => faults.Take(S2Op.Append) is null ? '.' : 'x'));
        }

        Assert.Equal(Pattern(7), Pattern(7));
        Assert.NotEqual(Pattern(7), Pattern(8));
        Assert.Contains("x", Pattern(7), StringComparison.Ordinal);
        Assert.Contains(".", Pattern(7), StringComparison.Ordinal);
    }
}
