package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/casbin/casbin/v2/log"
	"github.com/casbin/casbin/v2/rbac"
)

// Grant is one consent as mirrored from the chain.
type Grant struct {
	Patient, Grantee, Scope string // "Patient/1", "Practitioner/2", "DiagnosticReport.rs"
	Expiry                  time.Time
}

// Grants holds the mirrored grants and serves them to Casbin as role
// links: HasLink(grantee, "Type.p", patient) is true while a live grant
// of patient to grantee covers permission p on Type (or on "*").
//
// Grants are records in one slice, named by interned ids and threaded on
// three lists (same patient and grantee, same patient, same grantee)
// whose heads are in maps of integers: nothing in it holds a pointer per
// grant, so a million grants cost the garbage collector next to nothing
// (see names) and about 100 bytes each.
type Grants struct {
	gen  atomic.Uint64 // bumped by every change
	mu   sync.RWMutex
	now  func() time.Time
	n    int
	star uint32 // the id of "*", the type of a grant on every type

	names     *names
	recs      []grant              // recs[0] is unused: index 0 ends a list
	free      []uint32             // removed records, for reuse
	byPair    map[[2]uint32]uint32 // (patient, grantee) → first record
	byPatient map[uint32]uint32    // patient → first record
	byGrantee map[uint32]uint32    // grantee → first record
}

type grant struct {
	patient, grantee, typ uint32 // name ids
	perms                 Perm
	expiry                int64 // Unix seconds

	nextPair         uint32 // the list of this (patient, grantee)
	prevPat, nextPat uint32 // the list of this patient
	prevGr, nextGr   uint32 // the list of this grantee
}

var _ rbac.ConditionalRoleManager = (*Grants)(nil)

func newGrants(now func() time.Time) *Grants {
	g := &Grants{now: now}
	g.reset()
	return g
}

func (g *Grants) reset() {
	g.names = newNames()
	g.star = g.names.intern("*")
	g.recs, g.free, g.n = make([]grant, 1), nil, 0
	g.byPair, g.byPatient, g.byGrantee = map[[2]uint32]uint32{}, map[uint32]uint32{}, map[uint32]uint32{}
}

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
	p, e, t := g.names.intern(gr.Patient), g.names.intern(gr.Grantee), g.names.intern(typ)
	pair := [2]uint32{p, e}
	for i := g.byPair[pair]; i != 0; i = g.recs[i].nextPair {
		if r := &g.recs[i]; r.typ == t && r.perms == perms {
			r.expiry = gr.Expiry.Unix()
			return nil
		}
	}
	var i uint32
	if k := len(g.free); k > 0 {
		i, g.free = g.free[k-1], g.free[:k-1]
	} else {
		i = uint32(len(g.recs))
		g.recs = append(g.recs, grant{})
	}
	g.recs[i] = grant{patient: p, grantee: e, typ: t, perms: perms, expiry: gr.Expiry.Unix(), nextPair: g.byPair[pair]}
	g.byPair[pair] = i
	g.push(g.byPatient, p, i, patientLinks)
	g.push(g.byGrantee, e, i, granteeLinks)
	g.n++
	return nil
}

// The two doubly linked lists a record is on: its patient's and its
// grantee's (the pair list is singly linked).
func patientLinks(r *grant) (prev, next *uint32) { return &r.prevPat, &r.nextPat }
func granteeLinks(r *grant) (prev, next *uint32) { return &r.prevGr, &r.nextGr }

// push puts record i first on k's list.
func (g *Grants) push(heads map[uint32]uint32, k, i uint32, links func(*grant) (*uint32, *uint32)) {
	_, next := links(&g.recs[i])
	*next = heads[k]
	if *next != 0 {
		prev, _ := links(&g.recs[*next])
		*prev = i
	}
	heads[k] = i
}

// unlink takes record i off k's list.
func (g *Grants) unlink(heads map[uint32]uint32, k, i uint32, links func(*grant) (*uint32, *uint32)) {
	prev, next := links(&g.recs[i])
	p, n := *prev, *next
	if p != 0 {
		_, pn := links(&g.recs[p])
		*pn = n
	} else {
		setHead(heads, k, n)
	}
	if n != 0 {
		np, _ := links(&g.recs[n])
		*np = p
	}
}

