-- Shared by every scenario: per-thread counters of non-2xx responses and the one line of
-- results that bench/run.py reads (BENCH-RESULT followed by JSON).
local report = {}

local threads = {}
local next_thread_id = 0

-- Runs in wrk's main Lua state, once per thread before it starts.
function report.setup(thread)
  thread:set("thread_id", next_thread_id)
  next_thread_id = next_thread_id + 1
  table.insert(threads, thread)
end

-- Runs in each thread's own state: count what is not 2xx and keep one example.
function report.response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = (non_2xx or 0) + 1
    if first_error == nil then
      first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300)
    end
  end
end

local function json_string(text)
  text = string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. text .. '"'
end

-- Runs in the main state after the run.
function report.done(summary, latency, requests)
  local non_2xx_total = 0
  local example = nil
  for _, thread in ipairs(threads) do
    non_2xx_total = non_2xx_total + (thread:get("non_2xx") or 0)
    example = example or thread:get("first_error")
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"non_2xx":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"first_error":%s}\n',
    summary.requests, summary.duration, summary.bytes, non_2xx_total,
    errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean, example and json_string(example) or "null"))
end

return report
