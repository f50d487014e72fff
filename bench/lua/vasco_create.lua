-- POST a VASCO credential with a new extId on every request.
-- Arguments: api key, client extId, extId prefix, then the token blocks as
-- authMode=Base64 pairs.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
setup, response, done = report.setup, report.response, report.done

local headers, path, prefix, body_tail
local counter = 0

function init(args)
  headers = {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "application/json",
  }
  path = "/nevisidm/api/core/v1/" .. args[2] .. "/vasco"
  prefix = args[3] .. "-" .. thread_id .. "-"
  local tokens = {}
  for i = 4, #args do
    local auth_mode, data = string.match(args[i], "^([^=]+)=(.+)$")
    table.insert(tokens, '{"authMode":"' .. auth_mode .. '","data":"' .. data .. '"}')
  end
  body_tail = '","vascoTokens":[' .. table.concat(tokens, ",") .. ']}'
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, headers, '{"extId":"' .. prefix .. counter .. body_tail)
end
