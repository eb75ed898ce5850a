-- bench/join.lua: figure 6's joins, driven by wrk (the load generator of figures 1-4), so that the
-- server is the limit and not the client.  JOINS visitors join (POST ?action=join over wrk's
-- keep-alive connections); once all of them have been sent, the connections ask for a path that
-- neither server has (a 404 "not_found", cheap on both) until the last join is answered, and the
-- thread stops.  Run with one thread (-t1):
--   JOINS=N TICKETS_FILE=F wrk -t1 -c50 -d60s -s bench/join.lua URL
-- When the last join is answered, writes F (through a rename, so it appears whole): a first line
-- "SECONDS FAILED" (wall time from the first join sent to the last one answered; joins answered
-- other than 200 with a ticket, whose bodies go to stderr), then the tickets, one per line, in the
-- order of their answers.  wrk itself runs until -d or SIGINT: the caller interrupts it once F is
-- there (bench/queue-clients.mjs --joiner wrk).
local joins = tonumber(os.getenv("JOINS") or "0")
local tickets_file = os.getenv("TICKETS_FILE")
local join, idle -- built in init(), once wrk has set the Host header
local sent, answered, failed = 0, 0, 0
local tickets = {}
local started

-- Wall-clock seconds (Lua has none finer than a second): date(1), at the first join and the last
-- answer only, so its own cost (about a millisecond, the same at both ends) cancels out.
local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

function init(args)
  wrk.headers["Content-Length"] = "0"
  join = wrk.format("POST", "/api/session?action=join")
  wrk.headers["Content-Length"] = nil
  idle = wrk.format("GET", "/bench-idle-no-such-path")
end

-- wrk (4.1) first calls request() once to check what the script makes (script_verify_request,
-- on thread 0's state) and sends nothing of it: that call must not count as a join.
local verified = false

function request()
  if not verified then
    verified = true
    return join
  end
  if sent < joins then
    if sent == 0 then started = now() end
    sent = sent + 1
    return join
  end
  return idle
end

function response(status, headers, body)
  if answered >= joins then return end
  local ticket = body:match('"ticket":"([^"]+)"')
  if not ticket and status == 404 and body:find('"not_found"', 1, true) then return end -- an idle answer
  answered = answered + 1
  if status == 200 and ticket then
    tickets[#tickets + 1] = ticket
  else
    failed = failed + 1
    io.stderr:write("join answered " .. status .. ": " .. body:sub(1, 200) .. "\n")
  end
  if answered == joins then
    local seconds = now() - started
    local f = assert(io.open(tickets_file .. ".part", "w"))
    f:write(string.format("%.6f %d\n", seconds, failed))
    f:write(table.concat(tickets, "\n"), "\n")
    f:close()
    assert(os.rename(tickets_file .. ".part", tickets_file))
    wrk.thread:stop()
  end
end
