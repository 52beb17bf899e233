-- POST <prefix>/users carrying a consistency token (BENCH_TOKEN): the client asks for the
-- position of its commit back, which costs the write one query more.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local created = 0
local token = os.getenv("BENCH_TOKEN")
function request()
  created = created + 1
  local body = string.format(
    '{"email": "t%s-%d-%d@bench.example.org", "name": "bench"}',
    os.getenv("BENCH_RUN"), thread_id, created)
  local headers = next_headers({ ["Content-Type"] = "application/json" })
  headers["X-Consistency-Token"] = token
  return wrk.format("POST", prefix .. "/users", headers, body)
end
