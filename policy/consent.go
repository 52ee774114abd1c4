package policy

import (
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// The consent model (DESIGN.md decision 5). A grant is a grouping link in
// the patient's domain: grantee -> "Type.p" (p one SMART permission
// letter), so one fixed p rule decides every request and a decision costs
// the same at a thousand grants or a million.
//
// The role definition is conditional ("(_, _)": Casbin's links with a
// validity window), because Casbin memoizes every answer of a plain g()
// for the life of the matcher, so a revoked or expired grant would keep
// answering yes; a conditional g() asks its role manager each time. That
// role manager is Grants, which stores each (patient, grantee, scope) once
// with its expiry instead of five links in Casbin's model.
const consentModel = `
[request_definition]
r = sub, dom, perm

[policy_definition]
p = sub

[role_definition]
g = _, _, _, (_, _)

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, r.perm, r.dom) && p.sub == "grant"
`

// Forever is the expiry of a grant until revoked.
var Forever = time.Unix(math.MaxInt64, 0)

// Consent decides what patients have granted, through Casbin.
//
// Casbin's Enforce rebuilds its function map, runs a regexp and evaluates
// the matcher on every call (about 14 µs under load, and most of the
// garbage of a decision), so its answers are memoized: an answer stands
// until the grants change (a generation counter) and, for an allow, until
// the latest expiry of the grants that allow it. A deny needs no time
// bound: time only ever ends grants.
type Consent struct {
	enf    *casbin.SyncedEnforcer
	grants *Grants
	memo   memo
}

type decisionKey struct {
	grantee, patient, typ string
	perm                  Perm
}

type decision struct {
	gen   uint64
	allow bool
	until int64 // Unix seconds: the answer holds while now < until
}

// memo remembers decisions in a fixed table of slots, each key in the one
// slot its hash names (a newer key takes the slot over), split in shards
// with a lock each. Nothing grows or is allocated after the first use of
// a shard: a map here rehashed as it grew, and at a million grants, where
// nearly every decision is new, that growth was most of the p99.
type memo struct {
	seed   maphash.Seed
	shards [memoShards]memoShard
}

type memoShard struct {
	mu    sync.RWMutex
	slots []memoSlot // memoSlots of them, made on first use
}

type memoSlot struct {
	key decisionKey
	d   decision
	set bool
}

const (
	memoShards = 64
	memoSlots  = 2048 // per shard
)

func (m *memo) slot(k *decisionKey) (*memoShard, uint64) {
	h := maphash.Comparable(m.seed, *k)
	return &m.shards[h%memoShards], (h / memoShards) % memoSlots
}

func (m *memo) get(k *decisionKey) (decision, bool) {
	s, i := m.slot(k)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.slots == nil || !s.slots[i].set || s.slots[i].key != *k {
		return decision{}, false
	}
	return s.slots[i].d, true
}

func (m *memo) put(k *decisionKey, d decision) {
	s, i := m.slot(k)
	s.mu.Lock()
	if s.slots == nil {
		s.slots = make([]memoSlot, memoSlots)
	}
	s.slots[i] = memoSlot{key: *k, d: d, set: true}
	s.mu.Unlock()
}

// NewConsent returns an empty consent mirror; now is the clock grants
// expire by (wall time: a request is judged at the time it is made).
func NewConsent(now func() time.Time) (*Consent, error) {
	m, err := model.NewModelFromString(consentModel)
	if err != nil {
		return nil, err
	}
	enf, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, err
	}
	g := newGrants(now)
	ast := enf.GetModel()["g"]["g"]
	ast.RM, ast.CondRM = nil, g
	enf.SetRoleManager(g) // also drops the compiled matcher, so g() is rebuilt over Grants
	if _, err := enf.AddPolicy("grant"); err != nil {
		return nil, err
	}
	return &Consent{enf: enf, grants: g, memo: memo{seed: maphash.MakeSeed()}}, nil
}

// Grants returns the grant store (the consent follower writes it).
func (c *Consent) Grants() *Grants { return c.grants }

// Allowed reports whether patient has granted grantee perm on typ, now.
// grantee is "Practitioner/<id>", "Organization/<id>" or "client/<id>";
// patient is "Patient/<id>".
func (c *Consent) Allowed(grantee, patient, typ string, perm Perm) bool {
	if grantee == "" || patient == "" {
		return false
	}
	key := decisionKey{grantee, patient, typ, perm}
	gen := c.grants.gen.Load()
	now := c.grants.now().Unix()
	if d, ok := c.memo.get(&key); ok && d.gen == gen && now < d.until {
		return d.allow
	}
	ok, err := c.enf.Enforce(grantee, patient, typ+"."+perm.String())
	if err != nil {
		return false
	}
	d := decision{gen: gen, allow: ok, until: math.MaxInt64}
	if ok {
		d.until = c.grants.latestExpiry(grantee, patient, typ, perm, now)
	}
	c.memo.put(&key, d)
	return ok
}
