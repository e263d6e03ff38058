-- wrk script: POST an NDJSON batch of 100 typical events (~300 bytes each) per request.
local lines = {}
for i = 1, 100 do
  lines[i] = '{"type":"network.response","category":"network","detail_level":"standard",' ..
    '"source":{"kind":"extension","event":"Network.responseReceived","metadata":{"target_id":"T1"}},' ..
    '"url":"https://shop.example.com/api/cart/' .. i .. '",' ..
    '"data":{"status":200,"method":"GET","mime":"application/json","bytes":1834,"timing_ms":12.5,"request_id":"R-' .. i .. '"}}'
end
wrk.method = "POST"
wrk.path = "/events/publish"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = table.concat(lines, "\n") .. "\n"

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT rps=%.0f requests=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d body_bytes=%d\n",
    summary.requests / seconds, summary.requests,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, #wrk.body))
end
