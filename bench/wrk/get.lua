-- GET /bench/noop: the web stack's limit.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
