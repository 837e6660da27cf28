-- wrk script of tests/bench/bench_webhooks.py: posts pre-built, distinct signed deliveries.
--
--   wrk -t 1 -c 32 -d 600s -s tests/bench/webhooks.lua <url> -- <requests file>
--
-- The file holds whole HTTP/1.1 requests, each after a line with its length in bytes. Each is
-- sent once; a connection that asks for more once they are all out redelivers one of the first
-- (long acknowledged: Stripe's redelivery, answered as a duplicate and not counted). When every
-- distinct event has its answer the thread writes "finished" and stops ("started" at its first
-- request: the bench reads CPU counters at both); the bench then ends wrk
-- with SIGINT (wrk sleeps out -d otherwise) and reads the "result" line that done() writes.
-- One thread: done() reads its globals, and one C thread keeps 32 connections busy.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *now);
]]
local timespec = ffi.new("bench_timespec")

-- CLOCK_MONOTONIC, as Python's time.perf_counter() on Linux: the bench compares them.
local function now()
   ffi.C.clock_gettime(1, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local file = assert(io.open(args[1], "rb"))
   local data = file:read("*a")
   file:close()
   deliveries = {}
   local at = 1
   while at <= #data do
      local eol = data:find("\n", at, true)
      local length = tonumber(data:sub(at, eol - 1))
      deliveries[#deliveries + 1] = data:sub(eol + 1, eol + length)
      at = eol + length + 1
   end
   sent, answered, redelivered, failed = 0, 0, 0, 0
   first, last = 0, 0
end

function request()
   sent = sent + 1
   if sent == 1 then
      first = now()
      io.write("started\n")
      io.flush()
   end
   return deliveries[(sent - 1) % #deliveries + 1]
end

function response(status, headers, body)
   if status ~= 200 then
      failed = failed + 1
   elseif body:find('"duplicate":true', 1, true) then
      redelivered = redelivered + 1
      return
   end
   answered = answered + 1
   if answered == #deliveries then
      last = now()
      io.write("finished\n")
      io.flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local thread = threads[1]
   io.write(string.format(
      "result first=%.6f last=%.6f answered=%d failed=%d redelivered=%d "
         .. "p50=%d p99=%d max=%d errors=%d\n",
      thread:get("first"), thread:get("last"), thread:get("answered"), thread:get("failed"),
      thread:get("redelivered"), latency:percentile(50), latency:percentile(99), latency.max,
      summary.errors.connect + summary.errors.read + summary.errors.write
         + summary.errors.timeout
   ))
end
