package redis

import goredis "github.com/redis/go-redis/v9"

// Layout 2 under the configured prefix P (one Redis database may hold
// several keyspaces, one per prefix):
//
//	P "f"     string: the layout version, "2" (layoutVersion)
//	P "k" K   string: the value of engine key K, when it is not empty or
//	          was written with a TTL; a key whose value is empty has no
//	          string (see below)
//	P "o"     sorted set: every present engine key K, score 0, so that
//	          ZRANGEBYLEX walks keys in bytewise order (Redis compares
//	          members with memcmp)
//	P "e"     sorted set: keys written with a TTL, scored by their expiry
//	          (ms); commits that write TTL keys also drop from the order
//	          set the expired ones, so single-use keys do not pile up
//
// A key K is present when it is a member of P "o", and then its value is
// the string P "k" K if there is one, else the empty string unless K is
// in P "e" (a TTL key that Redis has expired: absent). Most keys a create
// writes have an empty value (its 15 index keys and its type history key,
// 16 of 21), and they cost only their member: no string, no entry in the
// keyspace's dict, no SET in the AOF. Invariants the scripts keep: a
// string implies a member (so a ZADD that adds a new member knows there is
// no string to delete), and a key in P "e" is a member (deletes drop both).
//
// Layout 1 (until 2026-12-07) kept a string for every key and the order
// set under P "z"; Open migrates such a keyspace in place (checkLayout,
// migrateSrc).
//
// The value strings and the order set are both needed: a sorted set holds
// no value besides a float score (and ZRANGEBYLEX needs every score
// equal), and a Get must stay one GET.
//
// One order set, not one per key class: measured (BENCHMARKS.md §8,
// "Layout 2"), sets per table tag and resource type (or per tag, or per
// tag, type and parameter) made a create cost Redis more CPU than one set
// (medians of 180-223 against 142-185 µs in three sessions), because each
// set is one more command in the script (a create writes 7 classes) and
// a command's fixed cost (its arguments, lookup and AOF propagation) is
// larger than the skip-list levels and compared bytes a smaller set
// saves at these sizes.

