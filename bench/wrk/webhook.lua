-- POST status webhooks, each a signed Meta-shaped body read from a file the
-- harness writes: one "signature<TAB>body" per line (signing needs
-- HMAC-SHA256, which wrk's Lua lacks). Counts 200 answers.
--
--   wrk -s bench/wrk/webhook.lua URL -- BODIES_FILE SIGNATURE_HEADER
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local bodies, sigs = {}, {}
local header = "X-Hub-Signature-256"
local path = "/"
local i = 0

function init(args)
  header = args[2] or header
  for line in io.lines(args[1]) do
    local sig, body = line:match("^([^\t]+)\t(.*)$")
    if sig then
      table.insert(sigs, sig)
      table.insert(bodies, body)
    end
  end
  if #bodies == 0 then
    error("no bodies in " .. tostring(args[1]))
  end
  path = wrk.path
  -- Threads start at different bodies.
  i = (tid * 7919) % #bodies
end

function request()
  i = i % #bodies + 1
  local h = { ["Content-Type"] = "application/json", [header] = sigs[i] }
  return wrk.format("POST", path, h, bodies[i])
end

function response(status, headers, body)
  if status == 200 then
    accepted = accepted + 1
  end
end
