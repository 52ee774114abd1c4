package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// ack is one write the gateway acknowledged.
type ack struct {
	id, marker string
	vid        int
}

// TestCrashSafety writes from 32 concurrent clients, kills the gateway
// with SIGKILL at random moments, restarts it, and proves that every
// acknowledged write is readable with its acknowledged versionId and that
// each resource's history is intact (versions 1..n, none missing).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test skipped in -short mode")
	}
	const clients, cycles = 32, 5
	gw := testgateway.Start(t, "")
	tok := gw.Token(t, "system/*.cruds")
	base := atomic.Pointer[string]{}
	b := gw.Base
	base.Store(&b)

	var (
		mu    sync.Mutex
		acks  []ack
		stats struct{ ok, failed atomic.Int64 }
	)
	hc := &http.Client{Timeout: 10 * time.Second}
	send := func(method, path string, body []byte) (int, http.Header, error) {
		req, _ := http.NewRequest(method, *base.Load()+"/"+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
		res, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header, nil
	}

	for cycle := 0; cycle < cycles; cycle++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				var mine []string // resources this client created
				for seq := 0; ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					marker := fmt.Sprintf("c%d-y%d-s%d", c, cycle, seq)
					var status int
					var hdr http.Header
					var err error
					id := ""
					if len(mine) == 0 || rand.IntN(3) == 0 {
						status, hdr, err = send("POST", "Patient", patient("", marker))
					} else {
						id = mine[rand.IntN(len(mine))]
						status, hdr, err = send("PUT", "Patient/"+id, patient(id, marker))
					}
					if err != nil || (status != 200 && status != 201) {
						stats.failed.Add(1)
						time.Sleep(5 * time.Millisecond)
						continue
					}
					// Acknowledged: the Location says which version.
					loc := hdr.Get("Location")
					if loc == "" {
						loc = hdr.Get("Content-Location")
					}
					parts := strings.Split(loc, "/")
					if len(parts) < 4 {
						t.Errorf("no Location on an acknowledged write: %v", hdr)
						return
					}
					vid, _ := strconv.Atoi(parts[len(parts)-1])
					id = parts[len(parts)-3]
					if status == 201 {
						mine = append(mine, id)
					}
					stats.ok.Add(1)
					mu.Lock()
					acks = append(acks, ack{id: id, marker: marker, vid: vid})
					mu.Unlock()
				}
			}(c)
		}
		time.Sleep(time.Duration(300+rand.IntN(1200)) * time.Millisecond)
		gw.Kill() // in the middle of writes
		close(stop)
		wg.Wait()
		if err := gw.Restart(); err != nil {
			t.Fatalf("restart after kill %d: %v", cycle, err)
		}
		b := gw.Base
		base.Store(&b)
		verify(t, gw.Base, tok, acks)
		t.Logf("cycle %d: %d acknowledged writes so far, %d failed during the kills", cycle, stats.ok.Load(), stats.failed.Load())
	}
	if len(acks) < clients*cycles {
		t.Fatalf("only %d acknowledged writes: the test did not exercise the gateway", len(acks))
	}
}

// verify reads back every acknowledged version and checks every history.
func verify(t *testing.T, base, tok string, acks []ack) {
	t.Helper()
	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+"/"+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	maxVid := map[string]int{}
	for _, a := range acks {
		status, body := get(fmt.Sprintf("Patient/%s/_history/%d", a.id, a.vid))
		if status != 200 || !bytes.Contains(body, []byte(`"`+a.marker+`"`)) {
			t.Fatalf("acknowledged Patient/%s version %d (%s) lost: %d %.200s", a.id, a.vid, a.marker, status, body)
		}
		maxVid[a.id] = max(maxVid[a.id], a.vid)
	}
	for id, n := range maxVid {
		status, body := get("Patient/" + id + "/_history?_count=1000")
		if status != 200 {
			t.Fatalf("history of %s: %d", id, status)
		}
		// Versions are numbered 1..current with none missing.
		cur := bytes.Count(body, []byte(`"versionId":"`))
		for v := 1; v <= cur; v++ {
			if !bytes.Contains(body, []byte(`"versionId":"`+strconv.Itoa(v)+`"`)) {
				t.Fatalf("history of %s lacks version %d of %d", id, v, cur)
			}
		}
		if cur < n {
			t.Fatalf("history of %s has %d versions, but version %d was acknowledged", id, cur, n)
		}
	}
}

func patient(id, marker string) []byte {
	idPart := ""
	if id != "" {
		idPart = `"id":"` + id + `",`
	}
	return []byte(`{"resourceType":"Patient",` + idPart + `"name":[{"family":"Crash","given":["` + marker + `"]}]}`)
}
