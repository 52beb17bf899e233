-- GET /health/live: no database, the floor of what a request costs in this app.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function request()
  return wrk.format("GET", "/health/live", next_headers())
end
