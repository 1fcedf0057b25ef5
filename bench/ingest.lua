-- Replays pre-signed events (one "timestamp<TAB>signature<TAB>json" per line) to POST
-- /v1/events; each wrk thread takes its own share so no event is sent twice.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local source = os.getenv("BENCH_SOURCE")
  local total = #threads > 0 and #threads or 2
  requests = {}
  local index = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if index % 2 == id then
      local ts, sig, body = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/json",
        ["X-Source-Id"] = source,
        ["X-Timestamp"] = ts,
        ["X-Signature"] = sig,
      }
      requests[#requests + 1] = wrk.format("POST", nil, headers, body)
    end
    index = index + 1
  end
  position = 0
end

function request()
  position = position + 1
  if position > #requests then position = 1 end
  return requests[position]
end
