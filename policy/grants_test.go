package policy

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestGrantsMatchAModel drives Grants and a plain map with the same random
// grants, re-grants, revocations and clock, and compares every answer.
// With a hash of four values nearly every name collides, so the collision
// path of names is as much under test as the common one.
func TestGrantsMatchAModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		hash func(string) uint64
	}{
		{"maphash", nil},
		{"colliding", func(s string) uint64 { return uint64(len(s) % 4) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			clock := int64(1_000_000)
			g := newGrants(func() time.Time { return time.Unix(clock, 0) })
			if tc.hash != nil {
				g.names = &names{hash: tc.hash, ids: map[uint64]uint32{}, ends: []uint32{0}}
				g.star = g.names.intern("*")
			}
			type key struct{ patient, grantee, scope string }
			model := map[key]int64{}
			patients := []string{"Patient/a", "Patient/bb", "Patient/ccc", "Patient/dddd", "Patient/e"}
			grantees := []string{"Practitioner/x", "Practitioner/yy", "client/ehr", "Organization/o"}
			scopes := []string{"DiagnosticReport.rs", "DiagnosticReport.r", "*.r", "Observation.cruds", "*.s", "Patient.rs"}
			pick := func(s []string) string { return s[r.IntN(len(s))] }
			for step := 0; step < 20_000; step++ {
				k := key{pick(patients), pick(grantees), pick(scopes)}
				switch op := r.IntN(10); {
				case op < 5:
					exp := clock + int64(r.IntN(20))
					if err := g.Set(Grant{Patient: k.patient, Grantee: k.grantee, Scope: k.scope, Expiry: time.Unix(exp, 0)}); err != nil {
						t.Fatal(err)
					}
					model[k] = exp
				case op < 8:
					_, had := model[k]
					if got := g.Remove(k.patient, k.grantee, k.scope); got != had {
						t.Fatalf("step %d: Remove%v = %v, want %v", step, k, got, had)
					}
					delete(model, k)
				default:
					clock += int64(r.IntN(3))
				}
				if g.Len() != len(model) {
					t.Fatalf("step %d: Len %d, want %d", step, g.Len(), len(model))
				}
				// Every question about one patient and grantee.
				p, e := pick(patients), pick(grantees)
				for _, typ := range []string{"DiagnosticReport", "Observation", "Patient", "Appointment"} {
					for _, perm := range []Perm{PermCreate, PermRead, PermUpdate, PermDelete, PermSearch} {
						var want int64
						for k, exp := range model {
							mt, mp, _ := ParseScope(k.scope)
							if k.patient == p && k.grantee == e && (mt == typ || mt == "*") && mp&perm != 0 && exp > clock {
								want = max(want, exp)
							}
						}
						if got := g.latestExpiry(e, p, typ, perm, clock); got != want {
							t.Fatalf("step %d: latestExpiry(%s, %s, %s, %s) = %d, want %d", step, e, p, typ, perm, got, want)
						}
						if ok, _ := g.HasLink(e, typ+"."+perm.String(), p); ok != (want != 0) {
							t.Fatalf("step %d: HasLink(%s, %s.%s, %s) = %v", step, e, typ, perm, p, ok)
						}
					}
				}
				// The listings.
				var of, to []Grant
				for k, exp := range model {
					if exp <= clock {
						continue
					}
					gr := Grant{Patient: k.patient, Grantee: k.grantee, Scope: canonicalScope(k.scope), Expiry: time.Unix(exp, 0)}
					if k.patient == p {
						of = append(of, gr)
					}
					if k.grantee == e {
						to = append(to, gr)
					}
				}
				byKey := func(a, b Grant) int {
					return cmpStrings(a.Grantee, b.Grantee, a.Patient, b.Patient, a.Scope, b.Scope)
				}
				slices.SortFunc(of, byKey)
				slices.SortFunc(to, byKey)
				if got := g.Of(p); !slices.Equal(got, of) {
					t.Fatalf("step %d: Of(%s) = %v, want %v", step, p, got, of)
				}
				if got := g.To(e); !slices.Equal(got, to) {
					t.Fatalf("step %d: To(%s) = %v, want %v", step, e, got, to)
				}
			}
			if tc.hash != nil && len(g.names.other) == 0 {
				t.Fatal("the colliding hash caused no collision")
			}
		})
	}
}

// canonicalScope writes a scope's permissions in cruds order.
func canonicalScope(s string) string {
	typ, p, _ := ParseScope(s)
	return typ + "." + p.String()
}

// TestGrantsHeap: a million grants stay small and nearly invisible to the
// garbage collector (the reason for names and the record slice); as
// nested maps of strings they took 533 MB in 5,000,000 objects.
func TestGrantsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("a million grants")
	}
	objs0, bytes0 := heap()
	g := newGrants(time.Now)
	for i := 0; i < 1_000_000; i++ {
		g.Set(Grant{Patient: fmt.Sprintf("Patient/%d", i), Grantee: fmt.Sprintf("Practitioner/%d", i%5000), Scope: "DiagnosticReport.rs", Expiry: Forever})
	}
	objs, bytes := heap()
	runtime.KeepAlive(g)
	objs, bytes = objs-objs0, bytes-bytes0
	t.Logf("1,000,000 grants: %d heap objects, %d MB", objs, bytes>>20)
	if objs > 100_000 || bytes > 250<<20 {
		t.Fatalf("%d heap objects, %d MB for a million grants", objs, bytes>>20)
	}
}

func heap() (objects, bytes uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapObjects, m.HeapAlloc
}

// TestConsentConcurrent: decisions race with grants and revocations; once
// the writers stop, every answer is the current one (no remembered answer
// outlives the change that ended it).
func TestConsentConcurrent(t *testing.T) {
	c, err := NewConsent(time.Now)
	if err != nil {
		t.Fatal(err)
	}
	g := c.Grants()
	patient := func(i int) string { return fmt.Sprintf("Patient/%d", i%50) }
	done := make(chan struct{})
	var readers sync.WaitGroup
	for w := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := w; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				c.Allowed("Practitioner/doc", patient(i), "Observation", PermRead)
			}
		}()
	}
	for i := range 5_000 {
		if i%3 == 0 {
			g.Remove(patient(i*7), "Practitioner/doc", "Observation.rs")
		} else {
			g.Set(Grant{Patient: patient(i * 7), Grantee: "Practitioner/doc", Scope: "Observation.rs", Expiry: Forever})
		}
	}
	close(done)
	readers.Wait()
	for i := range 50 {
		want := len(g.Of(patient(i))) == 1
		if got := c.Allowed("Practitioner/doc", patient(i), "Observation", PermRead); got != want {
			t.Errorf("%s: allowed %v, granted %v", patient(i), got, want)
		}
	}
}
