-- POST /api/v1/redemptions: hold 100 points of a random member against a new order.
-- args: store key, members.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
   seed_random()
   key, members = args[1], tonumber(args[2])
   n = 0
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Api-Key " .. key
end

function request()
   n = n + 1
   local body = string.format(
      '{"phone": "%s", "order_id": "H%d-%d", "order_total": "100.00", "points": 100}',
      phone_of(math.random(1, members)), tid, n)
   return wrk.format(nil, "/api/v1/redemptions", nil, body)
end
