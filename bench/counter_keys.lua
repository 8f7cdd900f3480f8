-- wrk script for bench/counter_server.py: wrk.lua's POST and summary, plus an
-- Idempotency-Key distinct for every request (WRK_KEY_PREFIX, the thread, a counter),
-- so that the counter server stores a key per request as it does under the dispatcher.
--   WRK_BASE_SCRIPT (path of wrk.lua), WRK_KEY_PREFIX, and wrk.lua's variables
dofile(os.getenv("WRK_BASE_SCRIPT"))

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local sent = 0
function request()
  sent = sent + 1
  wrk.headers["Idempotency-Key"] = os.getenv("WRK_KEY_PREFIX") .. "-" .. thread_id .. "-" .. sent
  return wrk.format()
end
