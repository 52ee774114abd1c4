// Reconciling the policy mirror with the rows, the identities and the
// clock.

package consent

import (
	"container/heap"
	"math"
	"slices"
	"time"

	"github.com/fhirgate/fhirgate/policy"
)

type triple struct{ patient, grantee, scope string }

type keyExpiry struct {
	k   gkey
	exp uint64
}

// setRowLocked stores r (nil: deletes) in memory and the indexes.
func (f *Follower) setRowLocked(k gkey, r *row) {
	if r == nil {
		delete(f.rows, k)
		if m := f.byPatient[k.Patient]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(f.byPatient, k.Patient)
				delete(f.unknown, k.Patient)
			}
		}
		if m := f.byGrantee[k.Grantee]; m != nil {
			delete(m, k)
			if len(m) == 0 {
				delete(f.byGrantee, k.Grantee)
			}
		}
		return
	}
	f.rows[k] = r
	m := f.byPatient[k.Patient]
	if m == nil {
		m = map[gkey]struct{}{}
		f.byPatient[k.Patient] = m
	}
	m[k] = struct{}{}
	m = f.byGrantee[k.Grantee]
	if m == nil {
		m = map[gkey]struct{}{}
		f.byGrantee[k.Grantee] = m
	}
	m[k] = struct{}{}
}

// reconcileLocked makes the policy mirror agree with the row of k, the
// directory and the clock, and marks k's projection for review.
func (f *Follower) reconcileLocked(k gkey, now int64) {
	if !f.adopting {
		f.dirty[k] = struct{}{}
	}
	r := f.rows[k]
	var want triple
	ok := false
	if r.active(now) {
		p, okp := f.patients[k.Patient]
		g, okg := f.grantees[k.Grantee]
		s, oks := ScopeName(k.Scope)
		if !okp {
			if _, seen := f.unknown[k.Patient]; !seen {
				f.unknown[k.Patient] = time.Time{}
			}
		}
		if okp && okg && oks {
			want, ok = triple{p, g, s}, true
		}
	}
	old, had := f.applied[k]
	if had && (!ok || old != want) {
		delete(f.applied, k)
		f.triples[old] = slices.DeleteFunc(f.triples[old], func(x keyExpiry) bool { return x.k == k })
		f.syncTripleLocked(old)
	}
	if ok {
		f.applied[k] = want
		list := f.triples[want]
		i := slices.IndexFunc(list, func(x keyExpiry) bool { return x.k == k })
		if i < 0 {
			list = append(list, keyExpiry{k: k, exp: r.Expiry})
		} else {
			list[i].exp = r.Expiry
		}
		f.triples[want] = list
		f.syncTripleLocked(want)
		if r.Expiry <= math.MaxInt64 && f.expAt[k] != int64(r.Expiry) {
			f.expAt[k] = int64(r.Expiry)
			heap.Push(&f.exp, expEntry{at: int64(r.Expiry), k: k})
		}
	}
}

// syncTripleLocked writes one (patient, grantee, scope) to the policy
// mirror: several wallets of one patient may grant the same thing, so the
// latest expiry among the live grants counts.
func (f *Follower) syncTripleLocked(t triple) {
	m := f.triples[t]
	if len(m) == 0 {
		delete(f.triples, t)
		f.cfg.Grants.Remove(t.patient, t.grantee, t.scope)
		return
	}
	var latest uint64
	for _, e := range m {
		latest = max(latest, e.exp)
	}
	if err := f.cfg.Grants.Set(policy.Grant{Patient: t.patient, Grantee: t.grantee, Scope: t.scope, Expiry: expiryTime(latest)}); err != nil {
		f.log.Error("consent: policy refused a grant", "scope", t.scope, "err", err)
	}
}
