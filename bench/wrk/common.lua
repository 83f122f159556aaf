-- Shared by the wanotify wrk scripts (loaded with dofile by each of them):
-- thread ids, counting of the answers a script accepts, and one summary line
-- the harness parses:
--   WRK_RESULT {"requests":…, "accepted":…, "duration_us":…, …}
-- wrk runs setup() and done() in its main Lua state and request()/response()
-- in one state per thread, so the accepted counts are read back from every
-- thread's state at the end.

local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

-- accepted is a per-thread global: answers the script's response() counted.
accepted = 0

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + (t:get("accepted") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"accepted":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, n, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
