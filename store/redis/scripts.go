package redis

import goredis "github.com/redis/go-redis/v9"

// Layout under the configured prefix P (one Redis database may hold
// several keyspaces, one per prefix):
//
//	P "k" K   string: the value of engine key K
//	P "z"     sorted set: every engine key K, score 0, so that
//	          ZRANGEBYLEX walks keys in bytewise order (Redis compares
//	          members with memcmp)
//	P "e"     sorted set: keys written with a TTL, scored by their expiry
//	          (ms); commits that write TTL keys also drop from P "z" the
//	          expired ones, so single-use keys do not pile up in the order
//
// The value strings and the order set are both needed: a sorted set holds
// no value besides a float score, and a Get must stay one GET. The
// alternative of one hash per table was rejected: a hash gives no order,
// so every scan would sort. Cost (measured in BENCHMARKS.md "Redis
// engine"): about 300 bytes of overhead per engine key on Redis 7.

// commitSrc applies a batch atomically: conditions first (nothing is
// written when one fails: the script returns 0), then ops in order, then
// log appends. A Lua script runs alone on the server, so no other commit
// or scan sees it half done; and since every argument is validated before
// the first write, no runtime error can stop it half way (Redis would not
// roll back the writes already made). The "#!lua" shebang makes Redis
// refuse it up front under maxmemory (OOM) rather than at its first write.
//
// ARGV: prefix, #conds, #ops, #appends, LogSizeKey, then per cond
// (key, "a"|"v", value), per op (key, "s"|"d", value, ttl ms), per append
// (data, "i"|"-", index key). Returns 1, or 0 when a condition failed.
const commitSrc = `#!lua
local p = ARGV[1]
local nc, no, na = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local z, e = p .. 'z', p .. 'e'
local i = 6
for _ = 1, nc do
  local v = redis.call('GET', p .. 'k' .. ARGV[i])
  if ARGV[i+1] == 'a' then
    if v then return 0 end
  elseif v ~= ARGV[i+2] then
    return 0
  end
  i = i + 3
end
local now, ttls = nil, 0
for _ = 1, no do
  local k = ARGV[i]
  if ARGV[i+1] == 'd' then
    redis.call('DEL', p .. 'k' .. k)
    redis.call('ZREM', z, k)
  else
    local ttl = tonumber(ARGV[i+3])
    if ttl > 0 then
      if not now then
        local t = redis.call('TIME')
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      redis.call('SET', p .. 'k' .. k, ARGV[i+2], 'PX', ttl)
      redis.call('ZADD', e, now + ttl, k)
      ttls = ttls + 1
    else
      redis.call('SET', p .. 'k' .. k, ARGV[i+2])
    end
    redis.call('ZADD', z, 0, k)
  end
  i = i + 4
end
if na > 0 then
  local function be(n)
    local b = {}
    for j = 8, 1, -1 do
      b[j] = string.char(n % 256)
      n = math.floor(n / 256)
    end
    return table.concat(b)
  end
  local sk = ARGV[5]
  local s = redis.call('GET', p .. 'k' .. sk)
  local n = 0
  if s and #s == 8 then
    for j = 1, 8 do n = n * 256 + string.byte(s, j) end
  end
  for _ = 1, na do
    local lk = 'L' .. be(n)
    redis.call('SET', p .. 'k' .. lk, ARGV[i])
    redis.call('ZADD', z, 0, lk)
    if ARGV[i+1] == 'i' then
      redis.call('SET', p .. 'k' .. ARGV[i+2], be(n))
      redis.call('ZADD', z, 0, ARGV[i+2])
    end
    n = n + 1
    i = i + 3
  end
  redis.call('SET', p .. 'k' .. sk, be(n))
  redis.call('ZADD', z, 0, sk)
end
if ttls > 0 then
  local old = redis.call('ZRANGEBYSCORE', e, '-inf', now, 'LIMIT', 0, 2 * ttls + 8)
  for _, k in ipairs(old) do
    if redis.call('EXISTS', p .. 'k' .. k) == 0 then
      redis.call('ZREM', z, k)
    end
    redis.call('ZREM', e, k)
  end
end
return 1
`

// scanSrc reads one page of a scan in one atomic step, so a page never
// shows part of a commit. ARGV: prefix, min, max (ZRANGEBYLEX syntax),
// "r" for descending, page size. Returns the number of members read, the
// last one, then key, value pairs (keys whose TTL ran out are skipped).
const scanSrc = `#!lua flags=no-writes
local p = ARGV[1]
local ks
if ARGV[4] == 'r' then
  ks = redis.call('ZREVRANGEBYLEX', p .. 'z', ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[5]))
else
  ks = redis.call('ZRANGEBYLEX', p .. 'z', ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
end
local out = {#ks, ks[#ks] or ''}
for _, k in ipairs(ks) do
  local v = redis.call('GET', p .. 'k' .. k)
  if v then
    out[#out+1] = k
    out[#out+1] = v
  end
end
return out
`

var (
	commitScript = goredis.NewScript(commitSrc)
	scanScript   = goredis.NewScript(scanSrc)
)
