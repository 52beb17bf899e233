-- POST <prefix>/users with an email no other request of any run uses (BENCH_RUN, thread,
-- counter): a 409 would count as an error.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local created = 0
function request()
  created = created + 1
  local body = string.format(
    '{"email": "u%s-%d-%d@bench.example.org", "name": "bench"}',
    os.getenv("BENCH_RUN"), thread_id, created)
  local headers = next_headers({ ["Content-Type"] = "application/json" })
  return wrk.format("POST", prefix .. "/users", headers, body)
end
