-- redis_store_admin.lua: the operator's operations of the Redis store's script (see
-- redis_store.lua for the setup and the rules they use; redis_store_operations.lua runs them).
-- An operator on any instance sees and controls every instance's visitors: each operation is one
-- atomic run like the visitors' own, on Redis's clock, and what it changes is published to every
-- instance in the batch.  The pause (P paused) and the operator's limits (P limits) live in Redis,
-- so every instance's next script run obeys them, and a "cfg" event tells every mirror.

-- The live entries as the console shows them: the holders, then the queue in order (at most
-- ADMIN_QUEUE_MAX of it: the console shows a page, and the count says how many wait in all).
local ADMIN_QUEUE_MAX = 1000

local function admin_entry(e)
  local calls = redis.call('LLEN', P .. 'c:' .. e.id)
  return { id = e.id, st = e.st, j = num(e.j), s = num(e.s), x = num(e.x), ip = e.ip or '', ['in'] = e['in'] or '',
           ch = num(e.cu) > NOW and 1 or 0, cl = calls > 0 and 1 or 0 }
end

OPS.admin_view = function()
  out.holders, out.queued = {}, {}
  for _, id in ipairs(redis.call('ZRANGE', P .. 'a', 0, -1)) do
    local e = load(id)
    if e and e.st == 'a' then out.holders[#out.holders + 1] = admin_entry(e) end
  end
  for _, id in ipairs(redis.call('ZRANGE', P .. 'q', 0, ADMIN_QUEUE_MAX - 1)) do
    local e = load(id)
    if e and e.st == 'q' then out.queued[#out.queued + 1] = admin_entry(e) end
  end
  out.ql = redis.call('ZCARD', P .. 'q')
  out.cfg = config_event()
  out.instances = {}
  local seen_at = redis.call('ZRANGEBYSCORE', P .. 'i', NOW - 300000, '+inf', 'WITHSCORES') -- the last 5 minutes
  for i = 1, #seen_at, 2 do
    local connections = num(redis.call('HGET', P .. 'ic', seen_at[i]))
    out.instances[#out.instances + 1] = { id = seen_at[i], ago = math.max(0, NOW - num(seen_at[i + 1])), n = connections }
  end
  local day = redis.call('HMGET', day_key(NOW), 'started', 'completed', 'talked_ms')
  out.today = { num(day[1]), num(day[2]), num(day[3]) }
end

-- ARGV: entry id, reason (forced, idle, call_ended).  Ends an active session only.
OPS.end_session = function()
  local e = load(arg(1))
  out.done = 0
  if e and e.st == 'a' then
    end_entry(e, arg(2))
    out.done = 1
  end
end

-- ARGV: entry id.  Takes a queued visitor out of the queue (reason "removed").
OPS.remove_queued = function()
  local e = load(arg(1))
  out.done = 0
  if e and e.st == 'q' then
    end_entry(e, 'removed')
    out.done = 1
  end
end

-- ARGV: 1 to pause admissions, 0 to resume them (whoever waits is admitted now, if slots are free).
OPS.set_paused = function()
  local paused = arg(1) == '1'
  if paused then redis.call('SET', P .. 'paused', '1') else redis.call('DEL', P .. 'paused') end
  local changed = paused ~= PAUSED
  PAUSED = paused
  if changed then
    if not paused then admit_waiting() end
    emit(config_event())
    QUEUE_CHANGED = true
  end
  out.paused = PAUSED and 1 or 0
end

-- ARGV: max users, session ms (each '' to leave it).  Current sessions keep their deadlines; a
-- raised limit admits whoever it makes room for.
OPS.change_limits = function()
  local users, session = tonumber(arg(1)), tonumber(arg(2))
  if users then
    redis.call('HSET', P .. 'limits', 'users', users)
    L.users = users
  end
  if session then
    redis.call('HSET', P .. 'limits', 'session', session)
    L.session = session
  end
  admit_waiting()
  emit(config_event())
  QUEUE_CHANGED = true
  out.cfg = config_event()
end

