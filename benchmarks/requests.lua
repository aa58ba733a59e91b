-- wrk script: requests with an API key over keep-alive connections.
-- Arguments (after `--`): method, path, API key, file of lines, threads. For POST each
-- line is a JSON body sent to the path; for GET each line is the path (with its query).
-- Each wrk thread takes every n-th line (a disjoint share) and cycles through it, so a file
-- of one line repeats one query (cached) and a file of many distinct lines misses the cache
-- until it wraps. done() prints one machine-readable line for benchmarks/run.py.

local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  local method, path, key, file, threads = args[1], args[2], args[3], args[4], tonumber(args[5])
  local headers = { ["X-API-Key"] = key }
  if method == "POST" then
    headers["Content-Type"] = "application/json"
  end
  local function format(line)
    if method == "POST" then
      return wrk.format("POST", path, headers, line)
    end
    return wrk.format("GET", line, headers)
  end
  requests = {}
  local line_number = 0
  for line in io.lines(file) do
    if line ~= "" then
      if line_number % threads == tid then
        table.insert(requests, format(line))
      end
      line_number = line_number + 1
    end
  end
  if #requests == 0 then
    -- fewer lines than threads: every thread sends the first line
    for line in io.lines(file) do
      table.insert(requests, format(line))
      break
    end
  end
  next_request = 1
end

function request()
  local r = requests[next_request]
  next_request = next_request + 1
  if next_request > #requests then
    next_request = 1
  end
  return r
end

function done(summary, latency, _requests)
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