// Remove deletes a grant and reports whether it existed.
func (g *Grants) Remove(patient, grantee, scope string) bool {
	typ, perms, err := ParseScope(scope)
	if err != nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	p, e, t := g.names.lookup(patient), g.names.lookup(grantee), g.names.lookup(typ)
	if p == 0 || e == 0 || t == 0 {
		return false
	}
	pair := [2]uint32{p, e}
	var prev uint32
	i := g.byPair[pair]
	for i != 0 && (g.recs[i].typ != t || g.recs[i].perms != perms) {
		prev, i = i, g.recs[i].nextPair
	}
	if i == 0 {
		return false
	}
	defer g.gen.Add(1)
	if next := g.recs[i].nextPair; prev != 0 {
		g.recs[prev].nextPair = next
	} else {
		setHead(g.byPair, pair, next)
	}
	g.unlink(g.byPatient, p, i, patientLinks)
	g.unlink(g.byGrantee, e, i, granteeLinks)
	g.recs[i] = grant{}
	g.free = append(g.free, i)
	g.n--
	return true
}

// setHead makes i the first record of k's list, or drops k if i is 0.
func setHead[K comparable](m map[K]uint32, k K, i uint32) {
	if i == 0 {
		delete(m, k)
	} else {
		m[k] = i
	}
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
	return g.list(g.byPatient, g.names.lookup(patient), patientLinks)
}

// To lists the live grants a grantee holds, from every patient.
func (g *Grants) To(grantee string) []Grant {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.list(g.byGrantee, g.names.lookup(grantee), granteeLinks)
}

// list returns the live grants on k's list, sorted by grantee, patient
// and scope.
func (g *Grants) list(heads map[uint32]uint32, k uint32, links func(*grant) (*uint32, *uint32)) []Grant {
	if k == 0 {
		return nil
	}
	now := g.now().Unix()
	var out []Grant
	next := func(i uint32) uint32 { _, n := links(&g.recs[i]); return *n }
	for i := heads[k]; i != 0; i = next(i) {
		if r := &g.recs[i]; r.expiry > now {
			out = append(out, Grant{Patient: g.names.name(r.patient), Grantee: g.names.name(r.grantee),
				Scope: g.names.name(r.typ) + "." + r.perms.String(), Expiry: time.Unix(r.expiry, 0)})
		}
	}
	slices.SortFunc(out, func(a, b Grant) int {
		return cmpStrings(a.Grantee, b.Grantee, a.Patient, b.Patient, a.Scope, b.Scope)
	})
	return out
}

func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
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
	return g.latestExpiry(name1, domain[0], typ, want, g.now().Unix()) != 0, nil
}

// latestExpiry is the latest expiry (Unix seconds) of patient's grants to
// grantee that cover perm on typ and are live at now, or 0 if none is:
// until then a decision that allowed stays true.
func (g *Grants) latestExpiry(grantee, patient, typ string, perm Perm, now int64) int64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, e := g.names.lookup(patient), g.names.lookup(grantee)
	if p == 0 || e == 0 {
		return 0
	}
	t := g.names.lookup(typ) // 0 if no grant names typ: only "*" can cover it
	var until int64
	for i := g.byPair[[2]uint32{p, e}]; i != 0; i = g.recs[i].nextPair {
		if r := &g.recs[i]; r.perms&perm != 0 && (r.typ == t || r.typ == g.star) && r.expiry > now {
			until = max(until, r.expiry)
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
	g.reset()
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
	var out []string
	for _, gr := range g.To(name) {
		if len(out) == 0 || out[len(out)-1] != gr.Patient {
			out = append(out, gr.Patient)
		}
	}
	return out, nil
}
func (g *Grants) GetAllDomains() ([]string, error) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]string, 0, len(g.byPatient))
	for p := range g.byPatient {
		out = append(out, g.names.name(p))
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
