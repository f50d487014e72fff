-- GET the ticket of users that have one, walking a list of user extIds.
-- Arguments: api key, client extId, file with one user extId per line.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
setup, response, done = report.setup, report.response, report.done

local headers, client
local users = {}
local index

function init(args)
  headers = { ["Authorization"] = "Bearer " .. args[1] }
  client = args[2]
  for line in io.lines(args[3]) do
    table.insert(users, line)
  end
  index = thread_id
end

function request()
  local user = users[(index % #users) + 1]
  index = index + 1
  return wrk.format("GET", "/nevisidm/api/core/v1/" .. client .. "/users/" .. user .. "/ticket",
    headers)
end
