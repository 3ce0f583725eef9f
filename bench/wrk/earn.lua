-- POST /api/v1/purchases. Each request is a new order "<prefix><thread>-<n>"; or, given
-- a Lua file that sets `replays` ({order id, phone} pairs already reported), a replay.
-- args: store key, members, order id prefix, [replays file]. BENCH_PAUSE_MS, when set,
-- makes each connection pause that long between requests: a steady, lighter load.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

function init(args)
   seed_random()
   key, members, prefix = args[1], tonumber(args[2]), args[3]
   if args[4] then
      dofile(args[4])
   end
   n = 0
   local pause = tonumber(os.getenv("BENCH_PAUSE_MS"))
   if pause then
      delay = function() return pause end
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Api-Key " .. key
end

function request()
   local order_id, phone
   if replays then
      local replay = replays[math.random(1, #replays)]
      order_id, phone = replay[1], replay[2]
   else
      n = n + 1
      order_id = string.format("%s%d-%d", prefix, tid, n)
      phone = phone_of(math.random(1, members))
   end
   local body = string.format('{"phone": "%s", "order_id": "%s", "amount": "123.45"}',
      phone, order_id)
   return wrk.format(nil, "/api/v1/purchases", nil, body)
end
