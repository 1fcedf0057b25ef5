-- Replays pre-signed events: each wrk thread sends the requests of its own file,
-- $BENCH_REQUESTS.<thread number>, in order, so no event is sent twice in a run. A file
-- holds whole HTTP requests, built and signed beforehand (bench/ingest.py), in records
-- of RECORD bytes. wrk starts thread 0 while thread 1 still loads, so loading must take
-- no time: the file is mapped and a request copied out when it is sent.
--
--   BENCH_THREADS wrk's -t (a thread's own state cannot count its siblings); default 2
--   BENCH_SKIP    "a,b,...": requests thread 0, 1, ... skip first (to go on where an
--                 earlier run against the same database stopped); default none
--   BENCH_LIMIT   at most this many requests loaded per thread; default all
--   BENCH_RATE    pace the whole run to this many requests/s: each thread hands out
--                 send times 1/(rate/threads) apart, and delay() holds a connection
--                 until its time, so the rate does not depend on the answer times
--
-- When a thread runs out of requests it starts again from its first one: for the
-- gateway that is an idempotent replay, cheaper than a new event, so done() prints per
-- thread "bench-thread <n> sent <requests taken> wrapped <times> late <sends> init <ms>"
-- and the caller refuses a gateway figure that wrapped. "late" counts paced sends whose
-- time had passed before a connection was free (the pace was not held); "init" is the
-- time the thread took to load its requests.
local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
  int open(const char *path, int flags);
  int close(int fd);
  void *mmap(void *address, size_t length, int protection, int flags, int fd, long offset);
]])
local CLOCK_MONOTONIC, O_RDONLY, PROT_READ, MAP_PRIVATE = 1, 0, 1, 2
local RECORD = 2048 -- bench/ingest.py RECORD: "%7d\n" length, the request, zero padding
local now_buffer = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_buffer)
  return tonumber(now_buffer.tv_sec) * 1000 + tonumber(now_buffer.tv_nsec) / 1e6
end

local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(text)
  local values = {}
  for value in string.gmatch(text or "", "[^,]+") do
    values[#values + 1] = tonumber(value)
  end
  return values
end

function init(args)
  local started = now_ms()
  local skip = split(os.getenv("BENCH_SKIP"))[id + 1] or 0
  local limit = tonumber(os.getenv("BENCH_LIMIT") or "") or math.huge
  local path = os.getenv("BENCH_REQUESTS") .. "." .. id
  local file = assert(io.open(path, "rb"))
  local size = file:seek("end")
  file:close()
  -- The file is mapped, not read: loading takes no time whatever its size, and
  -- request() copies out one record when it is sent.
  local fd = ffi.C.open(path, O_RDONLY)
  assert(fd >= 0, "cannot open " .. path)
  local mapped = ffi.C.mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
  ffi.C.close(fd)
  assert(ffi.cast("intptr_t", mapped) ~= -1, "cannot map " .. path)
  first = ffi.cast("const char *", mapped) + skip * RECORD
  count = math.min(math.floor(size / RECORD) - skip, limit)
  if count <= 0 then
    error("no requests left in " .. path)
  end
  position, sent, wrapped, late = 0, 0, 0, 0
  local rate = tonumber(os.getenv("BENCH_RATE") or "")
  if rate then
    local threads_in_run = tonumber(os.getenv("BENCH_THREADS") or "") or 2
    interval = 1000 * threads_in_run / rate
  end
  init_ms = now_ms() - started
end

function request()
  position = position + 1
  if position > count then
    position = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  local record = first + (position - 1) * RECORD
  return ffi.string(record + 8, tonumber(ffi.string(record, 7)))
end

if os.getenv("BENCH_RATE") then
  local next_send = nil

  function delay()
    local now = now_ms()
    next_send = next_send or now
    local at = next_send
    next_send = next_send + interval
    if at < now - 1 then
      late = late + 1
    end
    return math.max(0, math.floor(at - now + 0.5))
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format(
      "bench-thread %d sent %d wrapped %d late %d init %.0f\n",
      thread:get("id"), thread:get("sent"), thread:get("wrapped"), thread:get("late"),
      thread:get("init_ms")
    ))
  end
end
