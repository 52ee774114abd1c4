package main

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/internal/redistest"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
)

// TestCluster runs the shape docker-compose.yml runs: one redis-server
// (AOF, fsync always), one geth --dev, three gateway processes on
// --store redis://… sharing one public base URL. Each subtest proves one
// thing the replicas must agree on; the last ones kill a replica and
// Redis itself.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs redis-server, geth and three gateways")
	}
	var genesis bytes.Buffer
	if code := run([]string{"dev-genesis"}, &genesis, os.Stderr); code != 0 {
		t.Fatalf("dev-genesis exited %d", code)
	}
	node := gethtest.StartDev(t, genesis.Bytes(), 1)
	rds := redistest.Start(t)
	base := fmt.Sprintf("http://127.0.0.1:%d/fhir", gethtest.FreePort(t)) // the load balancer's
	root := strings.TrimSuffix(base, "/fhir")
	prefix := redistest.Prefix(t)
	// Every replica is given the same flags, --admins too (per replica
	// configuration, as docker-compose.yml gives it).
	args := []string{"--store", rds.URL(), "--store-prefix", prefix, "--eth-rpc", node.WS, "--eth-public-rpc", node.HTTP,
		"--base-url", base, "--anchor-interval", "1s", "--eth-block-period", "1s", "--admins", chain.DevAccounts()[9].Address.Hex(),
		"--export-file-resources", fmt.Sprint(clusterExportFileResources), "--export-block-bytes", fmt.Sprint(clusterExportBlockBytes)}

	// Three replicas starting at once on an empty store: one deploys the
	// contracts and creates the keys, the others use them.
	gws := make([]*testgateway.Gateway, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range gws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gws[i], errs[i] = testgateway.StartProcess(t.TempDir(), args...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		t.Cleanup(gws[i].Stop)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, g := range gws {
				t.Logf("replica %d logs (last 3000 bytes):\n%s", i, lastBytes(g.Logs(), 3000))
			}
		}
	})
	url := func(i int) string { return gws[i%len(gws)].URL }
	var info []string
	for i := range gws {
		info = append(info, string(get(t, strings.TrimSuffix(url(i), "/fhir")+"/.well-known/fhirgate", "")))
	}
	if info[0] != info[1] || info[1] != info[2] {
		t.Fatalf("the replicas disagree on the chain and contracts:\n%s\n%s\n%s", info[0], info[1], info[2])
	}
	c := dialChain(t, strings.TrimSuffix(url(0), "/fhir"))

	ehr := gws[0].Token(t, "system/*.cruds "+policy.ScopeIdentityLinking)
	admin := gws[1].Token(t, "", "--role", "admin", "--sub", "admin/ops")
	accounts := chain.DevAccounts()
	walletID := func(a chain.Account) string {
		return fmt.Sprintf(`{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"eip155:%d:%s"}`, c.ChainID, a.Address.Hex())
	}

	t.Run("TokenMintedOnceAcceptedByEvery", func(t *testing.T) {
		for i := range gws {
			if status, body, _ := httpDo(t, "GET", url(i)+"/Patient?_count=1", ehr, nil); status != 200 {
				t.Fatalf("replica %d refused a token minted from the store: %d %s", i, status, body)
			}
		}
	})

	t.Run("ReindexRefusedWhileReplicasServe", func(t *testing.T) {
		var out bytes.Buffer
		code := run([]string{"reindex", "--store", rds.URL(), "--store-prefix", prefix}, &out, &out)
		if code != 1 || !strings.Contains(out.String(), "replicas are serving") {
			t.Fatalf("reindex while three replicas serve: exit %d: %s", code, out.String())
		}
	})

	t.Run("ReadYourWritesAcrossReplicas", func(t *testing.T) {
		id := create(t, url(0), ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"Pair0"}]}`)
		stale := 0
		const pairs = 300
		for i := 1; i <= pairs; i++ {
			body := fmt.Sprintf(`{"resourceType":"Patient","id":"%s","name":[{"family":"Pair%d"}]}`, id, i)
			status, out, h := httpDoWith(t, "PUT", url(i)+"/Patient/"+id, ehr, []byte(body), map[string]string{"If-Match": fmt.Sprintf(`W/"%d"`, i)})
			if status != 200 {
				t.Fatalf("update %d on replica %d: %d %s", i, i%3, status, out)
			}
			if want := fmt.Sprintf(`W/"%d"`, i+1); h.Get("ETag") != want {
				t.Fatalf("update %d: ETag %s, want %s", i, h.Get("ETag"), want)
			}
			var got struct {
				Meta struct{ VersionID string }
				Name []struct{ Family string }
			}
			mustJSON(t, get(t, url(i+1)+"/Patient/"+id, ehr), &got)
			if got.Meta.VersionID != fmt.Sprint(i+1) || len(got.Name) == 0 || got.Name[0].Family != fmt.Sprintf("Pair%d", i) {
				stale++
			}
		}
		if stale > 0 {
			t.Fatalf("%d of %d reads on another replica were stale", stale, pairs)
		}
	})

	t.Run("ConditionalCreateRace", func(t *testing.T) {
		for round := range 5 {
			ident := fmt.Sprintf("race-%d-%d", round, time.Now().UnixNano())
			body := []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test:race","value":"` + ident + `"}]}`)
			var ok atomic.Int32
			var wg sync.WaitGroup
			for w := range 12 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, out, _ := httpDoWith(t, "POST", url(w)+"/Patient", ehr, body, map[string]string{"If-None-Exist": "identifier=urn:test:race|" + ident})
					if status != 201 && status != 200 {
						t.Errorf("conditional create on replica %d: %d %s", w%3, status, out)
					}
					ok.Add(1)
				}()
			}
			wg.Wait()
			var bundle struct{ Total int }
			mustJSON(t, get(t, url(round)+"/Patient?identifier=urn:test:race|"+ident+"&_total=accurate", ehr), &bundle)
			if bundle.Total != 1 {
				t.Fatalf("round %d: %d resources for one conditional create raced on three replicas", round, bundle.Total)
			}
		}
	})

	t.Run("IfMatchRaceLeavesLinearHistory", func(t *testing.T) {
		id := create(t, url(0), ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"Linear"}]}`)
		for v := 1; v <= 10; v++ {
			var won atomic.Int32
			var wg sync.WaitGroup
			for w := range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := fmt.Sprintf(`{"resourceType":"Patient","id":"%s","name":[{"family":"Linear%d-%d"}]}`, id, v, w)
					status, out, _ := httpDoWith(t, "PUT", url(w)+"/Patient/"+id, ehr, []byte(body), map[string]string{"If-Match": fmt.Sprintf(`W/"%d"`, v)})
					switch status {
					case 200:
						won.Add(1)
					case 409, 412:
					default:
						t.Errorf("If-Match update: %d %s", status, out)
					}
				}()
			}
			wg.Wait()
			if won.Load() != 1 {
				t.Fatalf("version %d: %d updates won, want exactly 1", v, won.Load())
			}
		}
		var hist struct {
			Total int
			Entry []struct {
				Resource struct{ Meta struct{ VersionID string } }
			}
		}
		mustJSON(t, get(t, url(2)+"/Patient/"+id+"/_history?_count=50", ehr), &hist)
		if len(hist.Entry) != 11 {
			t.Fatalf("history has %d versions, want 11", len(hist.Entry))
		}
		for i, e := range hist.Entry {
			if want := fmt.Sprint(11 - i); e.Resource.Meta.VersionID != want {
				t.Fatalf("history entry %d is version %s, want %s", i, e.Resource.Meta.VersionID, want)
			}
		}
	})

	// People for the sign-in and consent subtests.
	patientKey, doctorKey, nextKey := accounts[4], accounts[6], accounts[5]
	patient := create(t, url(0), ehr, "Patient", `{"resourceType":"Patient","identifier":[`+walletID(patientKey)+`],"name":[{"family":"Replica"}]}`)
	doctor := create(t, url(1), admin, "Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+walletID(doctorKey)+`],"name":[{"family":"Okafor"}]}`)
	report := create(t, url(2), ehr, "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/`+patient+`"}}`)

	t.Run("SIWENonceSingleUseAcrossReplicas", func(t *testing.T) {
		var n struct{ Nonce string }
		mustJSON(t, get(t, strings.TrimSuffix(url(0), "/fhir")+"/auth/siwe/nonce", ""), &n)
		body := siweBody(t, root, c.ChainID, patientKey.Key, n.Nonce)
		if status, out := postJSON(t, strings.TrimSuffix(url(1), "/fhir")+"/auth/siwe", body); status != 200 {
			t.Fatalf("nonce from replica 0 used on replica 1: %d %s", status, out)
		}
		for i := range gws {
			if status, out := postJSON(t, strings.TrimSuffix(url(i), "/fhir")+"/auth/siwe", body); status == 200 {
				t.Fatalf("a replayed sign-in was accepted by replica %d: %s", i, out)
			}
		}
	})

	var doctorTok string
	reads := func(i int) int {
		status, _, _ := httpDo(t, "GET", url(i)+"/DiagnosticReport/"+report, doctorTok, nil)
		return status
	}
	// everyWithin waits until every replica answers want, and returns the
	// slowest replica's delay.
	everyWithin := func(t *testing.T, d time.Duration, want int, what string) time.Duration {
		t.Helper()
		start := time.Now()
		var slowest time.Duration
		for i := range gws {
			at := within(t, d, fmt.Sprintf("%s on replica %d", what, i), func() bool { return reads(i) == want })
			slowest = max(slowest, at.Sub(start))
		}
		return slowest
	}
	reg := bindings.NewConsentRegistry()
	grantee, scope := consentsig.Grantee("Practitioner/"+doctor), consentsig.Scope("DiagnosticReport.rs")
	grant := func(key chain.Account) time.Time {
		return sendTx(t, c.eth, c.ChainID, key.Key, c.registry, reg.PackGrant(grantee, scope, uint64(time.Now().Add(24*time.Hour).Unix())))
	}

	t.Run("GrantAndRevocationOnEveryReplicaWithin2s", func(t *testing.T) {
		doctorTok = signedInAt(t, root, strings.TrimSuffix(url(2), "/fhir"), c.ChainID, doctorKey.Key, "practitioner", "Practitioner/"+doctor)
		for i := range gws {
			if s := reads(i); s != 404 {
				t.Fatalf("replica %d: the doctor reads without a grant: %d", i, s)
			}
		}
		mined := grant(patientKey)
		d := everyWithin(t, 10*time.Second, 200, "the grant")
		t.Logf("grant mined → readable on all three replicas: %s", time.Since(mined).Round(time.Millisecond))
		if d > 2*time.Second {
			t.Errorf("the grant took %s to count on every replica (bar 2 s)", d)
		}
		mined = sendTx(t, c.eth, c.ChainID, patientKey.Key, c.registry, reg.PackRevoke(grantee, scope))
		d = everyWithin(t, 10*time.Second, 404, "the revocation")
		t.Logf("revocation mined → refused on all three replicas: %s", time.Since(mined).Round(time.Millisecond))
		if d > 2*time.Second {
			t.Errorf("the revocation took %s to count on every replica (bar 2 s)", d)
		}
	})

	t.Run("WalletUnlinkedOnOneRefusedOnOthersWithin1s", func(t *testing.T) {
		grant(patientKey)
		everyWithin(t, 10*time.Second, 200, "the grant")
		// The hospital replaces the patient's wallet through replica 0.
		body := `{"resourceType":"Patient","id":"` + patient + `","identifier":[` + walletID(nextKey) + `],"name":[{"family":"Replica"}]}`
		if status, out, _ := httpDo(t, "PUT", url(0)+"/Patient/"+patient, ehr, []byte(body)); status != 200 {
			t.Fatalf("unlink the wallet: %d %s", status, out)
		}
		d := everyWithin(t, 5*time.Second, 404, "the old wallet's grant to stop counting")
		t.Logf("wallet unlinked on replica 0 → its grant refused on all replicas within %s", d.Round(time.Millisecond))
		if d > time.Second {
			t.Errorf("the unlinked wallet's grant counted for %s on some replica (bar 1 s)", d)
		}
		// The old wallet signs in as nobody now, on any replica.
		if status, out := siweSignInAt(t, root, strings.TrimSuffix(url(1), "/fhir"), c.ChainID, patientKey.Key); status == 200 && bytes.Contains(out, []byte(patient)) {
			t.Fatalf("the unlinked wallet still signs in as the patient: %s", out)
		}
	})

	t.Run("PractitionerDeactivatedOnOneEndsSessionsOnEveryWithin1s", func(t *testing.T) {
		at := func(i int) string { return strings.TrimSuffix(url(i), "/fhir") }
		adminTok := signedInAt(t, root, at(1), c.ChainID, accounts[9].Key, "role", "admin")
		docKey := accounts[7]
		body := func(id string, active bool) string {
			return fmt.Sprintf(`{"resourceType":"Practitioner",%s"active":%t,"identifier":[%s],"name":[{"family":"Adeyemi"}]}`, id, active, walletID(docKey))
		}
		doc := create(t, url(0), adminTok, "Practitioner", body("", true))
		tok := signedInAt(t, root, at(2), c.ChainID, docKey.Key, "practitioner", "Practitioner/"+doc)
		status := func(i int) int {
			s, _, _ := httpDo(t, "GET", url(i)+"/Practitioner/"+doc, tok, nil)
			return s
		}
		for i := range gws { // every replica has read the record just now
			if s := status(i); s != 200 {
				t.Fatalf("replica %d before: %d", i, s)
			}
		}
		if s, out, _ := httpDo(t, "PUT", url(0)+"/Practitioner/"+doc, adminTok, []byte(body(`"id":"`+doc+`",`, false))); s != 200 {
			t.Fatalf("deactivate: %d %s", s, out)
		}
		start := time.Now()
		if s := status(0); s != 401 {
			t.Fatalf("the replica that wrote still answers %d", s)
		}
		var slowest time.Duration
		for i := 1; i < len(gws); i++ {
			slowest = max(slowest, within(t, 3*time.Second, fmt.Sprintf("the session to end on replica %d", i), func() bool { return status(i) == 401 }).Sub(start))
		}
		t.Logf("deactivated on replica 0 → the practitioner's session ended on every replica within %s", slowest.Round(time.Millisecond))
		if slowest > time.Second { // half a second of cache, plus the poll and the request
			t.Errorf("the deactivated practitioner's session lasted %s on some replica (bar 1 s)", slowest)
		}
	})

	t.Run("CreatedOnOneProvableThroughAnother", func(t *testing.T) {
		id := create(t, url(1), ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"Provable"}]}`)
		proof := waitProof(t, url(0)+"/Patient/"+id+"/_history/1/$proof", ehr)
		dir := t.TempDir()
		pf, rf := filepath.Join(dir, "proof.json"), filepath.Join(dir, "patient.json")
		os.WriteFile(pf, proof, 0o600)
		os.WriteFile(rf, get(t, url(2)+"/Patient/"+id+"/_history/1", ehr), 0o600)
		var out bytes.Buffer
		if code := run([]string{"verify", "--rpc", node.HTTP, "--proof", pf, "--resource", rf}, &out, &out); code != 0 {
			t.Fatalf("verify: %d %s", code, out.String())
		}
	})

	// Bulk Data export across the replicas (cluster_export_test.go); the
	// second kills a replica and starts it again.
	ex := newExportCluster(t, gws, base, rds.URL(), prefix, ehr, admin)
	t.Run("ExportAnyReplicaAnswers", ex.testExportAnyReplicaAnswers)
	t.Run("ExportTakenOverWhenItsReplicaDies", ex.testExportTakenOver)

	// The replica that anchors (holds the anchoring lease) is the one
	// killed: anchoring must go on from another.
	anchorer := -1
	within(t, 20*time.Second, "a replica to hold the anchoring lease", func() bool {
		for i := range gws {
			_, m, err := tryHTTP("GET", strings.TrimSuffix(url(i), "/fhir")+"/metrics", "", nil)
			if err == nil && bytes.Contains(m, []byte("\nfhirgate_anchor_is_anchorer 1")) {
				anchorer = i
				return true
			}
		}
		return false
	})
	var live []string
	for i := range gws {
		if i != anchorer {
			live = append(live, url(i))
		}
	}
	t.Run("AnchoringReplicaKilledUnderWritersLosesNothing", func(t *testing.T) {
		acked, failed := writeUnderLoad(t, 16, 3*time.Second, ehr, func(w int) string {
			return url(w) // the anchorer dies after a second: its writers' requests fail, unacknowledged
		}, func() { time.Sleep(time.Second); gws[anchorer].Kill() })
		t.Logf("replica %d (the anchorer) killed: %d writes acknowledged, %d failed", anchorer, len(acked), failed)
		checkAcked(t, acked, live, ehr)
		// Anchoring goes on from another replica: the versions written
		// before the kill and a new one become provable.
		id := create(t, live[1], ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"AfterKill"}]}`)
		start := time.Now()
		waitProof(t, live[0]+"/Patient/"+id+"/_history/1/$proof", ehr)
		t.Logf("anchored %s after the anchoring replica was killed", time.Since(start).Round(time.Millisecond))
		for id := range acked {
			waitProof(t, live[1]+"/Patient/"+id+"/_history/1/$proof", ehr)
			break
		}
	})

	t.Run("RedisStoppedAnswers503ThenResumes", func(t *testing.T) {
		before := create(t, live[0], ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"BeforeOutage"}]}`)
		rds.Stop()
		end := time.Now().Add(10 * time.Second)
		checked := 0
		for time.Now().Before(end) {
			for _, u := range live {
				for _, r := range []struct{ method, path, body string }{
					{"GET", "/Patient/" + before, ""},
					{"POST", "/Patient", `{"resourceType":"Patient","name":[{"family":"DuringOutage"}]}`},
					{"GET", "/Patient?name=Replica", ""},
				} {
					var body []byte
					if r.body != "" {
						body = []byte(r.body)
					}
					status, out, err := tryHTTP(r.method, u+r.path, ehr, body)
					if err != nil {
						t.Fatalf("%s %s while Redis is down: %v", r.method, r.path, err)
					}
					if status != 503 || !bytes.Contains(out, []byte(`"OperationOutcome"`)) {
						t.Fatalf("%s %s while Redis is down: %d %.300s (want 503 + OperationOutcome)", r.method, r.path, status, out)
					}
					checked++
				}
				if status, _, _ := tryHTTP("GET", strings.TrimSuffix(u, "/fhir")+"/readyz", "", nil); status != 503 {
					t.Fatalf("/readyz while Redis is down: %d", status)
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		rds.Restart()
		for _, u := range live {
			within(t, 20*time.Second, "readiness after Redis returned", func() bool {
				status, _, _ := tryHTTP("GET", strings.TrimSuffix(u, "/fhir")+"/readyz", "", nil)
				return status == 200
			})
			get(t, u+"/Patient/"+before, ehr)
			create(t, u, ehr, "Patient", `{"resourceType":"Patient","name":[{"family":"AfterOutage"}]}`)
		}
		var bundle struct{ Total int }
		mustJSON(t, get(t, live[0]+"/Patient?name=DuringOutage&_total=accurate", ehr), &bundle)
		if bundle.Total != 0 {
			t.Fatalf("%d writes refused with 503 during the outage were stored", bundle.Total)
		}
		t.Logf("%d requests answered 503 + OperationOutcome while Redis was down", checked)
	})

	t.Run("RedisKilledUnderWritersLosesNothingAcknowledged", func(t *testing.T) {
		acked, failed := writeUnderLoad(t, 16, 3*time.Second, ehr, func(w int) string { return live[w%2] },
			func() { time.Sleep(time.Second); rds.Kill(); time.Sleep(500 * time.Millisecond); rds.Restart() })
		t.Logf("%d writes acknowledged, %d refused while Redis was down", len(acked), failed)
		for _, u := range live {
			within(t, 20*time.Second, "readiness after Redis returned", func() bool {
				status, _, _ := tryHTTP("GET", strings.TrimSuffix(u, "/fhir")+"/readyz", "", nil)
				return status == 200
			})
		}
		checkAcked(t, acked, live, ehr)
	})
}

// writeUnderLoad runs writers creating Patients for d (writer w sends to
// target(w)), runs during() beside them, and returns what was
// acknowledged (id → marker) and how many requests failed.
func writeUnderLoad(t *testing.T, writers int, d time.Duration, tok string, target func(w int) string, during func()) (map[string]string, int) {
	var mu sync.Mutex
	acked := map[string]string{}
	var failed atomic.Int32
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				marker := fmt.Sprintf("load-%d-%d-%d", w, i, time.Now().UnixNano())
				status, out, err := tryHTTP("POST", target(w)+"/Patient", tok, []byte(`{"resourceType":"Patient","identifier":[{"system":"urn:test:load","value":"`+marker+`"}]}`))
				if err != nil || status != 201 {
					if err == nil && status != 503 {
						t.Errorf("a write failed with %d (want 201, or 503 while a part is down): %.300s", status, out)
					}
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				var r struct{ ID string }
				if json.Unmarshal(out, &r) != nil || r.ID == "" {
					t.Errorf("201 without an id: %.200s", out)
					continue
				}
				mu.Lock()
				acked[r.ID] = marker
				mu.Unlock()
			}
		}()
	}
	during()
	wg.Wait()
	return acked, int(failed.Load())
}

// checkAcked reads every acknowledged write back from each replica.
func checkAcked(t *testing.T, acked map[string]string, urls []string, tok string) {
	t.Helper()
	lost := 0
	for id, marker := range acked {
		for _, u := range urls {
			status, out, err := tryHTTP("GET", u+"/Patient/"+id, tok, nil)
			if err != nil || status != 200 || !bytes.Contains(out, []byte(marker)) {
				lost++
				t.Errorf("acknowledged Patient/%s missing on %s: %d %v %.200s", id, u, status, err, out)
				break
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acked))
	}
}

// tryHTTP is httpDo without failing the test on a transport error (a
// replica that was killed).
func tryHTTP(method, url, tok string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	cl := http.Client{Timeout: 15 * time.Second}
	res, err := cl.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, b, err
}

// siweBody is a signed sign-in for the public root (the load balancer's)
// with a given nonce, as a wallet would make it.
func siweBody(t *testing.T, root string, chainID uint64, key *ecdsa.PrivateKey, nonce string) []byte {
	t.Helper()
	host := strings.TrimPrefix(root, "http://")
	now := time.Now().UTC()
	msg := fmt.Sprintf("%s wants you to sign in with your Ethereum account:\n%s\n\nSign in to fhirgate.\n\nURI: %s\nVersion: 1\nChain ID: %d\nNonce: %s\nIssued At: %s\nExpiration Time: %s",
		host, crypto.PubkeyToAddress(key.PublicKey).Hex(), root, chainID, nonce, now.Format(time.RFC3339), now.Add(10*time.Minute).Format(time.RFC3339))
	digest := crypto.Keccak256([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg)))
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	body, _ := json.Marshal(map[string]string{"message": msg, "signature": "0x" + common.Bytes2Hex(sig)})
	return body
}

func postJSON(t *testing.T, url string, body []byte) (int, []byte) {
	t.Helper()
	status, out, _ := httpDoWith(t, "POST", url, "", body, map[string]string{"Content-Type": "application/json"})
	return status, out
}

// siweSignInAt signs in for the public root through one replica (at).
func siweSignInAt(t *testing.T, root, at string, chainID uint64, key *ecdsa.PrivateKey) (int, []byte) {
	t.Helper()
	var n struct{ Nonce string }
	mustJSON(t, get(t, at+"/auth/siwe/nonce", ""), &n)
	return postJSON(t, at+"/auth/siwe", siweBody(t, root, chainID, key, n.Nonce))
}

func signedInAt(t *testing.T, root, at string, chainID uint64, key *ecdsa.PrivateKey, kind, want string) string {
	t.Helper()
	status, body := siweSignInAt(t, root, at, chainID, key)
	var r map[string]any
	mustJSON(t, body, &r)
	if status != 200 || r[kind] != want || r["access_token"] == "" {
		t.Fatalf("sign-in as %s: %d %s", want, status, body)
	}
	return r["access_token"].(string)
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
