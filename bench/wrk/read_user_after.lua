-- GET <prefix>/users/<id> carrying a consistency token (BENCH_TOKEN) the standby has
-- replayed past: what checking one costs a read.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local users = tonumber(os.getenv("BENCH_USERS"))
local token = os.getenv("BENCH_TOKEN")

function request()
  local headers = next_headers()
  headers["X-Consistency-Token"] = token
  return wrk.format("GET", prefix .. "/users/" .. math.random(1, users), headers)
end