// commitSrc applies a batch atomically: conditions first (nothing is
// written when one fails: the script returns 0), then ops in order, then
// log appends. A Lua script runs alone on the server, so no other commit
// or scan sees it half done; and since every argument is validated before
// the first write, no runtime error can stop it half way (Redis would not
// roll back the writes already made). The "#!lua" shebang makes Redis
// refuse it up front under maxmemory (OOM) rather than at its first write.
//
// Each command a script calls costs Redis a fixed overhead (argument
// objects, command lookup, its propagation to the AOF) besides its work
// per key, so the script first works out the final state of every key
// the batch writes (the last op on a key wins; appends come after ops),
// then writes it with as few commands as it can: one MSET for the values,
// one ZADD for the members, one DEL for the deletes, each cut in chunks
// of at most 512 keys (Lua's unpack has a stack limit, and a batch may
// hold DefaultLimits.MaxOps ops). A create is 4 commands (the condition's
// ZSCORE, the log size's GET, MSET, ZADD) where layout 1 ran 44.
//
// ARGV: prefix, #conds, #ops, #appends, LogSizeKey, #checks, then per
// cond (key, "a"|"v", value), per op (key, "s"|"d", value, ttl ms), per
// append (data, "i"|"-", index key), per check (key, "a"|"v", value).
// Returns 1, or 0 when a condition failed, or, when some checks did not
// hold (read before the writes), the array of their indexes (from 0).
const commitSrc = `#!lua
local p = ARGV[1]
local nc, no, na, nk = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[6])
local o, e = p .. 'o', p .. 'e'
local chunk = 512
-- cmd [key] list...: the command on list, chunk elements of step items
-- per call; the sum of the replies.
local function each(cmd, key, list, step)
  local n = 0
  for lo = 1, #list, chunk * step do
    local args = {}
    if key then args[1] = key end
    for j = lo, math.min(lo + chunk * step - 1, #list) do args[#args+1] = list[j] end
    local r = redis.call(cmd, unpack(args))
    if type(r) == 'number' then n = n + r end
  end
  return n
end
local hasE
local function ttls()
  if hasE == nil then hasE = redis.call('EXISTS', e) == 1 end
  return hasE
end
-- whether k is present, and its value (see the layout).
local function get(k, wantValue)
  if not wantValue then
    -- a member that has no string and is in P "e" has expired
    if not redis.call('ZSCORE', o, k) then return false end
    if not ttls() or not redis.call('ZSCORE', e, k) then return true end
  end
  local v = redis.call('GET', p .. 'k' .. k)
  if v then return v end
  if redis.call('ZSCORE', o, k) and not (ttls() and redis.call('ZSCORE', e, k)) then
    return ''
  end
  return false
end
local i = 7
for _ = 1, nc do
  if ARGV[i+1] == 'a' then
    if get(ARGV[i], false) then return 0 end
  elseif get(ARGV[i], true) ~= ARGV[i+2] then
    return 0
  end
  i = i + 3
end
local stale = {}
if nk > 0 then
  local c = i + 4 * no + 3 * na
  for j = 0, nk - 1 do
    local v
    if ARGV[c+1] == 'a' then v = get(ARGV[c], false) else v = get(ARGV[c], true) ~= ARGV[c+2] end
    if v then stale[#stale+1] = j end
    c = c + 3
  end
end
-- the final state of every key written: {value or false, ttl ms}
local order, st = {}, {}
local function note(k, v, ttl)
  if st[k] == nil then order[#order+1] = k end
  st[k] = {v, ttl}
end
for _ = 1, no do
  if ARGV[i+1] == 'd' then
    note(ARGV[i], false, 0)
  else
    note(ARGV[i], ARGV[i+2], tonumber(ARGV[i+3]))
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
  local s
  if st[sk] then s = st[sk][1] else s = redis.call('GET', p .. 'k' .. sk) end
  local n = 0
  if s and #s == 8 then
    for j = 1, 8 do n = n * 256 + string.byte(s, j) end
  end
  for _ = 1, na do
    note('L' .. be(n), ARGV[i], 0)
    if ARGV[i+1] == 'i' then
      note(ARGV[i+2], be(n), 0)
    end
    n = n + 1
    i = i + 3
  end
  note(sk, be(n), 0)
end
-- members with a string, members without (empty values), deletes
local full, empty, sets, dels, gone, ettl = {}, {}, {}, {}, {}, {}
local now
for _, k in ipairs(order) do
  local v, ttl = st[k][1], st[k][2]
  if v == false then
    dels[#dels+1] = p .. 'k' .. k
    gone[#gone+1] = k
  elseif ttl > 0 then
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    redis.call('SET', p .. 'k' .. k, v, 'PX', ttl)
    full[#full+1] = '0'
    full[#full+1] = k
    ettl[#ettl+1] = now + ttl
    ettl[#ettl+1] = k
  elseif v == '' then
    empty[#empty+1] = '0'
    empty[#empty+1] = k
  else
    sets[#sets+1] = p .. 'k' .. k
    sets[#sets+1] = v
    full[#full+1] = '0'
    full[#full+1] = k
  end
end
if #sets > 0 then each('MSET', nil, sets, 2) end
if #gone > 0 then
  each('DEL', nil, dels, 1)
  each('ZREM', o, gone, 1)
  if ttls() then each('ZREM', e, gone, 1) end
end
if #full > 0 then each('ZADD', o, full, 2) end
if #empty > 0 and each('ZADD', o, empty, 2) < #empty / 2 then
  -- Some were present (a new member has no string and no TTL entry, by
  -- the invariants): drop their strings, and their TTL entries, or a key
  -- with no string would read as expired.
  local ks, ms = {}, {}
  for j = 2, #empty, 2 do
    ks[#ks+1] = p .. 'k' .. empty[j]
    ms[#ms+1] = empty[j]
  end
  each('DEL', nil, ks, 1)
  if ttls() then each('ZREM', e, ms, 1) end
end
if #ettl > 0 then
  each('ZADD', e, ettl, 2)
  local old = redis.call('ZRANGEBYSCORE', e, '-inf', now, 'LIMIT', 0, #ettl + 8)
  for _, k in ipairs(old) do
    if redis.call('EXISTS', p .. 'k' .. k) == 0 then
      redis.call('ZREM', o, k)
    end
    redis.call('ZREM', e, k)
  end
end
if #stale > 0 then return stale end
return 1
`

