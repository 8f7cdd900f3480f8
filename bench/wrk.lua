-- wrk script for the benchmark: method, body and token from the environment,
-- and a one-line JSON summary (prefixed WRKJSON) that bench/loadgen.py reads.
--   WRK_METHOD (GET), WRK_BODY (JSON body), WRK_TOKEN (DRF token),
--   WRK_KEYS (8 hex digits: send a distinct UUID-shaped Idempotency-Key per request,
--   <WRK_KEYS>-<thread>-4000-8000-<n>, as the dispatcher sends one per event)
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

local keys = os.getenv("WRK_KEYS")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
if keys then
  local n = 0
  function request()
    n = n + 1
    wrk.headers["Idempotency-Key"] = string.format("%s-%04x-4000-8000-%012x", keys, tid, n)
    return wrk.format()
  end
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
