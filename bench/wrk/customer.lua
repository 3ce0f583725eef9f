-- GET a customer endpoint with the access token of a random customer.
-- args: path, a Lua file that sets `tokens`.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
   seed_random()
   path = args[1]
   dofile(args[2])
   wrk.method = "GET"
end

function request()
   local token = tokens[math.random(1, #tokens)]
   return wrk.format(nil, path, {["Authorization"] = "Bearer " .. token})
end
