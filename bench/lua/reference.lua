-- The reference: POST {} to the bare Flask JSON route of bench/reference_app.py.
-- Arguments: none.
local report = dofile(os.getenv("BENCH_LUA_DIR") .. "/report.lua")
setup, response, done = report.setup, report.response, report.done

wrk.path = "/reference"
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
