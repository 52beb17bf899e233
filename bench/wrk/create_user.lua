-- POST /users with an email no other request of any run uses (BENCH_RUN, thread, counter):
-- a 409 would count as an error.
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

local sent = 0
local headers = { ["Content-Type"] = "application/json" }
function request()
  sent = sent + 1
  local body = string.format(
    '{"email": "u%s-%d-%d@bench.example.org", "name": "bench"}',
    os.getenv("BENCH_RUN"), thread_id, sent)
  return wrk.format("POST", "/users", headers, body)
end
