package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestAuditSurvivesCrash (issue 14, finding 6): many concurrent reads,
// the gateway killed with SIGKILL in the middle of them, restarted; then
// every read that was answered 200 has its AuditEvent. A response never
// leaves before its event (and the event's log leaf) is on disk, so a
// crash may leave events of reads whose answer was lost, never an answer
// without its event.
//
// Reads are counted per patient (each read names exactly one Patient);
// after the restart a regulator counts the read events naming each
// patient, which must be at least the 200s the clients received.
func TestAuditSurvivesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	const clients, patients, cycles = 48, 32, 3
	gw := testgateway.Start(t, "")
	tok := gw.Token(t, "system/*.cruds")
	reg := gw.Token(t, "", "--role", "regulator")

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	do := func(base, tok, method, path string, body io.Reader) (int, []byte, error) {
		req, _ := http.NewRequest(method, base+"/"+path, body)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/fhir+json")
		res, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, b, err
	}
	ids := make([]string, patients)
	for i := range ids {
		ids[i] = fmt.Sprintf("audited-%d", i)
		status, b, err := do(gw.Base, tok, "PUT", "Patient/"+ids[i], strings.NewReader(`{"resourceType":"Patient","id":"`+ids[i]+`"}`))
		if err != nil || status != 201 {
			t.Fatalf("PUT Patient/%s: %d %v %s", ids[i], status, err, b)
		}
	}

	acked := make([]atomic.Int64, patients) // reads answered 200, per patient
	var total atomic.Int64
	for cycle := range cycles {
		base := gw.Base
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := rand.IntN(patients)
					status, _, err := do(base, tok, "GET", "Patient/"+ids[i], nil)
					if err == nil && status == 200 {
						acked[i].Add(1)
						total.Add(1)
					} else if err == nil {
						t.Errorf("GET Patient/%s: %d", ids[i], status)
						return
					}
				}
			}()
		}
		// Kill once the reads are well under way.
		time.Sleep(time.Duration(700+rand.IntN(800)) * time.Millisecond)
		gw.Kill()
		close(stop)
		wg.Wait()
		if err := gw.Restart(); err != nil {
			t.Fatalf("restart after kill %d: %v", cycle, err)
		}
		missing := 0
		for i, id := range ids {
			q := url.Values{"entity": {"Patient/" + id}, "subtype": {"http://hl7.org/fhir/restful-interaction|read"},
				"outcome": {"0"}, "_summary": {"count"}}
			status, b, err := do(gw.Base, reg, "GET", "AuditEvent?"+q.Encode(), nil)
			if err != nil || status != 200 {
				t.Fatalf("count of the read events of Patient/%s: %d %v %s", id, status, err, b)
			}
			var bundle struct {
				Total *int64 `json:"total"`
			}
			if err := json.Unmarshal(b, &bundle); err != nil || bundle.Total == nil {
				t.Fatalf("count of the read events of Patient/%s: %v %s", id, err, b)
			}
			if n := acked[i].Load(); *bundle.Total < n {
				if missing == 0 {
					t.Errorf("cycle %d: Patient/%s was read %d times with a 200, but only %d read events exist", cycle, id, n, *bundle.Total)
				}
				missing += int(n - *bundle.Total)
			}
		}
		t.Logf("cycle %d: %d reads answered 200 so far; %d of them without an AuditEvent", cycle, total.Load(), missing)
		if missing > 0 {
			t.Fatalf("%d reads answered 200 have no AuditEvent after kill -9", missing)
		}
	}
	if total.Load() < clients*cycles*10 {
		t.Fatalf("only %d reads answered: the test did not exercise the gateway", total.Load())
	}
}
