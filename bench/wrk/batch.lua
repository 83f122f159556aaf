-- POST /v1/notifications/batch with 100 notifications per request (the same
-- shape as publish.lua). Counts requests whose every item was accepted
-- (200 with "rejected":0); the harness multiplies by 100.
--
--   wrk -s bench/wrk/batch.lua URL -- API_KEY RUN_ID
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local headers = { ["Content-Type"] = "application/json" }
local prefix = "run"
local n = 0
local per = 100

function init(args)
  if args[1] and args[1] ~= "" then
    headers["Authorization"] = "Bearer " .. args[1]
  end
  prefix = (args[2] or "run") .. "-" .. tostring(tid)
end

function request()
  local items = {}
  for i = 1, per do
    n = n + 1
    items[i] = string.format(
      '{"idempotency_key":"%s-%d","event_type":"invoice.reminder","user_id":"user-%d","recipient":"+4477%08d",' ..
      '"template":{"name":"invoice_due","language":"en_US","parameters":["INV-%d","49.00"]},' ..
      '"metadata":{"invoice":"%d","channel":"billing"}}',
      prefix, n, n, (tid * 1000003 + n) % 100000000, n, n)
  end
  local body = '{"notifications":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v1/notifications/batch", headers, body)
end

function response(status, headers, body)
  if status == 200 and body:find('"rejected":0', 1, true) then
    accepted = accepted + 1
  end
end
