package store

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

// readCache keeps the current versions of recently read resources, so a
// read is one map lookup instead of two engine lookups (the current
// record, then the version): in a read profile those were a fifth of the
// gateway's CPU.
//
// It is exact, never stale: a commit drops the entries of the resources
// it writes before the engine applies it and again once it has (before
// the writer is answered); while it is in flight no reader stores a
// version of those resources (a reader may have read the engine just
// before the commit applied), and afterwards a reader that missed stores
// what it read only if no commit dropped anything in its shard since the
// miss (the shard's epoch), and never over a newer version.
//
// That argument needs every commit to pass through this process: it holds
// for Pebble (a directory admits one process, and the gateway opens one
// Store over it). On a shared engine (IsShared: several replicas on one
// Redis) another process commits at any time, so the cache there holds
// only immutable things: a version by type, id and version number
// (getVersion, putVersion), and Read asks the engine for the current
// pointer at every call. No stale read follows, because:
//
//   - the pointer is read from the engine, one GET, after the read began;
//     Redis answers it from its single primary, where each commit script
//     applied atomically before its writer was acknowledged, so the GET
//     sees every commit acknowledged before it was sent;
//   - a version record never changes once written: version n of a
//     resource is written only by the commit that moves its current
//     pointer from n-1 to n, conditional on that pointer (addWrite's
//     Require), and numbers are never reused (a delete is a version too),
//     so the cached record for (type, id, n) is byte for byte what a GET
//     of that version would return now.
//
// Hence Read returns what the uncached path would at the GET's moment.
//
// A read made for a ReadSet (a request that writes an audit event anyway)
// skips that GET: it answers from the pointer record last seen and adds a
// check to the set, which the request's audit commit reads atomically;
// when the check fails the request is answered again from the engine
// (see ReadSet).
// storetest.RunShared checks it with two Stores, each with its own cache,
// writing and reading alternately through one backend.
type readCache struct {
	seed   maphash.Seed
	budget int // bytes per shard
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.RWMutex
	epoch uint64
	bytes int
	m     map[cacheKey]Version
	// writing counts the commits in flight per resource (begin to drop).
	writing map[cacheKey]int
}

// cacheKey names a current version (vid 0) or, on shared engines, one
// immutable version.
type cacheKey struct {
	typ, id string
	vid     uint64
}

const cacheShards = 64

// DefaultReadCacheBytes is the read cache's size unless Options say.
const DefaultReadCacheBytes = 64 << 20

func newReadCache(bytes int) *readCache {
	c := &readCache{seed: maphash.MakeSeed(), budget: bytes / cacheShards}
	for i := range c.shards {
		c.shards[i].m = map[cacheKey]Version{}
	}
	return c
}

func (c *readCache) shard(k cacheKey) *cacheShard {
	return &c.shards[maphash.Comparable(c.seed, k)%cacheShards]
}

// get returns the cached current version of typ/id or, on a miss, the
// epoch to hand to put.
func (c *readCache) get(typ, id string) (Version, uint64, bool) {
	s := c.shard(cacheKey{typ: typ, id: id})
	s.mu.RLock()
	v, ok := s.m[cacheKey{typ: typ, id: id}]
	epoch := s.epoch
	s.mu.RUnlock()
	return v, epoch, ok
}

// put stores v, read from the engine after a miss at epoch.
func (c *readCache) put(v Version, epoch uint64) {
	size := cost(&v)
	if size > c.budget/8 {
		return // one big resource would push out many small ones
	}
	v = owned(v)
	k := cacheKey{typ: v.Type, id: v.ID}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch != epoch || s.writing[k] > 0 {
		return // a commit may have made v old
	}
	if old, ok := s.m[k]; ok {
		if old.VID >= v.VID {
			return
		}
		s.bytes -= cost(&old)
	}
	c.insert(s, k, v, size)
}

// owned returns v with what the cache keeps made its own.
func owned(v Version) Version {
	// The type and id may be the caller's view of a request buffer that
	// the next request overwrites: a key that changes under the map can
	// neither be found nor deleted, so the cache grew past its budget (to
	// 200,000 entries for a 64 MB budget), and a hit could hand out a
	// version whose Type read as another request's bytes.
	v.Type, v.ID = strings.Clone(v.Type), strings.Clone(v.ID)
	// Callers may append to what they get: make them copy.
	v.Body, v.Compartments = slices.Clip(v.Body), slices.Clip(v.Compartments)
	return v
}

