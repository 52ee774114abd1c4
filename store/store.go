package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Store is the versioned resource store over an Engine.
type Store struct {
	e     Engine
	opts  Options
	cache *readCache // nil when off
	// multi: other processes commit to e (IsShared), so the cache holds
	// immutable versions only (see readCache).
	multi bool
}

// Options tune a Store.
type Options struct {
	// ObserveCommit, if set, is called with the duration of every
	// successful commit (for metrics).
	ObserveCommit func(time.Duration)
	// Virtual maps resource types kept by other components to them (see
	// Virtual).
	Virtual map[string]Virtual
	// ReadCacheBytes sizes the cache of current versions that Read
	// answers from (see readCache): 0 for DefaultReadCacheBytes, negative
	// for none.
	ReadCacheBytes int
	// Shared, if set, names the parameters whose references to one type
	// are kept as another parameter's keys (see SharedFunc).
	Shared SharedFunc
}

// New returns a Store over e.
func New(e Engine, opts Options) *Store {
	s := &Store{e: e, opts: opts, multi: IsShared(e)}
	switch {
	case opts.ReadCacheBytes == 0:
		s.cache = newReadCache(DefaultReadCacheBytes)
	case opts.ReadCacheBytes > 0:
		s.cache = newReadCache(opts.ReadCacheBytes)
	}
	return s
}

// Engine returns the underlying engine.
func (s *Store) Engine() Engine { return s.e }

// Close closes the engine.
func (s *Store) Close() error { return s.e.Close() }

// Current returns the current version of a resource, without its body.
// A deleted resource is returned with Deleted set; one that never existed
// is ErrNotFound.
func (s *Store) Current(ctx context.Context, typ, id string) (Version, error) {
	if v := s.virtual(typ); v != nil {
		ver, err := v.Read(ctx, id)
		ver.Body = nil
		return ver, err
	}
	b, err := s.e.Get(ctx, currentKey(typ, id))
	if err != nil {
		return Version{}, err
	}
	return decodeCurrent(typ, id, b)
}

// current is Current answered from the read cache when it can be (with
// the body, which callers may ignore).
func (s *Store) current(ctx context.Context, typ, id string) (Version, error) {
	if s.cache != nil && !s.multi && s.virtual(typ) == nil {
		if v, _, ok := s.cache.get(typ, id); ok {
			return v, nil
		}
	}
	return s.Current(ctx, typ, id)
}

// Read returns the current version with its body (a tombstone for a
// deleted resource).
func (s *Store) Read(ctx context.Context, typ, id string) (Version, error) {
	if v := s.virtual(typ); v != nil {
		return v.Read(ctx, id)
	}
	if s.cache != nil && s.multi {
		return s.readShared(ctx, typ, id)
	}
	var epoch uint64
	if s.cache != nil {
		v, e, ok := s.cache.get(typ, id)
		if ok {
			return v, nil
		}
		epoch = e
	}
	cur, err := s.Current(ctx, typ, id)
	if err != nil {
		return Version{}, err
	}
	v, err := s.Version(ctx, typ, id, cur.VID)
	if err == nil && s.cache != nil {
		s.cache.put(v, epoch)
	}
	return v, err
}

