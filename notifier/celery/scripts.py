"""The Lua scripts that change the shared state, each one atomic in Redis.

Times cross the boundary as text: Redis turns a Lua number it returns into an integer,
which would cut a wait of 0.4 s to nothing.
"""

from __future__ import annotations

#: Sliding window: drop starts older than the window, then either take a slot (member
#: ARGV[4], at the server's own time) and answer "0", or answer the seconds to wait.
#: KEYS: starts (sorted set), blocked-until. ARGV: window, count, member, block.
WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
if tonumber(ARGV[4]) > 0 then
  local until_ = now + tonumber(ARGV[4])
  local old = tonumber(redis.call('GET', KEYS[2]) or '0')
  if until_ > old then
    redis.call('SET', KEYS[2], tostring(until_), 'PX', math.ceil(tonumber(ARGV[4]) * 1000) + 1000)
  end
  return '0'
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local wait = 0
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then wait = blocked - now end
if redis.call('ZCARD', KEYS[1]) >= count then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2])
  wait = math.max(wait, oldest + window - now)
end
if wait > 0 or ARGV[3] == '' then return tostring(wait) end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return '0'
"""

#: A new delivery of one alert on one channel: its place in the alert's order, and until
#: when it counts as alive without a sign of its task (see BEGIN).
#: KEYS: sequence counter, the alert's order (sorted set), counts, channel names, marks.
#: ARGV: keep seconds, channel, alive until.
ENQUEUE = """
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq)
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[5], seq, ARGV[3])
redis.call('EXPIRE', KEYS[5], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'queued', 1)
redis.call('SADD', KEYS[4], ARGV[2])
return seq
"""

#: Undo ENQUEUE for a task the broker did not take. KEYS: order, counts, marks, jobs,
#: watch. ARGV: seq, job id.
UNQUEUE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'queued', -1)
end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
return 1
"""

#: May this delivery run now? "done" (finished before: a repeat), "wait" with seconds
#: (an earlier delivery of the same alert, or another worker holding it, goes first), or
#: "go" with the claim taken for ARGV[3] milliseconds, and with it what the next steps
#: read, saving them a round trip each: when the alert was last sent firing and resolved
#: (for dedup) and the channel's circuit (closed, or not).
#: Each delivery's mark says until when it counts as alive (renewed whenever its task
#: runs), or that it is done. An earlier delivery not seen alive by then (its producer
#: died between ENQUEUE and publishing the task) stops holding the later ones back; if
#: its task turns up after all, it is delivered then, out of order rather than never.
#: One whose task was lost but whose job is kept (KEYS[7]) is sent again by a worker's
#: sweep (REVIVE) and is waited for.
#: KEYS: order, claim, sent, breaker, marks, counts, jobs, watch.
#: ARGV: seq, token, lease ms, now, alive until, the alert's key.
BEGIN = """
local mark = redis.call('HGET', KEYS[5], ARGV[1])
local listed = redis.call('ZSCORE', KEYS[1], ARGV[1])
if mark == 'done' or (not mark and not listed) then return {'done', '0'} end
if listed then
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[5])
  redis.call('ZADD', KEYS[8], 'XX', ARGV[5], ARGV[6] .. ':' .. ARGV[1])
  local now = tonumber(ARGV[4])
  while true do
    local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
    if first == ARGV[1] then break end
    local alive = redis.call('HGET', KEYS[5], first)
    if alive and tonumber(alive) and tonumber(alive) >= now then return {'wait', '0.5'} end
    if redis.call('HEXISTS', KEYS[7], ARGV[6] .. ':' .. first) == 1 then
      return {'wait', '1'}
    end
    redis.call('ZREM', KEYS[1], first)
    redis.call('HSET', KEYS[5], first, 'skipped')
    redis.call('HINCRBY', KEYS[6], 'queued', -1)
  end
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then
  return {'wait', tostring(math.max(redis.call('PTTL', KEYS[2]), 100) / 1000)}
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
local sent = redis.call('HMGET', KEYS[3], 'firing', 'resolved')
local breaker = redis.call('HMGET', KEYS[4], 'circuit', 'failures')
return {'go', '0', sent[1] or '', sent[2] or '', breaker[1] or 'closed', breaker[2] or '0'}
"""

#: The claim given back without finishing (a wait): the delivery is alive until ARGV[3].
#: KEYS: claim, marks, watch. ARGV: token, seq, alive until, job id.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
local mark = redis.call('HGET', KEYS[2], ARGV[2])
if mark and mark ~= 'done' and mark ~= 'skipped' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[3], 'XX', ARGV[3], ARGV[4])
end
return 1
"""

#: Finished: delivered (ARGV[3] "delivered", recording when ARGV[4] was sent), a duplicate
#: ("deduplicated") or a dead letter ("dead", ARGV[6] its record). Leaves the alert's order,
#: gives back the claim, moves the counts. A repeat of a finished delivery changes nothing.
#: KEYS: order, claim, sent, counts, dead letters, dead index, dead counter, marks, jobs,
#: watch. ARGV: seq, token, outcome, status, now, record, keep-sent seconds, retrying,
#: job id.
FINISH = """
if redis.call('HGET', KEYS[8], ARGV[1]) == 'done' then return 0 end
redis.call('HSET', KEYS[8], ARGV[1], 'done')
redis.call('HDEL', KEYS[9], ARGV[9])
redis.call('ZREM', KEYS[10], ARGV[9])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[4], ARGV[8] == '1' and 'retry' or 'queued', -1)
end
if ARGV[3] == 'delivered' then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
  redis.call('EXPIRE', KEYS[3], ARGV[7])
