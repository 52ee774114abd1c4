package policy

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/log"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/rbac"
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

type decisionKey struct{ grantee, patient, scope string }

type decision struct {
	gen   uint64
	allow bool
	until int64 // Unix seconds: the answer holds while now < until
}

// memo holds remembered decisions in shards (by patient) of plain maps: a
// miss adds a key, which sync.Map makes costly under churn.
type memo struct {
	seed   maphash.Seed
	shards [memoShards]memoShard
}

type memoShard struct {
	mu sync.RWMutex
	m  map[decisionKey]decision
}

const (
	memoShards = 64
	// memoShardSize bounds a shard; past it, the shard starts over.
	memoShardSize = 2048
)

func (m *memo) shard(k *decisionKey) *memoShard {
	return &m.shards[maphash.String(m.seed, k.patient)%memoShards]
}

func (m *memo) get(k *decisionKey) (decision, bool) {
	s := m.shard(k)
	s.mu.RLock()
	d, ok := s.m[*k]
	s.mu.RUnlock()
	return d, ok
}

func (m *memo) put(k *decisionKey, d decision) {
	s := m.shard(k)
	s.mu.Lock()
	if s.m == nil || len(s.m) >= memoShardSize {
		s.m = make(map[decisionKey]decision, 64)
	}
	s.m[*k] = d
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
	g := &Grants{byPatient: map[string]map[string][]grant{}, byGrantee: map[string]map[string]int{}, now: now}
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
	key := decisionKey{grantee, patient, typ + "." + perm.String()}
	gen := c.grants.gen.Load()
	now := c.grants.now().Unix()
	if d, ok := c.memo.get(&key); ok && d.gen == gen && now < d.until {
		return d.allow
	}
	ok, err := c.enf.Enforce(grantee, patient, key.scope)
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

// Grant is one consent as mirrored from the chain.
type Grant struct {
	Patient, Grantee, Scope string // "Patient/1", "Practitioner/2", "DiagnosticReport.rs"
	Expiry                  time.Time
}

type grant struct {
	typ    string // resource type or "*"
	perms  Perm
	expiry int64 // Unix seconds
}

func (g grant) scope() string { return g.typ + "." + g.perms.String() }

// Grants holds the mirrored grants and serves them to Casbin as role
// links: HasLink(grantee, "Type.p", patient) is true while a live grant
// of patient to grantee covers permission p on Type (or on "*").
type Grants struct {
	gen       atomic.Uint64 // bumped by every change
	mu        sync.RWMutex
	byPatient map[string]map[string][]grant // patient -> grantee -> grants
	byGrantee map[string]map[string]int     // grantee -> patient -> number of grants
	n         int
	now       func() time.Time
}

var _ rbac.ConditionalRoleManager = (*Grants)(nil)

// ParseScope parses a consent scope, "<Type>.<perms>" or "*.<perms>".
func ParseScope(s string) (string, Perm, error) {
	typ, perms, ok := strings.Cut(s, ".")
	if !ok || typ == "" {
		return "", 0, fmt.Errorf("consent scope %q: want Type.permissions", s)
	}
	p, err := parsePerms(perms)
	if err != nil || p == 0 || strings.Contains(perms, "read") || strings.Contains(perms, "write") || perms == "*" {
		return "", 0, fmt.Errorf("consent scope %q: permissions are SMART v2 letters in the order cruds", s)
	}
	return typ, p, nil
}

// Set adds a grant or, for the same patient, grantee and scope, replaces
// its expiry (as the contract does).
func (g *Grants) Set(gr Grant) error {
	typ, perms, err := ParseScope(gr.Scope)
	if err != nil {
		return err
	}
	if gr.Patient == "" || gr.Grantee == "" {
		return errors.New("consent: a grant needs a patient and a grantee")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.gen.Add(1)
	byGrantee := g.byPatient[gr.Patient]
	if byGrantee == nil {
		byGrantee = map[string][]grant{}
		g.byPatient[gr.Patient] = byGrantee
	}
	list := byGrantee[gr.Grantee]
	for i := range list {
		if list[i].typ == typ && list[i].perms == perms {
			list[i].expiry = gr.Expiry.Unix()
			return nil
		}
	}
	byGrantee[gr.Grantee] = append(list, grant{typ: typ, perms: perms, expiry: gr.Expiry.Unix()})
	pats := g.byGrantee[gr.Grantee]
	if pats == nil {
		pats = map[string]int{}
		g.byGrantee[gr.Grantee] = pats
	}
	pats[gr.Patient]++
	g.n++
	return nil
}

// Remove deletes a grant and reports whether it existed.
func (g *Grants) Remove(patient, grantee, scope string) bool {
	typ, perms, err := ParseScope(scope)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	list := g.byPatient[patient][grantee]
	i := slices.IndexFunc(list, func(x grant) bool { return x.typ == typ && x.perms == perms })
	if i < 0 {
		return false
	}
	defer g.gen.Add(1)
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(g.byPatient[patient], grantee)
		if len(g.byPatient[patient]) == 0 {
			delete(g.byPatient, patient)
		}
	} else {
		g.byPatient[patient][grantee] = list
	}
	if pats := g.byGrantee[grantee]; pats != nil {
		if pats[patient]--; pats[patient] == 0 {
			delete(pats, patient)
			if len(pats) == 0 {
				delete(g.byGrantee, grantee)
			}
		}
	}
	g.n--
	return true
}

// Len is the number of grants held (live or expired).
func (g *Grants) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.n
}

