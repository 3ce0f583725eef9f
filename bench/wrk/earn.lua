-- POST /api/v1/purchases. Each request is a new order "<prefix><thread>-<n>"; or, given
-- a Lua file that sets `replays` ({order id, phone} pairs already reported), a replay.
-- args: store key, members, order id prefix, [replays file]. BENCH_PAUSE_MS, when set,
-- makes each connection pause that long between requests: a steady, lighter load.
-- BENCH_LINES, when set, sends each new order with a basket of that many lines.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

-- The baskets a thread draws from, made once so that wrk spends its CPU sending them.
local BASKETS = 200
-- The shop's items: SKU-1 to SKU-400, each of one category, as bench/seed.py's rules
-- name them.
local SKUS = 400
local CATEGORIES = {"coffee", "beans", "bakery", "dairy", "snacks", "drinks", "household",
                    "tobacco"}

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
   local lines = tonumber(os.getenv("BENCH_LINES"))
   if lines then
      baskets = {}
      for i = 1, BASKETS do
         baskets[i] = basket(lines)
      end
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Api-Key " .. key
end

-- `"amount": …, "lines": […]` of a basket: 1 to 3 of an item at 1.00 to 20.00 a line,
-- the amount their sum to the cent.
function basket(count)
   local lines, total = {}, 0
   for i = 1, count do
      local sku = math.random(1, SKUS)
      local quantity = math.random(1, 3)
      local cents = quantity * math.random(100, 2000)
      total = total + cents
      lines[i] = string.format(
         '{"line_id": "%d", "sku": "SKU-%d", "category": "%s", "quantity": %d, ' ..
         '"amount": "%s"}', i, sku, CATEGORIES[sku % #CATEGORIES + 1], quantity, money(cents))
   end
   return string.format('"amount": "%s", "lines": [%s]', money(total),
      table.concat(lines, ", "))
end

function money(cents)
   return string.format("%d.%02d", math.floor(cents / 100), cents % 100)
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
   local amount = baskets and baskets[math.random(1, #baskets)] or '"amount": "123.45"'
   local body = string.format('{"phone": "%s", "order_id": "%s", %s}', phone, order_id, amount)
   return wrk.format(nil, "/api/v1/purchases", nil, body)
end