// ReadMany is Read of each of ids: the versions of those that exist
// (tombstones included), in the order of ids; ids that never existed are
// left out. On an engine that reads many keys in one step (MultiGetter)
// it reads the current pointers with one GetMany and the versions not in
// the cache with another, instead of a round trip or two per id.
func (s *Store) ReadMany(ctx context.Context, typ string, ids []string) ([]Version, error) {
	out := make([]Version, 0, len(ids))
	if _, ok := s.e.(MultiGetter); !ok || s.virtual(typ) != nil {
		for _, id := range ids {
			v, err := s.Read(ctx, typ, id)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = currentKey(typ, id)
	}
	vals, err := GetMany(ctx, s.e, keys)
	if err != nil {
		return nil, err
	}
	// The current pointers name immutable versions: those this process
	// holds (shared engines only, see readCache) need no read.
	var missing []int // indexes in out
	keys = keys[:0]
	for i, id := range ids {
		if vals[i] == nil {
			continue
		}
		cur, err := decodeCurrent(typ, id, vals[i])
		if err != nil {
			return nil, err
		}
		if s.cache != nil && s.multi {
			if v, ok := s.cache.getVersion(typ, id, cur.VID); ok {
				out = append(out, v)
				continue
			}
		}
		missing = append(missing, len(out))
		keys = append(keys, versionKey(typ, id, cur.VID))
		out = append(out, cur)
	}
	if len(keys) == 0 {
		return out, nil
	}
	vals, err = GetMany(ctx, s.e, keys)
	if err != nil {
		return nil, err
	}
	gone := false
	for j, i := range missing {
		cur := out[i]
		if vals[j] == nil {
			// As Read: a version not found is a resource not found.
			out[i].ID, gone = "", true
			continue
		}
		v, err := decodeVersion(typ, cur.ID, cur.VID, vals[j])
		if err != nil {
			return nil, err
		}
		if s.cache != nil && s.multi {
			s.cache.putVersion(v)
		}
		out[i] = v
	}
	if gone {
		out = slices.DeleteFunc(out, func(v Version) bool { return v.ID == "" })
	}
	return out, nil
}

// readShared is Read on a shared engine: the current pointer from the
// engine (one GET), the version it names from the cache when there (see
// readCache for why this is never stale). For a ReadSet in ctx it takes
// the pointer record last seen instead, when there is one, and adds its
// check to the set.
func (s *Store) readShared(ctx context.Context, typ, id string) (Version, error) {
	if rs, _ := ctx.Value(readSetKey{}).(*ReadSet); rs != nil && rs.s == s {
		if rec, ok := s.cache.getPointer(typ, id); ok {
			if v, err := s.versionOf(ctx, typ, id, rec); err == nil {
				rs.add(typ, id, rec)
				return v, nil
			}
			// A record this process cannot use: ask the engine.
		}
	}
	rec, err := s.e.Get(ctx, currentKey(typ, id))
	if errors.Is(err, ErrNotFound) {
		s.cache.forgetPointer(typ, id)
	}
	if err != nil {
		return Version{}, err
	}
	v, err := s.versionOf(ctx, typ, id, rec)
	if err == nil {
		s.cache.putPointer(typ, id, v.VID, rec)
	}
	return v, err
}

// versionOf returns the version a current pointer record names, from the
// cache when there.
func (s *Store) versionOf(ctx context.Context, typ, id string, rec []byte) (Version, error) {
	cur, err := decodeCurrent(typ, id, rec)
	if err != nil {
		return Version{}, err
	}
	if v, ok := s.cache.getVersion(typ, id, cur.VID); ok {
		return v, nil
	}
	v, err := s.Version(ctx, typ, id, cur.VID)
	if err == nil {
		s.cache.putVersion(v)
	}
	return v, err
}

// ReadSet lets the reads of one request on a shared engine answer from
// what this process last saw instead of asking the engine (one round trip
// less per read), and then prove it was current: each such read adds a
// check (the resource's current pointer holds the record it answered
// from), and the caller passes Checks to the one commit the request makes
// anyway, its audit event (Batch.Checks, read atomically with it). If any
// check is Stale, what the request read may be older than a version
// another replica had acknowledged before it began: the caller must not
// answer it, calls Forget, and runs the request again without a ReadSet
// (every read then asks the engine). If none is, every version it read was
// current at the commit, a moment after the request began and before it
// answers: what a read from the engine would have returned.
//
// A ReadSet is for requests that write nothing: the version it reads is
// not the one a conditional write must name (Store.Current is). It is not
// safe for concurrent use.
type ReadSet struct {
	s      *Store
	checks []Cond
	used   []cacheKey
}

type readSetKey struct{}

// NewReadSet returns a ReadSet for one request, or nil when reads need
// none (an engine that one process opens: its cache is exact).
func (s *Store) NewReadSet() *ReadSet {
	if !s.multi || s.cache == nil {
		return nil
	}
	return &ReadSet{s: s}
}

// WithReadSet returns ctx carrying rs for the store's reads (ctx itself
// for a nil rs).
func WithReadSet(ctx context.Context, rs *ReadSet) context.Context {
	if rs == nil {
		return ctx
	}
	return context.WithValue(ctx, readSetKey{}, rs)
}

func (rs *ReadSet) add(typ, id string, rec []byte) {
	rs.checks = append(rs.checks, Cond{Key: currentKey(typ, id), Value: rec})
	rs.used = append(rs.used, cacheKey{typ: typ, id: id}) // used within the request only
}

// Checks returns the checks the request's commit must carry (nil for a
// nil ReadSet or when every read asked the engine).
func (rs *ReadSet) Checks() []Cond {
	if rs == nil {
		return nil
	}
	return rs.checks
}

// Forget drops the pointer records the set's reads answered from, after a
// check failed.
func (rs *ReadSet) Forget() {
	for _, k := range rs.used {
		rs.s.cache.forgetPointer(k.typ, k.id)
	}
}

// Version returns one version.
func (s *Store) Version(ctx context.Context, typ, id string, vid uint64) (Version, error) {
	if v := s.virtual(typ); v != nil {
		ver, err := v.Read(ctx, id)
		if err == nil && ver.VID != vid {
			return Version{}, ErrNotFound
		}
		return ver, err
	}
	b, err := s.e.Get(ctx, versionKey(typ, id, vid))
	if err != nil {
		return Version{}, err
	}
	return decodeVersion(typ, id, vid, b)
}

// Write is one new version to commit.
type Write struct {
	// Prev is the current version this write replaces, exactly as Current
	// returned it, or nil when the resource must not exist yet. The commit
	// fails with ErrConflict if the resource moved on in between.
	Prev *Version
	// New is the new version; New.VID must be Prev.VID+1 (1 without Prev).
	New Version
	// Index holds the search index values of New (ignored for deletes).
	Index []IndexValue
	// Claim, if set, makes the write also take a unique claim (see Claim).
	Claim *Claim
	// Leaf, if set, is appended to the log in the same commit; LeafIndex
	// then finds its position.
	Leaf []byte
	// Unique, when HoldsUnique is set, is every unique name the new
	// version holds (a wallet address linked to one record only): a name
	// another resource holds fails the commit with a *TakenError, and the
	// names the resource held before and no longer holds are released.
	// Without HoldsUnique the resource's names are left as they are.
	Unique      []string
	HoldsUnique bool
}

// MayChangeUnique reports whether w can take or release a unique name:
// it sets the resource's names, and names some or replaces a version that
// held some (or one written before the store kept that). A write for
// which it is false leaves every unique name where it was.
func (w *Write) MayChangeUnique() bool {
	switch {
	case !w.HoldsUnique:
		return false
	case len(w.Unique) > 0:
		return true
	}
	return w.Prev != nil && w.Prev.Holds != HoldsNone
}

// ErrTaken: a unique name is held by another resource (errors.Is; the
// error is a *TakenError naming the holder).
var ErrTaken = errors.New("unique name taken")

// TakenError says which resource holds a unique name.
type TakenError struct {
	Name   string
	Holder string // "Type/id"
}

func (e *TakenError) Error() string { return "store: " + e.Name + " is held by " + e.Holder }

// Is makes errors.Is(err, ErrTaken) true.
func (e *TakenError) Is(target error) bool { return target == ErrTaken }

// UniqueHolder returns the resource ("Type/id") holding a unique name, or
// "" if none does.
func (s *Store) UniqueHolder(ctx context.Context, name string) (string, error) {
	b, err := s.e.Get(ctx, uniqueKey(name))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

// Claim is a unique name within a resource type, owned by one resource at
// a time. Conditional create uses its normalized criteria as the name, so
// that two concurrent creates with the same criteria cannot both succeed:
// the second fails with ErrConflict, retries, and finds the first.
type Claim struct {
	Name string
	// Owner is the id the claim must have now ("" for unclaimed); the
	// write transfers it to the new version's resource.
	Owner string
}

// ClaimOwner returns the id that owns a claim, or "" if none does.
func (s *Store) ClaimOwner(ctx context.Context, typ, name string) (string, error) {
	b, err := s.e.Get(ctx, claimKey(typ, name))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return string(b), err
}

// Commit writes all ws in one atomic, durable commit: either every version
// with its history and index entries is on disk, or nothing is. It returns
// ErrConflict (wrapped) when any resource changed since its Prev was read.
func (s *Store) Commit(ctx context.Context, ws []Write) error {
	return s.CommitWith(ctx, ws, nil)
}

// CommitWith is Commit with more in the same commit: add, if not nil, adds
// to the batch after the writes (the interaction's audit event:
// Journal.AddTo), and what it adds is written exactly when they are. The
// engine must be the one add writes for.
func (s *Store) CommitWith(ctx context.Context, ws []Write, add func(*Batch) error) error {
	start := time.Now()
	var b Batch
	var feed []UniqueChange // unique names taken or released (see changes.go)
	for i := range ws {
		if s.virtual(ws[i].New.Type) != nil {
			return readOnly(ws[i].New.Type)
		}
		if err := s.addWrite(ctx, &b, &ws[i], &feed); err != nil {
			return err
		}
	}
	if add != nil {
		if err := add(&b); err != nil {
			return err
		}
	}
	exact := s.cache != nil && !s.multi
	if exact {
		s.cache.begin(ws)
	}
	err := s.apply(ctx, &b, feed)
	if exact {
		s.cache.drop(ws) // also on failure: the engine may have applied part of the way
	}
	if err != nil {
		return err
	}
	if s.cache != nil && s.multi {
		// What this commit wrote is the freshest hint of the current
		// pointers and an immutable version each (see ReadSet).
		// Both as the engine holds them: a read decodes the same bytes
		// (times in µs, the caller's buffers not kept).
		for i := range ws {
			v := &ws[i].New
			s.cache.putPointer(v.Type, v.ID, v.VID, encodeCurrent(v))
			if cv, err := decodeVersion(v.Type, v.ID, v.VID, encodeVersion(v)); err == nil {
				s.cache.putVersion(cv)
			}
		}
	}
	if s.opts.ObserveCommit != nil {
		s.opts.ObserveCommit(time.Since(start))
	}
	return nil
}

func (s *Store) addWrite(ctx context.Context, b *Batch, w *Write, feed *[]UniqueChange) error {
	v := &w.New
	want := uint64(1)
	if w.Prev != nil {
		want = w.Prev.VID + 1
		if w.Prev.Type != v.Type || w.Prev.ID != v.ID {
			return fmt.Errorf("store: write of %s/%s has Prev of %s/%s", v.Type, v.ID, w.Prev.Type, w.Prev.ID)
		}
	}
	if v.VID != want {
		return fmt.Errorf("store: version %d of %s/%s does not follow %d", v.VID, v.Type, v.ID, want-1)
	}
	if v.Deleted != (v.Body == nil) {
		return fmt.Errorf("store: a version has a body exactly when it is not deleted")
	}
	// The creator is carried from version to version.
	if w.Prev == nil {
		v.Creator = v.Author
	} else if v.Creator = w.Prev.Creator; v.Creator == "" {
		v.Creator = v.Author
	}
	ts := v.LastUpdated.UnixMicro()
	ck := currentKey(v.Type, v.ID)
	if w.Prev == nil {
		b.Require(ck, nil)
	} else {
		b.Require(ck, encodeCurrent(w.Prev))
	}
	if w.Claim != nil {
		k := claimKey(v.Type, w.Claim.Name)
		if w.Claim.Owner == "" {
			b.Require(k, nil)
		} else {
			b.Require(k, []byte(w.Claim.Owner))
		}
		b.Set(k, []byte(v.ID))
	}
	if w.HoldsUnique {
		// A resource whose current version holds no name has no list
		// (holdUnique deletes an emptied one): its next write need not
		// read it either.
		if err := s.holdUnique(ctx, b, v, w.Unique, feed, w.Prev == nil || w.Prev.Holds == HoldsNone); err != nil {
			return err
		}
		v.Holds = HoldsNone
		if len(w.Unique) > 0 && !v.Deleted {
			v.Holds = HoldsSome
		}
	}
	b.Set(ck, encodeCurrent(v))
	b.Set(versionKey(v.Type, v.ID, v.VID), encodeVersion(v))
	b.Set(typeHistoryKey(v.Type, ts, v.ID, v.VID), nil)
	if w.Leaf != nil {
		// The system history key holds the log position of the
		// version's leaf: one key less per version than a key of its
		// own. (Older stores hold it under an 'l' key; LeafIndex reads
		// both.)
		b.Appends = append(b.Appends, Append{Data: w.Leaf, IndexKey: sysHistoryKey(ts, v.Type, v.ID, v.VID)})
	} else {
		b.Set(sysHistoryKey(ts, v.Type, v.ID, v.VID), nil)
	}
	var idx []IndexValue
	if !v.Deleted {
		idx = w.Index
	}
	return s.replaceIndex(ctx, b, v.Type, v.ID, w.Prev != nil, idx)
}

// holdUnique adds to b what makes v's resource hold exactly names (none
// once deleted): each new name must be free, each dropped one is
// released. The conditions make a concurrent taker fail the commit. The
// names taken or released are noted in feed. first says the resource
// holds nothing yet (no version, or a current version that holds no name;
// the write requires that pointer): the held list is not read (one round
// trip less per create or update on a network engine); the condition
// that it is absent stays, so a stray list makes the write conflict.
func (s *Store) holdUnique(ctx context.Context, b *Batch, v *Version, names []string, feed *[]UniqueChange, first bool) error {
	self := v.Type + "/" + v.ID
	hk := heldKey(self)
	var old []byte
	var err error
	if !first {
		old, err = s.e.Get(ctx, hk)
	}
	switch {
	case first || errors.Is(err, ErrNotFound):
		old = nil
		b.Require(hk, nil)
	case err != nil:
		return err
	default:
		b.Require(hk, old)
	}
	held := splitNames(old)
	if v.Deleted {
		names = nil
	}
	var changed []string
	for _, n := range names {
		if slices.Contains(held, n) {
			continue
		}
		changed = append(changed, n)
		k := uniqueKey(n)
		holder, err := s.e.Get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			b.Require(k, nil)
		case err != nil:
			return err
		case string(holder) != self:
			return &TakenError{Name: n, Holder: string(holder)}
		default:
			b.Require(k, holder)
		}
		b.Set(k, []byte(self))
	}
	for _, n := range held {
		if !slices.Contains(names, n) {
			k := uniqueKey(n)
			b.Require(k, []byte(self))
			b.Delete(k)
			changed = append(changed, n)
		}
	}
	noteUnique(feed, self, changed)
	// Write the list only when it changes: a delete of an absent list on
	// every update left one tombstone per version of the same key, and
	// Pebble's Get steps over each of them (an update of a record that
	// never held a name cost O(its versions) in this Get).
	switch {
	case len(changed) == 0:
	case len(names) == 0:
		b.Delete(hk)
	default:
		b.Set(hk, []byte(strings.Join(names, "\n")))
	}
	return nil
}

func splitNames(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	return strings.Split(string(b), "\n")
}

// replaceIndex adds to b the removal of the resource's current index
// entries (when it has a version already) and the writing of idx. The
// caller's condition on the current record makes reading the old list
// safe: if another writer changed it since, the commit fails.
func (s *Store) replaceIndex(ctx context.Context, b *Batch, typ, id string, exists bool, idx []IndexValue) error {
	lk := indexListKey(typ, id)
	var oldList []byte
	var old [][]byte
	if exists {
		var err error
		oldList, err = s.e.Get(ctx, lk)
		switch {
		case errors.Is(err, ErrNotFound):
			oldList = nil
		case err != nil:
			return err
		default:
			if err := eachIndexKey(oldList, typ, id, func(k []byte) { old = append(old, k) }); err != nil {
				return err
			}
			slices.SortFunc(old, bytes.Compare) // lists written before keys were sorted
		}
	}
	var shared func(string) (string, string, bool)
	if s.opts.Shared != nil {
		shared = func(param string) (string, string, bool) { return s.shared(typ, param) }
	}
	keys := resourceKeys(typ, id, idx, shared) // sorted, unique
	// Only what changed: an update that leaves most index values as they
	// were writes no delete and set of the same keys (half the batch, and
	// no pile of versions of unchanged keys for scans to step over).
	for i, j := 0, 0; i < len(old) || j < len(keys); {
		switch {
		case j == len(keys) || i < len(old) && bytes.Compare(old[i], keys[j]) < 0:
			b.Delete(old[i])
			i++
		case i == len(old) || bytes.Compare(old[i], keys[j]) > 0:
			b.Set(keys[j], nil)
			j++
		default:
			i, j = i+1, j+1
		}
	}
	if len(keys) == 0 {
		if oldList != nil {
			b.Delete(lk)
		}
		return nil
	}
	var list []byte
	prefix, suffix := indexKeyEnds(typ, id)
	for _, k := range keys {
		list = appendIndexKey(list, k, len(prefix), len(suffix))
	}
	if !bytes.Equal(list, oldList) {
		b.Set(lk, list)
	}
	return nil
}

// Reindex replaces the index entries of the current version cur of a
// resource (as Current returned it) with idx: for rebuilding indexes when
// the search parameter table changes. ErrConflict if the resource changed.
func (s *Store) Reindex(ctx context.Context, cur Version, idx []IndexValue) error {
	var b Batch
	b.Require(currentKey(cur.Type, cur.ID), encodeCurrent(&cur))
	if cur.Deleted {
		idx = nil
	}
	if err := s.replaceIndex(ctx, &b, cur.Type, cur.ID, true, idx); err != nil {
		return err
	}
	return s.e.Apply(ctx, &b)
}

// Hold makes the current version cur of a resource (as Current returned
// it) hold exactly names, as a write with HoldsUnique would: for records
// written before they held names (gateway reindex). A name another
// resource holds fails with a *TakenError; ErrConflict if the resource
// changed.
func (s *Store) Hold(ctx context.Context, cur Version, names []string) error {
	var b Batch
	var feed []UniqueChange
	b.Require(currentKey(cur.Type, cur.ID), encodeCurrent(&cur))
	if err := s.holdUnique(ctx, &b, &cur, names, &feed, false); err != nil {
		return err
	}
	return s.apply(ctx, &b, feed)
}

// EachCurrent calls fn with the current version (with its body) of every
// live resource of typ, in id order, until fn returns an error.
func (s *Store) EachCurrent(ctx context.Context, typ string, fn func(Version) error) error {
	if s.virtual(typ) != nil {
		return nil // not indexed by the store: nothing to rebuild
	}
	p := newKey(tagCurrent, len(typ)+2).str(typ)
	var ids []Version
	// Collect a batch of ids per scan, then read bodies outside the scan.
	r := PrefixRange(p)
	for {
		ids = ids[:0]
		var last []byte
		err := s.e.Scan(ctx, Range{Start: r.Start, End: r.End, Limit: 1000}, func(k, v []byte) bool {
			id, _, ok := readStr(k[len(p):])
			cur, err := decodeCurrent(typ, id, v)
			if ok && err == nil && !cur.Deleted {
				ids = append(ids, cur)
			}
			last = append(last[:0], k...)
			return true
		})
		if err != nil {
			return err
		}
		for _, cur := range ids {
			v, err := s.Version(ctx, typ, cur.ID, cur.VID)
			if err != nil {
				return err
			}
			if err := fn(v); err != nil {
				return err
			}
		}
		if last == nil {
			return nil
		}
		r.Start = PrefixEnd(last)
		if r.Start == nil || (r.End != nil && bytes.Compare(r.Start, r.End) >= 0) {
			return nil
		}
	}
}

// LeafIndex returns the log position of a version's leaf, or ErrNotFound
// when the version was written without one.
func (s *Store) LeafIndex(ctx context.Context, typ, id string, vid uint64) (uint64, error) {
	if v := s.virtual(typ); v != nil {
		return v.LeafIndex(ctx, id, vid)
	}
	rec, err := s.e.Get(ctx, versionKey(typ, id, vid))
	if err != nil {
		return 0, err
	}
	ts, err := versionMicros(rec)
	if err != nil {
		return 0, err
	}
	b, err := s.e.Get(ctx, sysHistoryKey(ts, typ, id, vid))
	if errors.Is(err, ErrNotFound) {
		// Altered behind the store's back: no leaf can be named.
		return 0, fmt.Errorf("store: version %s/%s/%d has no history entry: %w", typ, id, vid, ErrNotFound)
	}
	if err == nil && len(b) == 0 {
		// Written without a leaf, or before the history key held it.
		b, err = s.e.Get(ctx, leafIndexKey(typ, id, vid))
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(b), nil
}

// LogSize returns the number of entries in the log.
func (s *Store) LogSize(ctx context.Context) (uint64, error) {
	b, err := s.e.Get(ctx, LogSizeKey)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, errCorrupt
	}
	return binary.BigEndian.Uint64(b), nil
}

// Leaves calls fn with log entries from, from+1, ... until the end of the
// log or until fn returns false.
func (s *Store) Leaves(ctx context.Context, from uint64, fn func(n uint64, data []byte) bool) error {
	var ferr error
	err := s.e.Scan(ctx, Range{Start: LogKey(from), End: PrefixEnd(LogPrefix)}, func(k, v []byte) bool {
		n, _, ok := readU64(k[1:])
		if !ok {
			ferr = errCorrupt
			return false
		}
		return fn(n, v)
	})
	if err == nil {
		err = ferr
	}
	return err
}

// HistoryQuery selects versions, newest first. Type and ID empty: the whole
// system; ID empty: one type; both set: one resource.
type HistoryQuery struct {
	Type, ID string
	Since    time.Time // only versions with LastUpdated >= Since (zero: all)
	Count    int       // page size (> 0)
	Cursor   []byte    // from a previous page's Next; nil for the first page
	// Filter, if set, keeps only the versions it accepts, before paging.
	Filter func(*Version) bool
}

// HistoryPage is one page of history.
type HistoryPage struct {
	Versions []Version
	// Next is the cursor of the following page, nil on the last page.
	Next []byte
}

// History returns one page of versions, newest first. Paging is by key
// position, so pages stay consistent while new versions are written.
func (s *Store) History(ctx context.Context, q HistoryQuery) (HistoryPage, error) {
	if q.Count <= 0 {
		return HistoryPage{}, fmt.Errorf("store: history page size must be positive")
	}
	if v := s.virtual(q.Type); v != nil {
		return v.History(ctx, q)
	}
	var r Range
	switch {
	case q.Type != "" && q.ID != "":
		r = PrefixRange(versionPrefix(q.Type, q.ID))
	case q.Type != "":
		p := typeHistoryPrefix(q.Type)
		r = PrefixRange(p)
		if !q.Since.IsZero() {
			r.Start = p.u64(uint64(q.Since.UnixMicro()))
		}
	default:
		p := newKey(tagSysHistory, 9)
		r = PrefixRange(p)
		if !q.Since.IsZero() {
			r.Start = p.u64(uint64(q.Since.UnixMicro()))
		}
	}
	r.Reverse = true
	if q.Cursor != nil {
		if bytes.Compare(q.Cursor, r.Start) < 0 || (r.End != nil && bytes.Compare(q.Cursor, r.End) >= 0) {
			return HistoryPage{}, ErrBadCursor
		}
		r.End = q.Cursor // exclusive: continue below the last key served
	}
	var (
		page    HistoryPage
		lastKey []byte
		scanErr error
	)
	if q.Filter == nil {
		r.Limit = q.Count + 1
	}
	err := scanCtx(ctx, s.e, r, func(k, val []byte) bool {
		v, err := historyRef(q, k, val)
		if err != nil {
			scanErr = err
			return false
		}
		if !q.Since.IsZero() && v.LastUpdated.Before(q.Since) {
			return false // versions of one resource are in time order too
		}
		if v.Body == nil && !v.Deleted {
			if v, err = s.Version(ctx, v.Type, v.ID, v.VID); err != nil {
				scanErr = fmt.Errorf("store: history entry without version: %w", err)
				return false
			}
		}
		if q.Filter != nil && !q.Filter(&v) {
			return true
		}
		if len(page.Versions) == q.Count {
			page.Next = lastKey
			return false
		}
		page.Versions = append(page.Versions, v)
		lastKey = append(lastKey[:0], k...)
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return HistoryPage{}, err
	}
	if page.Next != nil {
		page.Next = append([]byte(nil), page.Next...)
	}
	return page, nil
}

// ErrBadCursor: a paging cursor that does not belong to the query.
var ErrBadCursor = errors.New("invalid paging cursor")

// historyRef decodes a history scan key into a version reference; for
// instance history it decodes the whole version from the value.
func historyRef(q HistoryQuery, k, val []byte) (Version, error) {
	switch {
	case q.Type != "" && q.ID != "":
		_, rest, ok := readStr(k[1:])
		if ok {
			_, rest, ok = readStr(rest)
		}
		var vid uint64
		if ok {
			vid, _, ok = readU64(rest)
		}
		if !ok {
			return Version{}, errCorrupt
		}
		return decodeVersion(q.Type, q.ID, vid, append([]byte(nil), val...))
	case q.Type != "":
		_, rest, ok := readStr(k[1:])
		var ts, vid uint64
		var id string
		if ok {
			ts, rest, ok = readU64(rest)
		}
		if ok {
			id, rest, ok = readStr(rest)
		}
		if ok {
			vid, _, ok = readU64(rest)
		}
		if !ok {
			return Version{}, errCorrupt
		}
		return Version{Type: q.Type, ID: id, VID: vid, LastUpdated: time.UnixMicro(int64(ts)).UTC()}, nil
	default:
		ts, rest, ok := readU64(k[1:])
		var typ, id string
		var vid uint64
		if ok {
			typ, rest, ok = readStr(rest)
		}
		if ok {
			id, rest, ok = readStr(rest)
		}
		if ok {
			vid, _, ok = readU64(rest)
		}
		if !ok {
			return Version{}, errCorrupt
		}
		return Version{Type: typ, ID: id, VID: vid, LastUpdated: time.UnixMicro(int64(ts)).UTC()}, nil
	}
}
