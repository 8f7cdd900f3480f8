-- wrk script for the benchmark: method, body and token from the environment,
-- and a one-line JSON summary (prefixed WRKJSON) that bench/loadgen.py reads.
--   WRK_METHOD (GET), WRK_BODY (JSON body), WRK_TOKEN (API token)
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
if body then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local token = os.getenv("WRK_TOKEN")
if token then
  wrk.headers["Authorization"] = "Token " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  local p = function(q) return latency:percentile(q) end
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, ' ..
    '"read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"lat_min_us": %d, "lat_mean_us": %.1f, "lat_max_us": %d, "p50_us": %d, "p75_us": %d, ' ..
    '"p90_us": %d, "p99_us": %d, "p999_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency.min, latency.mean, latency.max,
    p(50), p(75), p(90), p(99), p(99.9)))
end
