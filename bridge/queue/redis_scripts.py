"""The Lua scripts of the Redis queue: each queue operation is one script, so it is atomic across replicas.

Every script gets the key prefix `P` (already ending in `:q`) as ARGV[1] and derives its keys from it (see
`bridge.queue.redis` for the layout). A lane is named `direction|chat_id|channel_id` and its channel key
`direction|channel_id`: the channel comes last so it may itself contain `|`.
"""

from __future__ import annotations

__all__ = ["ACK", "CLAIM", "DEAD_LETTER", "DROP", "EXTEND", "PUT", "REPLAY", "RETRY"]

# Shared by the scripts that remove a lane's head: release the lane, and forget it when it is empty.
# Also removes this consumer from the lane's group (it holds nothing there any more), so a lane's group
# never collects the names of replicas that are gone.
_RELEASE = """
local function release(P, lane, ch, me, now)
  local s = P .. ':l:' .. lane
  redis.call('HDEL', P .. ':lease', lane)
  redis.call('HDEL', P .. ':err', lane)
  if redis.call('HINCRBY', P .. ':n', ch, -1) <= 0 then redis.call('HDEL', P .. ':n', ch) end
  local head = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)
  if #head == 0 then
    redis.call('DEL', s)
    redis.call('ZREM', P .. ':ready', lane)
    redis.call('ZREM', P .. ':heads:' .. ch, lane)
    return
  end
  redis.call('XGROUP', 'DELCONSUMER', s, 'g', me)
  redis.call('ZADD', P .. ':ready', now, lane)
  local fields = head[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' then redis.call('ZADD', P .. ':heads:' .. ch, fields[i + 1], lane) end
  end
end

local function enqueue(P, lane, ch, key, body, now)
  local s = P .. ':l:' .. lane
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, 'g', '0', 'MKSTREAM')
    redis.call('ZADD', P .. ':ready', now, lane)
    redis.call('ZADD', P .. ':heads:' .. ch, now, lane)
  end
  redis.call('XADD', s, '*', 'd', key, 'b', body, 't', now)
  redis.call('HINCRBY', P .. ':n', ch, 1)
end
"""

# ARGV: P, now, dedupe ttl (ms), then per item: lane, channel key, dedupe marker suffix, dedupe key, body.
PUT = (
    _RELEASE
    + """
local P, now, ttl = ARGV[1], ARGV[2], ARGV[3]
local stored = 0
for i = 4, #ARGV, 5 do
  if redis.call('SET', P .. ':dd:' .. ARGV[i + 2], '1', 'NX', 'PX', ttl) then
    enqueue(P, ARGV[i], ARGV[i + 1], ARGV[i + 3], ARGV[i + 4], now)
    stored = stored + 1
  end
end
return stored
"""
)

# ARGV: P, now, lease end, consumer, token.
# Returns false, or {lane, entry id, fields, attempts, last error}.
# The lane's group holds at most one pending entry: its head, read earlier and not yet acked (a retry, or a
# claimer that died). It is taken over with XAUTOCLAIM before anything new is read, which keeps the order.
CLAIM = """
local P, now, until_, me, token = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ready = P .. ':ready'
for _ = 1, 32 do
  local lanes = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, 1)
  if #lanes == 0 then return false end
  local lane = lanes[1]
  local s = P .. ':l:' .. lane
  local entry, attempts = nil, 1
  local pending = redis.call('XPENDING', s, 'g', '-', '+', 1)
  if #pending > 0 then
    local claimed = redis.call('XAUTOCLAIM', s, 'g', me, 0, '0-0', 'COUNT', 1)
    if #claimed[2] > 0 then
      entry = claimed[2][1]
      attempts = pending[1][4] + 1
      if pending[1][2] ~= me then redis.call('XGROUP', 'DELCONSUMER', s, 'g', pending[1][2]) end
    else
      redis.call('XACK', s, 'g', pending[1][1])
    end
  end
  if not entry then
    local read = redis.call('XREADGROUP', 'GROUP', 'g', me, 'COUNT', 1, 'STREAMS', s, '>')
    if read and #read > 0 and #read[1][2] > 0 then entry = read[1][2][1] end
  end
  if entry then
    redis.call('ZADD', ready, until_, lane)
    redis.call('HSET', P .. ':lease', lane, token)
    return {lane, entry[1], entry[2], attempts, redis.call('HGET', P .. ':err', lane) or ''}
  end
  -- A lane without items (cannot happen while the invariants hold): forget it.
  redis.call('ZREM', ready, lane)
  redis.call('DEL', s)
end
return false
"""

