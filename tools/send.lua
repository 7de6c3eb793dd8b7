-- wrk script: POST /sms/send with a bearer token, to an off-net number (no inbound row).
-- usage: TOKEN=an_… wrk -t2 -c64 -d15s -s tools/send.lua http://127.0.0.1:8402
wrk.method = "POST"
wrk.path = "/sms/send"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"to":"+15005550006","body":"Your verification code is 482913"}'

local non200 = 0
response = function(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("requests=%d errors_status=%d rps=%.0f\n",
    summary.requests, summary.errors.status, summary.requests / (summary.duration / 1e6)))
end