// insert stores v under k, evicting to stay within budget; the caller
// holds s.mu and has taken any old entry under k out of s.bytes.
func (c *readCache) insert(s *cacheShard, k cacheKey, v Version, size int) {
	for ek, ev := range s.m { // map order is random: random eviction
		if s.bytes+size <= c.budget {
			break
		}
		s.bytes -= cost(&ev)
		delete(s.m, ek)
	}
	s.m[k] = v
	s.bytes += size
}

// getVersion returns the cached version vid of typ/id (shared engines).
func (c *readCache) getVersion(typ, id string, vid uint64) (Version, bool) {
	k := cacheKey{typ, id, vid}
	s := c.shard(k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

// putVersion stores an immutable version (shared engines). It needs no
// epoch: nothing can make it old, only no longer current.
func (c *readCache) putVersion(v Version) {
	size := cost(&v)
	if size > c.budget/8 {
		return
	}
	v = owned(v)
	k := cacheKey{v.Type, v.ID, v.VID}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return
	}
	c.insert(s, k, v, size)
}

// Pointers (shared engines only) are the current pointer records last
// seen, one per resource, kept under the resource's vid-0 key (which only
// the exact cache of a one-process engine uses otherwise) with the record
// in Body. They are hints, never trusted alone: Read answers from one
// only for a ReadSet, whose checks prove it still current in the
// request's audit commit (see ReadSet).

// getPointer returns the pointer record last seen for typ/id.
func (c *readCache) getPointer(typ, id string) ([]byte, bool) {
	k := cacheKey{typ: typ, id: id}
	s := c.shard(k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v.Body, ok
}

// putPointer keeps rec, the pointer record of version vid of typ/id, read
// from the engine or just committed, unless one of a later version is
// kept (versions only go forward, so that one is the fresher hint).
func (c *readCache) putPointer(typ, id string, vid uint64, rec []byte) {
	k := cacheKey{typ: strings.Clone(typ), id: strings.Clone(id)}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	v := Version{Type: k.typ, ID: k.id, VID: vid, Body: slices.Clip(rec)}
	if old, ok := s.m[k]; ok {
		if old.VID > vid {
			return
		}
		s.bytes -= cost(&old)
	}
	c.insert(s, k, v, cost(&v))
}

// forgetPointer drops the pointer record kept for typ/id.
func (c *readCache) forgetPointer(typ, id string) {
	k := cacheKey{typ: typ, id: id}
	s := c.shard(k)
	s.mu.Lock()
	s.forget(k)
	s.mu.Unlock()
}

// begin forgets the resources ws are about to write and keeps them out
// of the cache until drop; called before the engine applies their commit.
func (c *readCache) begin(ws []Write) {
	for i := range ws {
		k := cacheKey{typ: ws[i].New.Type, id: ws[i].New.ID}
		s := c.shard(k)
		s.mu.Lock()
		if s.writing == nil {
			s.writing = map[cacheKey]int{}
		}
		s.writing[k]++
		s.forget(k)
		s.mu.Unlock()
	}
}

// drop forgets the resources ws wrote and ends begin's hold on them;
// called after the engine applied (or failed to apply) their commit.
func (c *readCache) drop(ws []Write) {
	for i := range ws {
		k := cacheKey{typ: ws[i].New.Type, id: ws[i].New.ID}
		s := c.shard(k)
		s.mu.Lock()
		s.epoch++
		if n, ok := s.writing[k]; ok && n > 1 {
			s.writing[k] = n - 1
		} else {
			delete(s.writing, k)
		}
		s.forget(k)
		s.mu.Unlock()
	}
}

// forget removes k's entry; the caller holds s.mu.
func (s *cacheShard) forget(k cacheKey) {
	if old, ok := s.m[k]; ok {
		s.bytes -= cost(&old)
		delete(s.m, k)
	}
}

// cost approximates the memory an entry holds.
func cost(v *Version) int {
	n := 160 + len(v.Type) + len(v.ID) + len(v.Body) + len(v.Author) + len(v.Creator)
	for _, c := range v.Compartments {
		n += 16 + len(c)
	}
	return n
}
