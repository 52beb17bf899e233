-- GET <prefix>/users/<id>, ids drawn at random over the seeded users (BENCH_USERS).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local users = tonumber(os.getenv("BENCH_USERS"))

function request()
  return wrk.format("GET", prefix .. "/users/" .. math.random(1, users), next_headers())
end
