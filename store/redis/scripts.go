package redis

import (
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Layout (format 2) under the configured prefix P (one Redis database may
// hold several keyspaces, one per prefix):
//
//	P "f"     string: the layout version, "2" (layoutVersion)
//	P "k" K   string: the value of engine key K, when it is not empty or
//	          was written with a TTL; a key whose value is empty has no
//	          string (see below)
//	P "o" Q   sorted set, one per partition Q of the keys (partitionLua):
//	          K minus its first len(Q) bytes for every present key K of
//	          the partition, score 0, so that ZRANGEBYLEX walks them in
//	          bytewise order (Redis compares members with memcmp)
//	P "p"     sorted set: the names of the partitions that hold keys,
//	          score 0, in order (only when partitioning is on)
//	P "e"     sorted set: keys written with a TTL, scored by their expiry
//	          (ms); commits that write TTL keys also drop from the order
//	          the expired ones, so single-use keys do not pile up
//
// A key K is present when its member is in its partition's order set,
// and then its value is the string P "k" K if there is one, else the
// empty string unless K is in P "e" (a TTL key Redis has expired: absent).
// Most keys a create writes have an empty value (index keys, the type
// history key: 16 of 21), and they cost only their member: no string,
// no dict entry in the keyspace, no SET in the AOF. Invariants the
// scripts keep: a string implies a member (so a ZADD that adds a new
// member knows there is no string to delete), and a key in P "e" has a
// member (deletes drop both).
//
// Format 1 (until 2026-12) kept a string for every key and one order set
// P "z" of all keys; Open refuses such a keyspace (checkLayout).
//
// The value strings and the order sets are both needed: a sorted set holds
// no value besides a float score (and ZRANGEBYLEX needs every score equal),
// and a Get must stay one GET. Cost: BENCHMARKS.md §8.

// partitionLua is part(k): the partition of engine key k, a prefix of k.
// The order sets are split so that each is smaller (fewer skip-list
// levels to walk per insert) and its members shorter (fewer bytes that
// memcmp compares, since the keys of one set share the part cut off).
//
// Scans must walk partitions in key order, so part must be monotonic:
// k1 < k2 implies part(k1) <= part(k2). It is: part(k) is the shortest
// prefix of k that ends with the n-th 0x00 0x01 terminator after the
// first byte (n given by k's first byte, the store's table tag:
// store/keys.go), or the first byte alone for tags with n = 0, or k whole
// when k has fewer terminators (a key the store did not write, such as
// the test suite's "k/a"). A string part of a store key is escaped (no
// 0x00 0x01 inside it), so for the tags below the partition is the tag
// and the resource type.
//
// partitionTags gives n per tag: c current, v version, t type history,
// i index, x index list, u claim, l leaf index: the tag and the type.
// Other tags (h system history, L log, M meta, X extensions) are one
// partition each.
var partitionTags = map[byte]int{'c': 1, 'v': 1, 't': 1, 'i': 1, 'x': 1, 'u': 1, 'l': 1}

func partitionLua() string {
	var b strings.Builder
	b.WriteString("local NT = {")
	for _, t := range "cvtixul" {
		if n := partitionTags[byte(t)]; n > 0 {
			b.WriteString("['" + string(t) + "']=" + strconv.Itoa(n) + ",")
		}
	}
	b.WriteString(`}
local TERM = string.char(0, 1)
local function part(k)
  if #k == 0 then return '' end
  local t = string.sub(k, 1, 1)
  local n = NT[t]
  if not n then return t end
  local pos = 2
  for _ = 1, n do
    local s = string.find(k, TERM, pos, true)
    if not s then return k end
    pos = s + 2
  end
  return string.sub(k, 1, pos - 1)
end
`)
	return b.String()
}

// commitSrc applies a batch atomically: conditions first (nothing is
// written when one fails: the script returns 0), then ops in order, then
// log appends. A Lua script runs alone on the server, so no other commit
// or scan sees it half done; and since every argument is validated before
// the first write, no runtime error can stop it half way (Redis would not
// roll back the writes already made). The "#!lua" shebang makes Redis
// refuse it up front under maxmemory (OOM) rather than at its first write.
//
// Each command a script calls costs Redis a fixed overhead (argument
// objects, command lookup, its propagation to the AOF) beyond its work
// per key, so the script first works out the final state of every key
// the batch writes (the last op on a key wins, appends come after ops),
// then writes them with as few commands as it can: one MSET for the
// values, one ZADD per partition for the members (a create's 15 index
// keys share one), one DEL for deletes. Commands carry at most chunk
// arguments each (Lua's unpack has a stack limit; a batch may hold
// DefaultLimits.MaxOps ops).
//
// ARGV: prefix, #conds, #ops, #appends, LogSizeKey, then per cond
// (key, "a"|"v", value), per op (key, "s"|"d", value, ttl ms), per append
// (data, "i"|"-", index key). Returns 1, or 0 when a condition failed.
var commitSrc = "#!lua\n" + partitionLua() + `
local p = ARGV[1]
local nc, no, na = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local e, pp = p .. 'e', p .. 'p'
local chunk = 512
-- cmd key? list: the command on list, chunk elements per call; the sum
-- of the replies.
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
-- ZADD z with score 0 for every member of ms: how many were new.
local function zadd(z, ms)
  local args = {}
  for _, m in ipairs(ms) do
    args[#args+1] = '0'
    args[#args+1] = m
  end
  return each('ZADD', z, args, 2)
end
-- the value of k (see the layout), or false.
local function get(k)
  local v = redis.call('GET', p .. 'k' .. k)
  if v then return v end
  local q = part(k)
  if redis.call('ZSCORE', p .. 'o' .. q, string.sub(k, #q + 1)) and not redis.call('ZSCORE', e, k) then
    return ''
  end
  return false
end
local i = 6
for _ = 1, nc do
  local v = get(ARGV[i])
  if ARGV[i+1] == 'a' then
    if v then return 0 end
  elseif v ~= ARGV[i+2] then
    return 0
  end
  i = i + 3
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
-- group by partition: members with a string, members without (empty
-- values) and their keys, members deleted.
local groups, qs = {}, {}
local sets, dels, edel, ettl = {}, {}, {}, {}
local now, ttls = nil, 0
for _, k in ipairs(order) do
  local v, ttl = st[k][1], st[k][2]
  local q = part(k)
  local g = groups[q]
  if not g then
    g = {{}, {}, {}, {}}
    groups[q] = g
    qs[#qs+1] = q
  end
  local m = string.sub(k, #q + 1)
  if v == false then
    dels[#dels+1] = p .. 'k' .. k
    g[4][#g[4]+1] = m
    edel[#edel+1] = k
  elseif ttl > 0 then
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    redis.call('SET', p .. 'k' .. k, v, 'PX', ttl)
    g[1][#g[1]+1] = m
    ettl[#ettl+1] = now + ttl
    ettl[#ettl+1] = k
    ttls = ttls + 1
  elseif v == '' then
    g[2][#g[2]+1] = m
    g[3][#g[3]+1] = k
  else
    sets[#sets+1] = p .. 'k' .. k
    sets[#sets+1] = v
    g[1][#g[1]+1] = m
  end
end
local hasE = redis.call('EXISTS', e) == 1
if #sets > 0 then each('MSET', nil, sets, 2) end
if #dels > 0 then each('DEL', nil, dels, 1) end
if hasE and #edel > 0 then each('ZREM', e, edel, 1) end
local fresh = {}
for _, q in ipairs(qs) do
  local g = groups[q]
  local z = p .. 'o' .. q
  local added = 0
  if #g[4] > 0 then each('ZREM', z, g[4], 1) end
  if #g[1] > 0 then added = zadd(z, g[1]) end
  if #g[2] > 0 then
    local a = zadd(z, g[2])
    added = added + a
    if a < #g[2] then
      -- Some were present (a new member has no string and no TTL entry,
      -- by the invariants): drop their strings, and their TTL entries,
      -- or a key with no string would read as expired.
      local ks = {}
      for j, k in ipairs(g[3]) do ks[j] = p .. 'k' .. k end
      each('DEL', nil, ks, 1)
      if hasE then each('ZREM', e, g[3], 1) end
    end
  end
  if added > 0 then
    fresh[#fresh+1] = '0'
    fresh[#fresh+1] = q
  elseif #g[4] > 0 and redis.call('EXISTS', z) == 0 then
    redis.call('ZREM', pp, q)
  end
end
if #fresh > 0 then each('ZADD', pp, fresh, 2) end
if ttls > 0 then
  each('ZADD', e, ettl, 2)
  local old = redis.call('ZRANGEBYSCORE', e, '-inf', now, 'LIMIT', 0, 2 * ttls + 8)
  for _, k in ipairs(old) do
    if redis.call('EXISTS', p .. 'k' .. k) == 0 then
      local q = part(k)
      local z = p .. 'o' .. q
      if redis.call('ZREM', z, string.sub(k, #q + 1)) == 1 and redis.call('EXISTS', z) == 0 then
        redis.call('ZREM', pp, q)
      end
    end
    redis.call('ZREM', e, k)
  end
end
return 1
`

// scanSrc reads one page of a scan in one atomic step, so a page never
// shows part of a commit. It walks the partitions that the range meets
// in order (part is monotonic, so a partition below part(start) holds no
// key >= start, one above part(end) none < end), reading members until
// the page is full, then the values: one MGET, and for the keys without
// a string one look in P "e" (an expired TTL key is skipped; any other is
// present with an empty value).
//
// ARGV: prefix, start key, start mode ("-" none, "[" inclusive, "("
// exclusive), end key, end mode ("+" none, "(" exclusive), "r" for
// descending, page size. Returns the number of members read, the last
// key read, then key, value pairs.
var scanSrc = "#!lua flags=no-writes\n" + partitionLua() + `
local p, sk, sm, ek, em = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local rev, n = ARGV[6] == 'r', tonumber(ARGV[7])
local sq, eq = false, false
if sm ~= '-' then sq = part(sk) end
if em ~= '+' then eq = part(ek) end
local keys = {}
-- the members of partition q in the range, up to the page's size.
local function walk(q)
  local lo, hi = '-', '+'
  if q == sq then lo = sm .. string.sub(sk, #q + 1) end
  if q == eq then hi = '(' .. string.sub(ek, #q + 1) end
  local ms
  if rev then
    ms = redis.call('ZREVRANGEBYLEX', p .. 'o' .. q, hi, lo, 'LIMIT', 0, n - #keys)
  else
    ms = redis.call('ZRANGEBYLEX', p .. 'o' .. q, lo, hi, 'LIMIT', 0, n - #keys)
  end
  for _, m in ipairs(ms) do keys[#keys+1] = q .. m end
end
local plo, phi = '-', '+'
if sq then plo = '[' .. sq end
if eq then phi = '[' .. eq end
while #keys < n do
  local qs
  if rev then
    qs = redis.call('ZREVRANGEBYLEX', p .. 'p', phi, plo, 'LIMIT', 0, 16)
  else
    qs = redis.call('ZRANGEBYLEX', p .. 'p', plo, phi, 'LIMIT', 0, 16)
  end
  for _, q in ipairs(qs) do
    walk(q)
    if #keys >= n then break end
  end
  if #qs < 16 then break end
  if rev then phi = '(' .. qs[#qs] else plo = '(' .. qs[#qs] end
end
local out = {#keys, keys[#keys] or ''}
if #keys == 0 then return out end
local names = {}
for j, k in ipairs(keys) do names[j] = p .. 'k' .. k end
local vs = redis.call('MGET', unpack(names))
local ttl = redis.call('EXISTS', p .. 'e') == 1
for j, k in ipairs(keys) do
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
// without a string (absent, or present with an empty value): ARGV:
// prefix, keys. Returns their values, nil for an absent key.
var getSrc = "#!lua flags=no-writes\n" + partitionLua() + `
local p = ARGV[1]
local names = {}
for j = 2, #ARGV do names[j-1] = p .. 'k' .. ARGV[j] end
local vs = redis.call('MGET', unpack(names))
local ttl = redis.call('EXISTS', p .. 'e') == 1
for j = 1, #names do
  if not vs[j] then
    local k = ARGV[j+1]
    local q = part(k)
    if redis.call('ZSCORE', p .. 'o' .. q, string.sub(k, #q + 1)) and not (ttl and redis.call('ZSCORE', p .. 'e', k)) then
      vs[j] = ''
    end
  end
end
return vs
`

var (
	commitScript = goredis.NewScript(commitSrc)
	scanScript   = goredis.NewScript(scanSrc)
	getScript    = goredis.NewScript(getSrc)
)
