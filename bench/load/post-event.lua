-- wrk script: POST one typical event (~300 bytes of JSON) per request.
-- Used against nginx (`return 204`), the daemon and the ASP.NET Core peer alike.
wrk.method = "POST"
wrk.path = "/events/publish"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"console.log","category":"console","detail_level":"standard",' ..
  '"source":{"kind":"extension","event":"Runtime.consoleAPICalled","metadata":{"target_id":"T1"}},' ..
  '"url":"https://shop.example.com/checkout?step=2",' ..
  '"data":{"level":"info","args":["cart updated",{"items":3,"total":"59.90"}],"stack":"at updateCart (app.js:120:14)"}}'

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT rps=%.0f requests=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d body_bytes=%d\n",
    summary.requests / seconds, summary.requests,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, #wrk.body))
end
