-- redis_store.lua: every state change of the Redis session store, as one atomic script.
--
-- The rules are session_broker's (src/session_broker.cpp): N slots, one FIFO queue by join
-- order, warnings, expiry, abandonment, the admission grace.  Time is Redis's own TIME, so the
-- instances' clocks never decide order or deadlines.  Every key shares one hash tag (the
-- prefix, "{vb}:" by default), so the layout also works on Redis Cluster.
--
-- Called as: EVALSHA sha 1 <prefix> <op> <limits...> <instance> <keep> <defer> <op args...>
--   limits (ARGV[2..10]): max_users queue_max session_ms heartbeat_ms grace_ms warnings(csv s)
--                         channel_lease_ms retention_ms max_ended
--   ARGV[11]: the caller's instance id; ARGV[12]: 0, or how long (ms) to keep the batch as
--   <prefix>b:<seq>; ARGV[13]: 1 when the caller publishes the batch itself (below), else 0;
--   ARGV[14]: 1 when the caller's admission gate (its cost guard) holds admissions: this run
--   admits nobody (the quota pause: an instance's own);
--   ARGV[15..19]: the spend budget (shared_budget.hpp): the current day and month in
--   BUDGET_TIMEZONE ('' when none), the daily and monthly limits and COST_PER_MINUTE_USD, in
--   micro-dollars (0: off); op args start at ARGV[20].
-- The operator's pause (P paused) and limits (P limits: users, session ms) override the caller's.
-- Returns a JSON object (cjson).  What happened is one batch:
--   {"s":seq,"t":now,"by":instance,"nd":next_deadline,"qc":0|1,"ev":[...]}
-- with events {"k":"adm"|"warn"|"end"|"q+"|"call", ...}; seq grows by one per batch, so a
-- subscriber can tell that it missed one and resync.  The batch is returned as "batch", and
-- either PUBLISHed on <prefix>events at once, or (defer: durable admissions) left to the caller
-- to PUBLISH once enough replicas hold it (WAIT cannot run inside a script), so that nobody
-- hears of a change a failover could undo; a deferred batch is kept to be looked up again.
--
-- Keys (P = prefix):
--   P seq, P fence, P ev        counters: entry ids (join order), lease fencing numbers, batches
--                               (seq and ev start at Redis's clock in ms: see next_number)
--   P e:<id>                    hash: one entry (fields below)
--   P t:<ticket>                the entry id of a ticket
--   P q                         zset: the queue, score = id (FIFO by join order)
--   P a                         zset: slot holders, score = expiry
--   P d                         zset: every live entry's next deadline
--   P c:<id>                    list: the upstream calls of a session
--   P h                         zset: hang-ups to do, score = until when the instance that
--                               claimed one has it (an expired claim is taken by a survivor)
--   P ended                     zset: ended entries, oldest first (their keys expire anyway)
--   P day:<yyyy-mm-dd>          hash: today's sessions started/completed and talked ms (UTC)
--   P i                         zset: instances, score = last seen
--   P b:<seq>                   durable admissions: a batch its caller publishes after WAIT
--   P probe:<instance>          durable admissions: the write a WAIT after a reconnect waits for
--   P paused                    "1" while the operator has paused admissions
--   P limits                    hash: the operator's max users and session ms (each optional)
--   P ic                        hash: each instance's open live channels (its last touch)
--   P clock                     test only: milliseconds added to TIME
--   P spend:day:<yyyy-mm-dd>    hash: the spend of a local day in BUDGET_TIMEZONE, every instance
--   P spend:month:<yyyy-mm>     together: real, est (micro-dollars), token counts (SPEND_TOKENS),
--                               w80, w100 (the line was crossed); they expire after the period
-- Entry fields: t ticket, st q|a|e, j joined, ls last seen, cu channel alive until, s started,
--   x expires, ad admission deadline, c confirmed 0|1, wl warning offsets (s, csv, largest
--   first), w next warning, r reason, en ended, tk keys minted, l lease (fencing number), ip,
--   in the instance where it joined, then the one that admitted it, rc the real cost reported
--   for the session so far (micro-dollars).

local P = KEYS[1]
local OP = ARGV[1]
local L = {
  users = tonumber(ARGV[2]), queue = tonumber(ARGV[3]), session = tonumber(ARGV[4]),
  hb = tonumber(ARGV[5]), grace = tonumber(ARGV[6]), warnings = ARGV[7],
  lease = tonumber(ARGV[8]), retention = tonumber(ARGV[9]), max_ended = tonumber(ARGV[10]),
}
local BY = ARGV[11]
local KEEP = tonumber(ARGV[12]) or 0
local DEFER = ARGV[13] == '1'
local HOLD = ARGV[14] == '1'
local BUDGET = {
  day = ARGV[15] or '', month = ARGV[16] or '',
  daily = tonumber(ARGV[17]) or 0, monthly = tonumber(ARGV[18]) or 0, per_minute = tonumber(ARGV[19]) or 0,
}
local A0 = 19 -- op arguments: ARGV[A0 + 1], ...
local CLAIM_MS = 30000 -- an instance that claimed a hang-up has this long to report it done

local function now_ms()
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local offset = redis.call('GET', P .. 'clock')
  if offset then ms = ms + tonumber(offset) end
  return ms
end
local NOW = now_ms()

local PAUSED = redis.call('GET', P .. 'paused') == '1'
do
  local shared = redis.call('HMGET', P .. 'limits', 'users', 'session')
  if shared[1] then L.users = tonumber(shared[1]) end
  if shared[2] then L.session = tonumber(shared[2]) end
end
-- Whether this run may admit: not paused by the operator, not held by the caller's gate.
local function admitting() return not PAUSED and not HOLD end

-- ---- the spend budget (every instance's spend in one place; docs/COST.md) ----------------------
-- A period's key lives this long after its last addition: past the end of any local day (a
-- day is at most 25 h) or month, so that a period's spend stays until it is over, then vanishes.
local SPEND_KEEP = { day = 3 * 86400000, month = 40 * 86400000 }
local function spend_key(kind)
  local period = BUDGET[kind]
  if period == '' then return nil end
  return P .. 'spend:' .. kind .. ':' .. period
end
-- Micro-dollars spent in the current period of `kind`, real and estimated.
local function spent(kind)
  local key = spend_key(kind)
  if not key then return 0 end
  local v = redis.call('HMGET', key, 'real', 'est')
  return (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
end
local function at_per_minute(ms) return ms * BUDGET.per_minute / 60000 end
-- Committed: the remaining minutes of every active lease, on any instance.
local function committed()
  local left = 0
  local holders = redis.call('ZRANGE', P .. 'a', 0, -1, 'WITHSCORES')
  for i = 2, #holders, 2 do left = left + math.max(0, tonumber(holders[i]) - NOW) end
  return at_per_minute(left)
end
local function budget_on() return BUDGET.daily > 0 or BUDGET.monthly > 0 end
-- The issue's rule: spent + committed + one full session must stay within every budget that is on.
local function budget_fits()
  if not budget_on() then return true end
  local need = committed() + at_per_minute(L.session)
  if BUDGET.daily > 0 and spent('day') + need > BUDGET.daily then return false end
  if BUDGET.monthly > 0 and spent('month') + need > BUDGET.monthly then return false end
  return true
end
-- Adds spending (micro-dollars; `tokens`: counts by SPEND_TOKENS' field) to the current day and
-- month, and notes in CROSSED each 80 % or 100 % line this addition is the first to cross.
local SPEND_TOKENS = { 'ti', 'cti', 'ai', 'cai', 'ii', 'cii', 'to', 'ao' }
local CROSSED = {}
local function add_to_spend(real, est, tokens)
  for _, kind in ipairs({ 'day', 'month' }) do
    local key = spend_key(kind)
    if key then
      if real > 0 then redis.call('HINCRBY', key, 'real', real) end
      if est > 0 then redis.call('HINCRBY', key, 'est', est) end
      for i, field in ipairs(SPEND_TOKENS) do
        if (tokens[i] or 0) > 0 then redis.call('HINCRBY', key, field, tokens[i]) end
      end
      redis.call('PEXPIRE', key, SPEND_KEEP[kind])
      local limit = kind == 'day' and BUDGET.daily or BUDGET.monthly
      local total = spent(kind)
      if limit > 0 then
        for _, line in ipairs({ 80, 100 }) do
          if total * 100 >= limit * line and redis.call('HSETNX', key, 'w' .. line, 1) == 1 then
            CROSSED[#CROSSED + 1] = { m = kind == 'month' and 1 or 0, p = line }
          end
        end
      end
    end
  end
end

-- Not even one session fits with nothing running: nobody is admitted before the reset.
local function budget_exhausted()
  if not budget_on() then return false end
  local one = at_per_minute(L.session)
  return (BUDGET.daily > 0 and spent('day') + one > BUDGET.daily) or
         (BUDGET.monthly > 0 and spent('month') + one > BUDGET.monthly)
end

local EVENTS, HANG = {}, {}
local QUEUE_CHANGED = false

local function num(x) return tonumber(x) or 0 end
local function ekey(id) return P .. 'e:' .. id end

local function load(id)
  local v = redis.call('HGETALL', ekey(id))
  if #v == 0 then return nil end
  local e = { id = tonumber(id) }
  for i = 1, #v, 2 do e[v[i]] = v[i + 1] end
  return e
end

local function by_ticket(ticket)
  if not ticket or ticket == '' then return nil end
  local id = redis.call('GET', P .. 't:' .. ticket)
  if not id then return nil end
  return load(id)
end

local function warning_list(e)
  local out = {}
  for w in string.gmatch(e.wl or '', '[^,]+') do out[#out + 1] = tonumber(w) end
  return out
end

-- When the entry's visitor was last known to be there: a heartbeat, or an open channel.
local function seen(e) return math.max(num(e.ls), num(e.cu)) end

local function deadline_of(e)
  if e.st == 'e' then return nil end
  local at = seen(e) + L.hb
  if e.st == 'a' then
    at = math.min(at, num(e.x))
    local w = warning_list(e)
    local i = num(e.w) + 1
    if i <= #w then at = math.min(at, num(e.x) - w[i] * 1000) end
    if e.c ~= '1' then at = math.min(at, num(e.ad)) end
  end
  return at
end

local function reindex(e)
  local at = deadline_of(e)
  if at then redis.call('ZADD', P .. 'd', at, e.id) else redis.call('ZREM', P .. 'd', e.id) end
end

local function emit(ev) EVENTS[#EVENTS + 1] = ev end

-- The next number of a counter (entry ids, batch numbers).  A counter that does not exist (a
-- new data set, or one Redis lost: restarted without AOF, flushed, failed over to an empty
-- replica) starts at Redis's clock in ms, so that numbers are never handed out twice: an
-- instance still holding a live channel for a lost entry must never take a new entry for it,
-- and a subscriber must see the new batches as a gap (and resync), not as old news.
local function next_number(key)
  if redis.call('EXISTS', key) == 0 then redis.call('SET', key, NOW) end
  return redis.call('INCR', key)
end

local function day_key(ms)
  local days = math.floor(ms / 86400000)
  -- civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return P .. string.format('day:%04d-%02d-%02d', y, m, d)
end

local function trim_ended()
  local extra = redis.call('ZCARD', P .. 'ended') - L.max_ended
  if extra <= 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', P .. 'ended', 0, extra - 1)) do
    local t = redis.call('HGET', ekey(id), 't')
    if t then redis.call('DEL', P .. 't:' .. t) end
    redis.call('DEL', ekey(id))
  end
  redis.call('ZREMRANGEBYRANK', P .. 'ended', 0, extra - 1)
end

local admit_waiting -- forward: ending a session admits the next

local function end_entry(e, why)
  local was_active = e.st == 'a'
  if was_active then redis.call('ZREM', P .. 'a', e.id) else redis.call('ZREM', P .. 'q', e.id) end
  redis.call('ZREM', P .. 'd', e.id)
  e.st, e.r, e.en = 'e', why, NOW
  redis.call('HSET', ekey(e.id), 'st', 'e', 'r', why, 'en', NOW)
  redis.call('PEXPIRE', ekey(e.id), L.retention)
  redis.call('PEXPIRE', P .. 't:' .. e.t, L.retention)
  redis.call('ZADD', P .. 'ended', NOW, e.id)
  trim_ended()
  -- The session's calls become hang-ups, claimed by the instance running this script.
  local calls = redis.call('LRANGE', P .. 'c:' .. e.id, 0, -1)
  redis.call('DEL', P .. 'c:' .. e.id)
  for _, call in ipairs(calls) do
    redis.call('ZADD', P .. 'h', NOW + CLAIM_MS, call)
    HANG[#HANG + 1] = call
  end
  if was_active then
    -- The session's minutes at COST_PER_MINUTE_USD, less the real cost already reported for it
    -- (add_spend with its id), are spent from now on: in the same step that frees its slot, so
    -- that the next admission (below) counts them.  What OpenAI reports later is added on top.
    local rest = math.ceil(at_per_minute(NOW - num(e.s))) - num(e.rc)
    if rest > 0 then add_to_spend(0, rest, {}) end
    local day = day_key(NOW)
    redis.call('HINCRBY', day, 'completed', 1)
    redis.call('HINCRBY', day, 'talked_ms', NOW - num(e.s))
    redis.call('PEXPIRE', day, 3 * 86400000)
  end
  emit({ k = 'end', id = e.id, r = why, wa = was_active and 1 or 0, st = num(e.s) })
  QUEUE_CHANGED = true
  admit_waiting()
end

local function admit(e)
  redis.call('ZREM', P .. 'q', e.id)
  local offsets = {}
  for w in string.gmatch(L.warnings, '[^,]+') do
    local s = tonumber(w)
    if s > 0 and s * 1000 < L.session then offsets[#offsets + 1] = s end
  end
  table.sort(offsets, function(a, b) return a > b end)
  local unique = {}
  for _, s in ipairs(offsets) do if unique[#unique] ~= s then unique[#unique + 1] = s end end
  e.st, e.s, e.x, e.w = 'a', NOW, NOW + L.session, 0
  e.wl = table.concat(unique, ',')
  if num(e.cu) > NOW then e.c = '1' end -- the channel that will carry the news is open
  if e.c ~= '1' then e.c = '0' end
  e.ad = NOW + L.grace
  e.l = redis.call('INCR', P .. 'fence')
  e['in'] = BY
  redis.call('HSET', ekey(e.id), 'st', 'a', 's', e.s, 'x', e.x, 'w', 0, 'wl', e.wl, 'c', e.c, 'ad', e.ad, 'l', e.l, 'in', BY)
  redis.call('ZADD', P .. 'a', e.x, e.id)
  reindex(e)
  local day = day_key(NOW)
  redis.call('HINCRBY', day, 'started', 1)
  redis.call('PEXPIRE', day, 3 * 86400000)
  emit({ k = 'adm', id = e.id, s = e.s, x = e.x, c = tonumber(e.c), j = num(e.j), l = e.l })
end

admit_waiting = function()
  if not admitting() then return end
  local admitted = false
  while redis.call('ZCARD', P .. 'a') < L.users do
    local head = redis.call('ZRANGE', P .. 'q', 0, 0)[1]
    if not head then break end
    local e = load(head)
    if not e then
      redis.call('ZREM', P .. 'q', head)
    elseif NOW >= seen(e) + L.hb then
      -- Gone already (its deadline falls at this same instant): never admit a dead visitor.
      return end_entry(e, 'abandoned') -- admits the next one in turn
    elseif not budget_fits() then
      break -- the head waits for the budget (its reset, or a session's end)
    else
      admit(e)
      admitted = true
    end
  end
  if admitted then QUEUE_CHANGED = true end
end

-- A sign of life: the visitor is here, which also confirms a fresh admission.
local function touch(e, with_channel)
  e.ls = NOW
  redis.call('HSET', ekey(e.id), 'ls', NOW)
  if with_channel then
    e.cu = NOW + L.lease
    redis.call('HSET', ekey(e.id), 'cu', e.cu)
  end
  if e.st == 'a' and e.c ~= '1' then
    e.c = '1'
    redis.call('HSET', ekey(e.id), 'c', '1')
  end
  reindex(e)
end

-- Every deadline at or before NOW of this entry: its end, or its warnings.
local function process(e)
  if e.st == 'a' then
    if NOW >= num(e.x) then return end_entry(e, 'expired') end
    if e.c ~= '1' and NOW >= num(e.ad) then return end_entry(e, 'abandoned') end
  end
  if NOW >= seen(e) + L.hb then return end_entry(e, 'abandoned') end
  if e.st == 'a' then
    local w = warning_list(e)
    local i = num(e.w)
    while i < #w and num(e.x) - w[i + 1] * 1000 <= NOW do
      emit({ k = 'warn', id = e.id, left = w[i + 1] })
      i = i + 1
    end
    if i ~= num(e.w) then
      e.w = i
      redis.call('HSET', ekey(e.id), 'w', i)
    end
  end
  reindex(e)
end

-- Processes every due deadline (at most `cap` entries; `more` says whether some are left).
local function advance(cap)
  local done = 0
  while done < cap do
    local due = redis.call('ZRANGEBYSCORE', P .. 'd', '-inf', NOW, 'LIMIT', 0, 1)[1]
    if not due then return false end
    local e = load(due)
    if e and e.st ~= 'e' then process(e) else redis.call('ZREM', P .. 'd', due) end
    done = done + 1
  end
  return #redis.call('ZRANGEBYSCORE', P .. 'd', '-inf', NOW, 'LIMIT', 0, 1) > 0
end

-- Hang-ups whose claim ran out (the instance that had them died): this caller takes them.
local function claim_orphaned_hang_ups()
  for _, call in ipairs(redis.call('ZRANGEBYSCORE', P .. 'h', '-inf', NOW, 'LIMIT', 0, 50)) do
    redis.call('ZADD', P .. 'h', NOW + CLAIM_MS, call)
    HANG[#HANG + 1] = call
  end
end

local function status_of(e)
  local s = { id = e.id, t = e.t, st = e.st, ql = redis.call('ZCARD', P .. 'q') }
  if e.st == 'q' then
    if PAUSED then s.pd = 1 end
    s.pos = redis.call('ZRANK', P .. 'q', e.id) + 1
    s.exp = redis.call('ZRANGE', P .. 'a', 0, -1, 'WITHSCORES')
  elseif e.st == 'a' then
    s.s, s.x, s.c = num(e.s), num(e.x), tonumber(e.c)
    -- The last warning whose instant has passed by Redis's clock (largest offsets first), so that
    -- a page that missed its push (its channel was down) is told again, on any instance.
    for _, w in ipairs(warning_list(e)) do
      if s.x - w * 1000 > NOW then break end
      s.lw = w
    end
  else
    s.r = e.r
  end
  return s
end

-- The operator's rules as every instance's mirror keeps them (only what the operator set).
local function config_event()
  local shared = redis.call('HMGET', P .. 'limits', 'users', 'session')
  return { k = 'cfg', users = tonumber(shared[1]), session = tonumber(shared[2]), paused = PAUSED and 1 or 0 }
end

local function next_deadline()
  local first = redis.call('ZRANGE', P .. 'd', 0, 0, 'WITHSCORES')
  if #first == 0 then return -1 end
  return tonumber(first[2])
end

-- The operations: OPS[name] = function() ... end (redis_store_admin.lua, redis_store_operations.lua),
-- each writing its answer into `out`; redis_store_operations.lua runs the one asked for.
local function arg(i) return ARGV[A0 + i] end
local out = {}
local OPS = {}