elseif ARGV[3] == 'dead' then
  local id = redis.call('INCR', KEYS[7])
  redis.call('HSET', KEYS[5], id, ARGV[6])
  redis.call('ZADD', KEYS[6], id, id)
  redis.call('HINCRBY', KEYS[4], 'dead', 1)
  return id
end
return 1
"""

#: A retryable failure: counted as waiting for a retry, the claim given back, alive until
#: its retry is due and some; the delivery keeps its place in the alert's order.
#: The retry's job replaces the kept one. KEYS: claim, counts, marks, jobs, watch.
#: ARGV: token, retrying (already counted as in retry), seq, alive until, job id, job.
TO_RETRY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '1' then
  redis.call('HINCRBY', KEYS[2], 'queued', -1)
  redis.call('HINCRBY', KEYS[2], 'retry', 1)
end
local mark = redis.call('HGET', KEYS[3], ARGV[3])
if mark ~= 'done' and mark ~= 'skipped' then
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[6])
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[5])
end
return 1
"""

#: Keep a queued delivery's job, so that a task the broker loses is sent again.
#: KEYS: jobs, watch, marks. ARGV: job id, job, alive until, seq.
KEEP = """
local mark = redis.call('HGET', KEYS[3], ARGV[4])
if mark == 'done' or mark == 'skipped' then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

#: The jobs of queued deliveries no task has shown for too long (the broker lost it):
#: up to ARGV[3] of them, each watched again until ARGV[2] so one sweep sends it.
#: KEYS: watch, jobs. ARGV: now, alive until, limit.
REVIVE = """
local lost = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local jobs = {}
for _, id in ipairs(lost) do
  local job = redis.call('HGET', KEYS[2], id)
  if job then
    redis.call('ZADD', KEYS[1], ARGV[2], id)
    table.insert(jobs, job)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return jobs
"""

#: The circuit breaker of :class:`notifier.outbox.policy.CircuitBreaker`, shared.
#: ADMIT: 0 when a delivery may be tried now (closed; or cooled down and this caller
#: holds the one probe for ARGV[3] seconds), else the seconds until one may.
#: KEYS: breaker. ARGV: now, threshold, probe lease.
ADMIT = """
if tonumber(ARGV[2]) == 0 then return '0' end
local circuit = redis.call('HGET', KEYS[1], 'circuit')
if not circuit or circuit == 'closed' then return '0' end
local now = tonumber(ARGV[1])
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if circuit == 'open' and now < open_until then return tostring(open_until - now) end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if probe > now then return tostring(probe - now) end
local probe_until = tostring(now + tonumber(ARGV[3]))
redis.call('HSET', KEYS[1], 'circuit', 'half_open', 'probe_until', probe_until)
return '0'
"""

#: A retryable failure: CircuitBreaker.on_failure. KEYS: breaker. ARGV: now, threshold,
#: cooldown.
TRIPPED = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local circuit = redis.call('HGET', KEYS[1], 'circuit') or 'closed'
local threshold = tonumber(ARGV[2])
if threshold > 0 and (circuit ~= 'closed' or failures >= threshold) then
  redis.call('HSET', KEYS[1], 'circuit', 'open',
             'open_until', tostring(tonumber(ARGV[1]) + tonumber(ARGV[3])), 'probe_until', '0')
end
return failures
"""

#: Hand a token over: the cached one with its remaining milliseconds, or, when there is
#: none, the fetch lock to this caller ("lead") or to another ("wait").
#: KEYS: token, lock. ARGV: caller id, lock ms.
GRANT = """
local token = redis.call('GET', KEYS[1])
if token then return {'token', token, redis.call('PTTL', KEYS[1])} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'lead', '', 0} end
return {'wait', '', redis.call('PTTL', KEYS[2])}
"""

#: Store the fetched token and give back the lock. KEYS: token, lock. ARGV: token, ms,
#: caller id.
HAND_OVER = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
"""

#: Compare and delete: KEYS[1] if it still holds ARGV[1].
DROP_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

#: A dead letter back into the queue: taken out of the dead letters and given a new place
#: in its alert's order. KEYS: dead letters, dead index, counts, sequence counter, order,
#: marks. ARGV: id, keep seconds, alive until. Answers the new sequence number, or 0 for
#: no such dead letter.
RETRY_DEAD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[3], 'dead', -1)
redis.call('HINCRBY', KEYS[3], 'queued', 1)
local seq = redis.call('INCR', KEYS[4])
redis.call('ZADD', KEYS[5], seq, seq)
redis.call('EXPIRE', KEYS[5], ARGV[2])
redis.call('HSET', KEYS[6], seq, ARGV[3])
redis.call('EXPIRE', KEYS[6], ARGV[2])
return seq
"""
