package policy

import "hash/maphash"

// names interns strings (patient, grantee and type names) as small
// integers, with no pointers for the garbage collector to trace: a million
// grants held as Go strings in nested maps made a 533 MB heap of five
// million objects, and each collection stalled first-time decisions.
//
// A name is found by its hash; the bytes are compared, so a collision
// costs a lookup in a second map, never a wrong answer.
type names struct {
	hash  func(string) uint64
	ids   map[uint64]uint32 // hash → the first name interned with it
	other map[string]uint32 // names whose hash an earlier name took
	arena []byte            // every name, back to back
	ends  []uint32          // name i is arena[ends[i-1]:ends[i]]; ends[0] = 0
}

func newNames() *names {
	seed := maphash.MakeSeed()
	return &names{
		hash: func(s string) uint64 { return maphash.String(seed, s) },
		ids:  map[uint64]uint32{},
		ends: []uint32{0},
	}
}

// lookup returns the id of s, or 0 if s was never interned.
func (n *names) lookup(s string) uint32 {
	if id, ok := n.ids[n.hash(s)]; ok && n.is(id, s) {
		return id
	}
	if len(n.other) == 0 {
		return 0
	}
	return n.other[s]
}

// intern returns the id of s, adding it if new. Ids start at 1.
func (n *names) intern(s string) uint32 {
	if id := n.lookup(s); id != 0 {
		return id
	}
	n.arena = append(n.arena, s...)
	n.ends = append(n.ends, uint32(len(n.arena)))
	id := uint32(len(n.ends) - 1)
	h := n.hash(s)
	if _, taken := n.ids[h]; !taken {
		n.ids[h] = id
		return id
	}
	if n.other == nil {
		n.other = map[string]uint32{}
	}
	n.other[s] = id
	return id
}

// is reports whether name id is s, without allocating.
func (n *names) is(id uint32, s string) bool {
	return string(n.arena[n.ends[id-1]:n.ends[id]]) == s
}

// name returns name id as a new string.
func (n *names) name(id uint32) string {
	return string(n.arena[n.ends[id-1]:n.ends[id]])
}
