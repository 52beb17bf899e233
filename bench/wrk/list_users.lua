-- GET <prefix>/users?offset=<n>: a page of 20 users with their notes, anywhere in the table.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local users = tonumber(os.getenv("BENCH_USERS"))

function request()
  local offset = math.random(0, users - 20)
  return wrk.format("GET", prefix .. "/users?limit=20&offset=" .. offset, next_headers())
end