// scanSrc reads one page of a scan in one atomic step, so a page never
// shows part of a commit: the page's members, then their values with one
// MGET, and for the keys without a string one look in P "e" (an expired
// TTL key is skipped; any other is present with an empty value). ARGV:
// prefix, min, max (ZRANGEBYLEX syntax), "r" for descending, page size.
// Returns the number of members read, the last one, then key, value
// pairs.
const scanSrc = `#!lua flags=no-writes
local p = ARGV[1]
local ks
if ARGV[4] == 'r' then
  ks = redis.call('ZREVRANGEBYLEX', p .. 'o', ARGV[3], ARGV[2], 'LIMIT', 0, tonumber(ARGV[5]))
else
  ks = redis.call('ZRANGEBYLEX', p .. 'o', ARGV[2], ARGV[3], 'LIMIT', 0, tonumber(ARGV[5]))
end
local out = {#ks, ks[#ks] or ''}
if #ks == 0 then return out end
local names = {}
for j, k in ipairs(ks) do names[j] = p .. 'k' .. k end
local vs = redis.call('MGET', unpack(names))
local ttl = redis.call('EXISTS', p .. 'e') == 1
for j, k in ipairs(ks) do
  local v = vs[j]
  if not v and not (ttl and redis.call('ZSCORE', p .. 'e', k)) then v = '' end
  if v then
    out[#out+1] = k
    out[#out+1] = v
  end
end
return out
`

// getSrc reads keys at one instant, for the keys a GET or MGET found
// without a string (absent, or present with an empty value). ARGV:
// prefix, keys. Returns their values, nil for an absent key.
const getSrc = `#!lua flags=no-writes
local p = ARGV[1]
local names = {}
for j = 2, #ARGV do names[j-1] = p .. 'k' .. ARGV[j] end
local vs = redis.call('MGET', unpack(names))
local ttl = redis.call('EXISTS', p .. 'e') == 1
for j = 1, #names do
  if not vs[j] then
    local k = ARGV[j+1]
    if redis.call('ZSCORE', p .. 'o', k) and not (ttl and redis.call('ZSCORE', p .. 'e', k)) then
      vs[j] = ''
    end
  end
end
return vs
`

// migrateSrc moves one page of a layout-1 keyspace to layout 2, in one
// atomic step: up to ARGV[2] members of P "z" go to P "o", and the
// strings of those whose value is empty (and that have no TTL) are
// deleted; a TTL key keeps its string, and one Redis has expired stays a
// member (with its P "e" entry, it reads as absent, as in layout 2). When
// P "z" is empty the same step stamps P "f" with ARGV[3]. Each page
// stands alone, so replicas that open the keyspace at once may migrate it
// together, and a migration cut short resumes at the next open. ARGV:
// prefix, page size, layout version. Returns the number of keys moved
// and whether the migration is done.
const migrateSrc = `#!lua
local p = ARGV[1]
local z, o = p .. 'z', p .. 'o'
local ks = redis.call('ZRANGEBYLEX', z, '-', '+', 'LIMIT', 0, tonumber(ARGV[2]))
for _, k in ipairs(ks) do
  local sk = p .. 'k' .. k
  local v = redis.call('GET', sk)
  if v == '' and redis.call('PTTL', sk) == -1 then
    redis.call('DEL', sk)
  end
  redis.call('ZADD', o, 0, k)
  redis.call('ZREM', z, k)
end
if redis.call('EXISTS', z) == 1 then return {#ks, 0} end
redis.call('SET', p .. 'f', ARGV[3])
return {#ks, 1}
`

var (
	migrateScript = goredis.NewScript(migrateSrc)
	commitScript  = goredis.NewScript(commitSrc)
	scanScript    = goredis.NewScript(scanSrc)
	getScript     = goredis.NewScript(getSrc)
)
