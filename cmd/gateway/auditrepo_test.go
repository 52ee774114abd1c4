package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestRecordedAuditEventProof: an AuditEvent an EHR records through the
// gateway binary is a leaf like any version: its $proof comes within
// seconds, and `gateway verify` accepts it with the bytes a read returns
// and refuses them altered.
func TestRecordedAuditEventProof(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	tok := gw.Token(t, "system/*.cruds")
	ev := []byte(`{"resourceType":"AuditEvent","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},` +
		`"action":"R","recorded":"2026-03-01T10:00:00Z","outcome":"0","agent":[{"who":{"identifier":{"value":"nurse-7"}},"requestor":true}],` +
		`"source":{"site":"Ward 3","observer":{"display":"EHR audit source"}}}`)
	status, body, hdr := httpDo(t, "POST", gw.Base+"/AuditEvent", tok, ev)
	if status != 201 {
		t.Fatalf("record: %d %s", status, body)
	}
	loc := hdr.Get("Location")
	ref := loc[strings.Index(loc, "/AuditEvent/")+1:]
	_, served, _ := httpDo(t, "GET", gw.Base+"/"+ref, tok, nil)
	start := time.Now()
	var proof []byte
	for {
		status, proof, _ = httpDo(t, "GET", gw.Base+"/"+ref+"/$proof", tok, nil)
		if status == 200 {
			break
		}
		if status != 202 || time.Since(start) > 30*time.Second {
			t.Fatalf("$proof of %s: %d %s after %s", ref, status, proof, time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s provable on chain %s after it was recorded", ref, time.Since(start).Round(100*time.Millisecond))
	_, wk, _ := httpDo(t, "GET", strings.TrimSuffix(gw.Base, "/fhir")+"/.well-known/fhirgate", "", nil)
	var info struct {
		RPC string `json:"rpc"`
	}
	json.Unmarshal(wk, &info)
	dir := t.TempDir()
	verify := func(resource []byte) (int, string) {
		pp, rp := filepath.Join(dir, "proof.json"), filepath.Join(dir, "resource.json")
		os.WriteFile(pp, proof, 0o600)
		os.WriteFile(rp, resource, 0o600)
		var out bytes.Buffer
		return run([]string{"verify", "--rpc", info.RPC, "--proof", pp, "--resource", rp}, &out, &out), out.String()
	}
	if code, out := verify(served); code != 0 {
		t.Fatalf("the recorded event's proof was refused: %d %s", code, out)
	}
	if code, out := verify(bytes.Replace(served, []byte("nurse-7"), []byte("nurse-8"), 1)); code != 1 || !strings.HasPrefix(out, "INVALID") {
		t.Fatalf("an altered recorded event passed: %d %s", code, out)
	}
}
