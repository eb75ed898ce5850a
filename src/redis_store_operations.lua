-- redis_store_operations.lua: the visitors' operations of the Redis store's script, and the
-- end of every run (the batch published, the answer encoded).  Concatenated after redis_store.lua
-- (the setup and the rules these operations use) and redis_store_admin.lua (the operator's
-- operations) into the one script that CMakeLists.txt embeds; each operation is a function of OPS.
-- ---- the visitors' operations ------------------------------------------------------------------


OPS.join = function()
  local fresh, existing, ip, answer_by = arg(1), arg(2), arg(3), tonumber(arg(4)) or 0
  local e = by_ticket(existing)
  if answer_by > 0 and NOW > answer_by then
    -- The instance gave up on this join before it ran (Redis was paused or slow, and the
    -- command sat in a socket buffer): the visitor was told 503, so nobody may be given a
    -- place or a slot for it now.
    out.what = 'late'
  elseif e and e.st ~= 'e' then
    touch(e, false) -- asking again is a sign of life
    out.what, out.status = 'existing', status_of(e)
  elseif budget_exhausted() then
    out.what = 'budget' -- no place: nobody is admitted before the reset (503 budget_exhausted)
  else
    local slot_free = admitting() and redis.call('ZCARD', P .. 'a') < L.users and redis.call('ZCARD', P .. 'q') == 0
      and budget_fits()
    if not slot_free and redis.call('ZCARD', P .. 'q') >= L.queue then
      out.what = 'full'
    else
      local id = next_number(P .. 'seq')
      redis.call('HSET', ekey(id), 't', fresh, 'st', 'q', 'j', NOW, 'ls', NOW, 'cu', 0, 'tk', 0, 'c', 0, 'ip', ip, 'in', BY)
      redis.call('SET', P .. 't:' .. fresh, id)
      e = load(id)
      if slot_free then
        e.c = '1' -- the visitor is here: this very request proves it
        redis.call('HSET', ekey(id), 'c', '1')
        admit(e)
      else
        redis.call('ZADD', P .. 'q', id, id)
        reindex(e)
        emit({ k = 'q+', id = id, j = NOW }) -- appending moves nobody: no queue_changed
      end
      out.what, out.status = 'joined', status_of(e)
    end
  end
end

OPS.status = function()
  local e = by_ticket(arg(1))
  if e then out.status = status_of(e) end
end

OPS.heartbeat = function()
  local e = by_ticket(arg(1))
  if e and e.st ~= 'e' then touch(e, false) end
  if e then out.status = status_of(e) end
end

OPS.leave = function()
  local e = by_ticket(arg(1))
  if e and e.st ~= 'e' then end_entry(e, 'left') end
  if e then out.status = status_of(e) end
end

OPS.force_end_all = function()
  local holders = redis.call('ZRANGE', P .. 'a', 0, -1)
  local ended = 0
  for _, id in ipairs(holders) do
    local e = load(id)
    if e and e.st == 'a' then
      end_entry(e, 'forced')
      ended = ended + 1
    end
  end
  out.ended = ended
end

OPS.reserve_token = function()
  local e, max = by_ticket(arg(1)), tonumber(arg(2))
  if not e then
    out.what = 'unknown'
  elseif e.st ~= 'a' or NOW >= num(e.x) then
    out.what = 'not_active'
  elseif num(e.tk) >= max then
    out.what = 'limit'
  else
    redis.call('HINCRBY', ekey(e.id), 'tk', 1)
    touch(e, false) -- minting proves presence
    out.what, out.status = 'reserved', status_of(e)
  end
end

OPS.record_call = function()
  local e, call, max = load(arg(1)), arg(2), tonumber(arg(3))
  if not e or e.st ~= 'a' or NOW >= num(e.x) then
    out.what = 'not_active'
  else
    local calls = redis.call('LRANGE', P .. 'c:' .. e.id, 0, -1)
    local known = false
    for _, c in ipairs(calls) do if c == call then known = true end end
    if known then
      out.what = 'recorded'
    elseif #calls >= max then
      out.what = 'limit'
    else
      redis.call('RPUSH', P .. 'c:' .. e.id, call)
      emit({ k = 'call', id = e.id, call = call, x = num(e.x) })
      out.what = 'recorded'
    end
  end
end

OPS.channel_open = function()
  local e = by_ticket(arg(1))
  if not e then
    out.what = 'unknown'
  else
    if e.st ~= 'e' then touch(e, true) end
    out.what = e.st == 'e' and 'ended' or 'opened'
    out.status = status_of(e)
  end
end

OPS.channel_close = function()
  local e = load(arg(1))
  if e and e.st ~= 'e' then
    -- The heartbeat timeout runs from now; another instance's channel renews it on its touch.
    e.ls, e.cu = NOW, NOW
    redis.call('HSET', ekey(e.id), 'ls', NOW, 'cu', NOW)
    reindex(e)
  end
end

