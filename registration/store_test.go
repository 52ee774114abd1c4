package registration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fhirgate/fhirgate/store/pebble"
)

func newStore(t *testing.T) (*Store, *Store) {
	t.Helper()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: t.TempDir(), CacheBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// Two handles on one engine: two replicas' views of one store.
	return New(db, nil), New(db, nil)
}

const walletA = "eip155:1337:0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

func patientAsserted(t *testing.T) Asserted {
	_, a, err := ParseRequest([]byte(okPatient), now)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOnePendingPerWallet(t *testing.T) {
	a, b := newStore(t)
	ctx := context.Background()
	as := patientAsserted(t)
	// Two replicas submit for one wallet at once (the address in another
	// case on the second): one request is taken.
	var ok, pending atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, w := a, walletA
			if i%2 == 1 {
				s, w = b, "eip155:1:0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
			}
			_, err := s.Submit(ctx, w, Patient, as)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrPending):
				pending.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || pending.Load() != 7 {
		t.Fatalf("%d taken, %d refused as pending", ok.Load(), pending.Load())
	}
	mine, err := a.ByWallet(ctx, walletA)
	if err != nil || len(mine) != 1 {
		t.Fatalf("ByWallet: %d %v", len(mine), err)
	}
}

func TestAtMostTwentyPerWallet(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	as := patientAsserted(t)
	for i := range MaxPerWallet {
		r, err := s.Submit(ctx, walletA, Patient, as)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if _, _, err := s.Update(ctx, r.ID, func(r *Request, _ **Link) error { r.Status = Withdrawn; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Submit(ctx, walletA, Patient, as); !errors.Is(err, ErrTooMany) {
		t.Fatalf("request %d: %v, want ErrTooMany", MaxPerWallet+1, err)
	}
	mine, err := s.ByWallet(ctx, walletA)
	if err != nil || len(mine) != MaxPerWallet {
		t.Fatalf("ByWallet: %d %v", len(mine), err)
	}
	for i := 1; i < len(mine); i++ {
		if mine[i].Submitted.After(mine[i-1].Submitted) {
			t.Fatal("not newest first")
		}
	}
}

// TestOneTransition: replicas racing to verify, reject and withdraw one
// request make exactly one transition.
func TestOneTransition(t *testing.T) {
	a, b := newStore(t)
	ctx := context.Background()
	r, err := a.Submit(ctx, walletA, Patient, patientAsserted(t))
	if err != nil {
		t.Fatal(err)
	}
	errFinal := errors.New("final")
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []*Store{a, b}[i%2]
			to := []Status{Verified, Rejected, Withdrawn}[i%3]
			_, _, err := s.Update(ctx, r.ID, func(r *Request, _ **Link) error {
				if r.Status != Pending {
					return errFinal
				}
				r.Status = to
				r.History = append(r.History, Entry{Action: string(to)})
				return nil
			})
			switch {
			case err == nil:
				won.Add(1)
			case !errors.Is(err, errFinal):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, _, err := a.Get(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if won.Load() != 1 || got.Status == Pending || len(got.History) != 2 {
		t.Fatalf("%d transitions; status %s, history %+v", won.Load(), got.Status, got.History)
	}
	// The pending key went with the transition: the wallet may ask again.
	if _, err := b.Submit(ctx, walletA, Patient, patientAsserted(t)); err != nil {
		t.Fatalf("a new request after the first was decided: %v", err)
	}
}

func TestListPages(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	as := patientAsserted(t)
	_, pa, err := ParseRequest([]byte(okPractitioner), now)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 7 {
		w := "eip155:1:0x" + string(rune('a'+i)) + "000000000000000000000000000000000000000"
		k, a := Patient, as
		if i%2 == 0 {
			k, a = Practitioner, pa
		}
		r, err := s.Submit(ctx, w, k, a)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.ID)
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		rs, next, err := s.List(ctx, Pending, "", 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = next
	}
	if len(got) != len(want) {
		t.Fatalf("listed %v, want %v (oldest first)", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("listed %v, want %v (oldest first)", got, want)
		}
	}
	pr, _, err := s.List(ctx, Pending, Patient, 50, "")
	if err != nil || len(pr) != 3 {
		t.Fatalf("patients: %d %v", len(pr), err)
	}
	if _, _, err := s.List(ctx, Pending, "", 3, "!!"); !errors.Is(err, ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

// TestStoredForm: what the store keeps decodes to what was submitted, and
// the link stays out of the request as served.
func TestStoredForm(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	r, err := s.Submit(ctx, walletA, Patient, patientAsserted(t))
	if err != nil {
		t.Fatal(err)
	}
	r2, link, err := s.Update(ctx, r.ID, func(r *Request, l **Link) error {
		r.Status, r.Record, *l = Verified, "Patient/p1", &Link{Record: "Patient/p1", Create: true}
		return nil
	})
	if err != nil || link == nil || !link.Create {
		t.Fatalf("update: %+v %v", link, err)
	}
	b, _ := json.Marshal(r2)
	if contains(b, "link") || !contains(b, `"record":"Patient/p1"`) {
		t.Fatalf("served form: %s", b)
	}
	if got, err := s.ForRecord(ctx, "Patient/p1"); err != nil || got == nil || got.ID != r.ID {
		t.Fatalf("ForRecord: %+v %v", got, err)
	}
	// Undone: the record no longer names the request.
	if _, _, err := s.Update(ctx, r.ID, func(r *Request, l **Link) error {
		r.Status, r.Record, *l = Pending, "", nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ForRecord(ctx, "Patient/p1"); err != nil || got != nil {
		t.Fatalf("ForRecord after an undo: %+v %v", got, err)
	}
	if err := s.AccountEntry(ctx, "Patient/p1", Entry{At: now, Action: ActWalletReplace, By: ByAdmin}); err != nil {
		t.Fatal(err)
	}
	es, err := s.AccountEntries(ctx, "Patient/p1")
	if err != nil || len(es) != 1 || es[0].Action != ActWalletReplace {
		t.Fatalf("AccountEntries: %+v %v", es, err)
	}
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func TestLinkWallet(t *testing.T) {
	const other = "eip155:1:0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
	body := []byte(`{"active":false,"identifier":[{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"` + other + `"},{"system":"urn:x","value":"1"}],"meta":{"versionId":"2"},"resourceType":"Practitioner"}`)
	if _, _, err := LinkWallet(body, walletA, false); !errors.Is(err, ErrOtherWallet) {
		t.Fatalf("another wallet's record linked without replaceWallet: %v", err)
	}
	out, replaced, err := LinkWallet(body, walletA, true)
	if err != nil || !replaced {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	if contains(out, other) || !contains(out, walletA) || !contains(out, `"active":true`) || !contains(out, "urn:x") || contains(out, "meta") {
		t.Fatalf("replaced: %s", out)
	}
	again, _, err := LinkWallet(out, walletA, false)
	if err != nil || again != nil {
		t.Fatalf("linking again writes %s, %v", again, err)
	}
}

// The whole queue is bounded: new wallets cost nothing, so MaxPending
// waiting requests refuse the next one (from any wallet) until one is
// decided or withdrawn.
func TestQueueBounded(t *testing.T) {
	s, other := newStore(t)
	ctx := context.Background()
	as := patientAsserted(t)
	var first *Request
	for i := range MaxPending {
		kind := Patient
		if i%2 == 1 {
			kind = Practitioner // both kinds count
		}
		r, err := s.Submit(ctx, fmt.Sprintf("eip155:1337:0x%040x", i+1), kind, as)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		if first == nil {
			first = r
		}
	}
	next := fmt.Sprintf("eip155:1337:0x%040x", MaxPending+1)
	if _, err := other.Submit(ctx, next, Patient, as); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("request %d: %v, want ErrQueueFull", MaxPending+1, err)
	}
	if _, _, err := s.Update(ctx, first.ID, func(r *Request, _ **Link) error { r.Status = Withdrawn; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Submit(ctx, next, Patient, as); err != nil {
		t.Fatalf("after a withdrawal: %v", err)
	}
}
