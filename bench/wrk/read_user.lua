-- GET /users/<id>, ids drawn at random over the seeded users (BENCH_USERS).
dofile(os.getenv("BENCH_WRK_DIR") .. "/report.lua")

local users = tonumber(os.getenv("BENCH_USERS"))

function request()
  return wrk.format("GET", "/users/" .. math.random(1, users))
end
