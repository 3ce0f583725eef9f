-- Shared by every script: each thread learns its number, and done() prints one JSON
-- line with the figures the benchmark reads (latencies in microseconds).
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- Threads would otherwise draw the same numbers.
function seed_random()
   math.randomseed(os.time() * 100 + tid)
end

function done(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
      '"status_errors": %d, "socket_errors": %d}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, errors.status, errors.connect + errors.read + errors.write + errors.timeout))
end

-- A member of the bulk of the program, as the seed wrote its phone.
function phone_of(member_id)
   return string.format("+86139%08d", member_id)
end
