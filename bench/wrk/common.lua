-- Shared by the scripts: per-thread random seeds, connection recycling, and one JSON line
-- at the end of a run for bench/throughput.py to parse.

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  -- Each thread has its own Lua state, seeded alike unless told otherwise.
  math.randomseed(os.time() * 100 + thread_id)
end

-- uvicorn's workers share one listening socket, and 32 kept-alive connections can all land
-- on one worker: every 100th request asks the app to close, and wrk connects again.
-- BENCH_TOKEN, if set: an X-Consistency-Token every request carries (bench/replicas.py).
local sent = 0
local token = os.getenv("BENCH_TOKEN")
function next_headers(headers)
  sent = sent + 1
  headers = headers or {}
  headers["Connection"] = (sent % 100 == 0) and "close" or nil
  headers["X-Consistency-Token"] = token
  return headers
end

prefix = os.getenv("BENCH_PREFIX") or ""

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "status_errors": %d, '
      .. '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
