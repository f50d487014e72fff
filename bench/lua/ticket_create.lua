-- POST a ticket for a new user on every request.
-- Arguments: api key, client extId, user extId prefix, pool size, thread count, and
-- optionally the first index (0). Users <prefix><i> for i in [0, pool size) were seeded
-- beforehand; thread t takes first + t, first + t + threads, ... so that no user is asked
-- for twice.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
setup, response, done = report.setup, report.response, report.done

local headers, client, prefix, pool, stride
local index

function init(args)
  headers = {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "application/json",
  }
  client, prefix, pool, stride = args[2], args[3], tonumber(args[4]), tonumber(args[5])
  index = tonumber(args[6] or "0") + thread_id
end

function request()
  -- Past the pool, ask for users that do not exist: 404s show up as errors.
  local path = "/nevisidm/api/core/v1/" .. client .. "/users/" .. prefix .. index .. "/ticket"
  index = index + stride
  return wrk.format("POST", path, headers, "{}")
end