# ARGV: P, lane, token, lease end.
EXTEND = """
local P = ARGV[1]
if redis.call('HGET', P .. ':lease', ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('ZADD', P .. ':ready', 'XX', ARGV[4], ARGV[2])
return 1
"""

# ARGV: P, lane, channel key, entry id, token, consumer, now.
ACK = (
    _RELEASE
    + """
local P, lane, ch, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', P .. ':lease', lane) ~= ARGV[5] then return 0 end
local s = P .. ':l:' .. lane
redis.call('XACK', s, 'g', id)
redis.call('XDEL', s, id)
release(P, lane, ch, ARGV[6], ARGV[7])
return 1
"""
)

# ARGV: P, lane, token, due, reason. The head stays pending in the group until the lane is claimed again.
RETRY = """
local P, lane = ARGV[1], ARGV[2]
if redis.call('HGET', P .. ':lease', lane) ~= ARGV[3] then return 0 end
redis.call('ZADD', P .. ':ready', ARGV[4], lane)
redis.call('HDEL', P .. ':lease', lane)
redis.call('HSET', P .. ':err', lane, ARGV[5])
return 1
"""

# ARGV: P, lane, channel key, entry id, token, consumer, now, attempts, reason.
DEAD_LETTER = (
    _RELEASE
    + """
local P, lane, ch, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', P .. ':lease', lane) ~= ARGV[5] then return 0 end
local s = P .. ':l:' .. lane
local entry = redis.call('XRANGE', s, id, id)
if #entry > 0 then
  local f = {}
  local fields = entry[1][2]
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  redis.call('XADD', P .. ':dead', '*', 'lane', lane, 'ch', ch, 'd', f['d'], 'b', f['b'], 't', f['t'],
    'a', ARGV[8], 'r', ARGV[9], 'x', ARGV[7])
  redis.call('HINCRBY', P .. ':deadn', ch, 1)
end
redis.call('XACK', s, 'g', id)
redis.call('XDEL', s, id)
release(P, lane, ch, ARGV[6], ARGV[7])
return 1
"""
)

# ARGV: P, now, dead-letter ids in the order to re-queue them. Returns the ids replayed.
REPLAY = (
    _RELEASE
    + """
local P, now = ARGV[1], ARGV[2]
local done = {}
for i = 3, #ARGV do
  local entry = redis.call('XRANGE', P .. ':dead', ARGV[i], ARGV[i])
  if #entry > 0 then
    local f = {}
    local fields = entry[1][2]
    for j = 1, #fields, 2 do f[fields[j]] = fields[j + 1] end
    enqueue(P, f['lane'], f['ch'], f['d'], f['b'], now)
    redis.call('XDEL', P .. ':dead', ARGV[i])
    if redis.call('HINCRBY', P .. ':deadn', f['ch'], -1) <= 0 then redis.call('HDEL', P .. ':deadn', f['ch']) end
    done[#done + 1] = ARGV[i]
  end
end
return done
"""
)

# ARGV: P, dead-letter ids. Returns the ids dropped.
DROP = """
local P = ARGV[1]
local done = {}
for i = 2, #ARGV do
  local entry = redis.call('XRANGE', P .. ':dead', ARGV[i], ARGV[i])
  if #entry > 0 then
    local fields = entry[1][2]
    for j = 1, #fields, 2 do
      if fields[j] == 'ch' then
        if redis.call('HINCRBY', P .. ':deadn', fields[j + 1], -1) <= 0 then
          redis.call('HDEL', P .. ':deadn', fields[j + 1])
        end
      end
    end
    redis.call('XDEL', P .. ':dead', ARGV[i])
    done[#done + 1] = ARGV[i]
  end
end
return done
"""