// Of lists a patient's live grants.
func (g *Grants) Of(patient string) []Grant {
	g.mu.RLock()
	defer g.mu.RUnlock()
	now := g.now().Unix()
	var out []Grant
	for grantee, list := range g.byPatient[patient] {
		for _, x := range list {
			if x.expiry > now {
				out = append(out, Grant{Patient: patient, Grantee: grantee, Scope: x.scope(), Expiry: time.Unix(x.expiry, 0)})
			}
		}
	}
	slices.SortFunc(out, func(a, b Grant) int { return strings.Compare(a.Grantee+a.Scope, b.Grantee+b.Scope) })
	return out
}

// To lists the live grants a grantee holds, from every patient.
func (g *Grants) To(grantee string) []Grant {
	g.mu.RLock()
	pats := make([]string, 0, len(g.byGrantee[grantee]))
	for p := range g.byGrantee[grantee] {
		pats = append(pats, p)
	}
	g.mu.RUnlock()
	var out []Grant
	for _, p := range pats {
		for _, gr := range g.Of(p) {
			if gr.Grantee == grantee {
				out = append(out, gr)
			}
		}
	}
	return out
}

// HasLink implements rbac.RoleManager: name1 is the grantee, name2 the
// permission "Type.p", the domain the patient.
func (g *Grants) HasLink(name1, name2 string, domain ...string) (bool, error) {
	if len(domain) != 1 {
		return false, errors.New("consent: a link needs a patient domain")
	}
	typ, letter, ok := strings.Cut(name2, ".")
	if !ok || len(letter) != 1 {
		return false, nil
	}
	want, err := parsePerms(letter)
	if err != nil {
		return false, nil
	}
	now := g.now().Unix()
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, x := range g.byPatient[domain[0]][name1] {
		if x.covers(typ, want, now) {
			return true, nil
		}
	}
	return false, nil
}

// covers reports whether the grant allows perm on typ at now.
func (x grant) covers(typ string, perm Perm, now int64) bool {
	return x.perms&perm != 0 && (x.typ == typ || x.typ == "*") && x.expiry > now
}

// latestExpiry is the latest expiry (Unix seconds) of patient's grants to
// grantee that cover perm on typ and are live at now: until then a
// decision that allowed stays true.
func (g *Grants) latestExpiry(grantee, patient, typ string, perm Perm, now int64) int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var until int64
	for _, x := range g.byPatient[patient][grantee] {
		if x.covers(typ, perm, now) {
			until = max(until, x.expiry)
		}
	}
	return until
}

var errManagedByFollower = errors.New("consent: grants change only through the consent follower")

// The rest of rbac.RoleManager: grants are not managed through Casbin's
// policy API, so links cannot be added or removed that way.

func (g *Grants) Clear() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.gen.Add(1)
	g.byPatient, g.byGrantee, g.n = map[string]map[string][]grant{}, map[string]map[string]int{}, 0
	return nil
}
func (g *Grants) AddLink(string, string, ...string) error           { return errManagedByFollower }
func (g *Grants) BuildRelationship(string, string, ...string) error { return errManagedByFollower }
func (g *Grants) DeleteLink(string, string, ...string) error        { return errManagedByFollower }
func (g *Grants) GetRoles(name string, domain ...string) ([]string, error) {
	if len(domain) != 1 {
		return nil, nil
	}
	var out []string
	for _, gr := range g.Of(domain[0]) {
		if gr.Grantee == name {
			out = append(out, gr.Scope)
		}
	}
	return out, nil
}
func (g *Grants) GetUsers(string, ...string) ([]string, error) { return nil, nil }
func (g *Grants) GetImplicitRoles(n string, d ...string) ([]string, error) {
	return g.GetRoles(n, d...)
}
func (g *Grants) GetImplicitUsers(string, ...string) ([]string, error) { return nil, nil }
func (g *Grants) GetDomains(name string) ([]string, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []string
	for p := range g.byGrantee[name] {
		out = append(out, p)
	}
	return out, nil
}
func (g *Grants) GetAllDomains() ([]string, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]string, 0, len(g.byPatient))
	for p := range g.byPatient {
		out = append(out, p)
	}
	return out, nil
}
func (g *Grants) PrintRoles() error                               { return nil }
func (g *Grants) SetLogger(log.Logger)                            {}
func (g *Grants) Match(str, pattern string) bool                  { return str == pattern }
func (g *Grants) AddMatchingFunc(string, rbac.MatchingFunc)       {}
func (g *Grants) AddDomainMatchingFunc(string, rbac.MatchingFunc) {}
func (g *Grants) DeleteDomain(string) error                       { return errManagedByFollower }

// Link conditions: a grant's validity is its expiry, kept with the grant.

func (g *Grants) AddLinkConditionFunc(string, string, rbac.LinkConditionFunc)               {}
func (g *Grants) SetLinkConditionFuncParams(string, string, ...string)                      {}
func (g *Grants) AddDomainLinkConditionFunc(string, string, string, rbac.LinkConditionFunc) {}
func (g *Grants) SetDomainLinkConditionFuncParams(string, string, string, ...string)        {}