OPS.touch = function()
  -- This instance's open channels: each is a sign of life until the lease runs out.
  local i = 1
  while arg(i) do
    local e = load(arg(i))
    if e and e.st ~= 'e' then touch(e, true) end
    i = i + 1
  end
  redis.call('ZADD', P .. 'i', NOW, BY)
  redis.call('HSET', P .. 'ic', BY, i - 1)
end

OPS.channel_heartbeat = function()
  local e = load(arg(1))
  if e and e.st ~= 'e' then touch(e, false) end
end

OPS.advance = function()
  out.more = advance(200)
  admit_waiting() -- after a pause, a held gate or a raised limit: whoever can be admitted now
  claim_orphaned_hang_ups()
  redis.call('ZADD', P .. 'i', NOW, BY)
end

-- Adds spending to the current day and month (args: real and estimated micro-dollars, the token
-- counts in SPEND_TOKENS' order, and the entry id the real cost belongs to, or '').  The real
-- cost is also noted on a live entry, so that its end charges only the rest of its estimate.
OPS.add_spend = function()
  local real, est = math.max(0, tonumber(arg(1)) or 0), math.max(0, tonumber(arg(2)) or 0)
  local tokens = {}
  for i = 1, #SPEND_TOKENS do tokens[i] = math.max(0, tonumber(arg(2 + i)) or 0) end
  add_to_spend(real, est, tokens)
  local e = load(arg(3 + #SPEND_TOKENS) or '')
  if e and e.st ~= 'e' and real > 0 then redis.call('HINCRBY', ekey(e.id), 'rc', real) end
end

OPS.hangup_done = function()
  redis.call('ZREM', P .. 'h', arg(1))
end

OPS.statuses = function()
  out.statuses = {}
  local i = 1
  while arg(i) do
    local e = load(arg(i))
    if e then out.statuses[#out.statuses + 1] = status_of(e) end
    i = i + 1
  end
end

OPS.stats = function()
  out.active = redis.call('ZRANGE', P .. 'a', 0, -1, 'WITHSCORES')
  out.starts = {}
  for i = 1, #out.active, 2 do out.starts[#out.starts + 1] = num(redis.call('HGET', ekey(out.active[i]), 's')) end
  out.queued = redis.call('ZCARD', P .. 'q')
  local day = redis.call('HMGET', day_key(NOW), 'started', 'completed', 'talked_ms')
  out.today = { num(day[1]), num(day[2]), num(day[3]) }
  out.instances = redis.call('ZRANGEBYSCORE', P .. 'i', NOW - 15000, '+inf')
end

OPS.snapshot = function()
  -- The mirror's state, the holders' calls, and which of the leases the caller knows (its
  -- arguments) no longer exist at all (Redis lost them: the caller still ends them on time).
  if redis.call('EXISTS', P .. 'ev') == 0 then redis.call('SET', P .. 'ev', NOW) end -- see next_number
  out.seq = tonumber(redis.call('GET', P .. 'ev'))
  out.queue = redis.call('ZRANGE', P .. 'q', 0, -1)
  out.active = redis.call('ZRANGE', P .. 'a', 0, -1, 'WITHSCORES')
  out.starts, out.calls, out.gone = {}, {}, {}
  out.cfg = config_event()
  for i = 1, #out.active, 2 do
    out.starts[#out.starts + 1] = num(redis.call('HGET', ekey(out.active[i]), 's'))
    out.calls[#out.calls + 1] = redis.call('LRANGE', P .. 'c:' .. out.active[i], 0, -1)
  end
  local i = 1
  while arg(i) do
    if redis.call('EXISTS', ekey(arg(i))) == 0 then out.gone[#out.gone + 1] = arg(i) end
    i = i + 1
  end
end

-- ---- every run ends here ------------------------------------------------------------------------

local operation = OPS[OP]
if not operation then
  return redis.error_reply('unknown operation ' .. tostring(OP))
end
operation()

if #EVENTS > 0 then
  local batch = { s = next_number(P .. 'ev'), t = NOW, by = BY, nd = next_deadline(),
                  qc = QUEUE_CHANGED and 1 or 0, ev = EVENTS }
  local text = cjson.encode(batch)
  if KEEP > 0 then redis.call('SET', P .. 'b:' .. batch.s, text, 'PX', KEEP) end
  if not DEFER then redis.call('PUBLISH', P .. 'events', text) end
  out.seq = batch.s
  out.batch = batch
end
out.now = NOW
out.nd = next_deadline()
if #CROSSED > 0 then out.crossed = CROSSED end
if spend_key('day') or spend_key('month') then
  -- The shared spend, read after the operation (an add_spend included): every instance's stats
  -- and its refusals of new visitors show what all of them spent.
  out.sp = { dp = BUDGET.day, mp = BUDGET.month,
             d = spend_key('day') and redis.call('HGETALL', spend_key('day')) or {},
             m = spend_key('month') and redis.call('HGETALL', spend_key('month')) or {} }
end
if #HANG > 0 then out.hang = HANG end
return cjson.encode(out)
