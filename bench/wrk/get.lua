-- GET the URL as given: the no-op view (L_http) and the earn floor.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")
