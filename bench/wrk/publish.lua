-- POST /v1/notifications with one ~300-byte notification per request, each
-- with its own idempotency key and recipient, as a platform's services
-- would publish them. Counts 202 answers.
--
--   wrk -s bench/wrk/publish.lua URL -- API_KEY RUN_ID
--
-- The same script drives the bare baseline handler, which answers 202 too.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local headers = { ["Content-Type"] = "application/json" }
local prefix = "run"
local n = 0

function init(args)
  if args[1] and args[1] ~= "" then
    headers["Authorization"] = "Bearer " .. args[1]
  end
  prefix = (args[2] or "run") .. "-" .. tostring(tid)
end

function request()
  n = n + 1
  local body = string.format(
    '{"idempotency_key":"%s-%d","event_type":"otp","user_id":"user-%d","recipient":"+4477%08d",' ..
    '"template":{"name":"otp_code","language":"en_US","parameters":["482913"]},"ttl":300,' ..
    '"metadata":{"order_id":"ord-%d","channel":"checkout","region":"eu-west"}}',
    prefix, n, n, (tid * 1000003 + n) % 100000000, n)
  return wrk.format("POST", "/v1/notifications", headers, body)
end

function response(status, headers, body)
  if status == 202 then
    accepted = accepted + 1
  end
end
