package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestRegistrationThroughTheGateway: the real binary on its dev chain. A
// wallet linked to nothing signs in as an applicant and asks to be
// registered as a practitioner; the dev administrator signs in and
// verifies it; the same wallet then signs in as that practitioner. A body
// over --body-limit is refused before any route.
func TestRegistrationThroughTheGateway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	accounts := chain.DevAccounts()
	adminKey, applicantKey := accounts[9], accounts[2]
	gw := testgateway.Start(t, "", "--body-limit", "65536")
	root := strings.TrimSuffix(gw.Base, "/fhir")
	info := dialChain(t, root)

	tok := signedInAs(t, root, info.ChainID, applicantKey.Key, "applicant")
	status, out, h := regPost(t, root+"/registration", tok, `{"kind":"practitioner","name":{"prefix":"Dr.","given":"Maria","family":"Santos"},
		"qualification":"MD","specialty":"Cardiology","licence":{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}}`)
	if status != 201 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("submit: %d %s (Cache-Control %q)", status, out, h.Get("Cache-Control"))
	}
	var req struct{ ID, Status, Wallet, Record string }
	mustJSON(t, out, &req)
	if want := fmt.Sprintf("eip155:%d:%s", info.ChainID, applicantKey.Address.Hex()); req.Wallet != want || req.Status != "pending" {
		t.Fatalf("request: %s", out)
	}
	// Over the body limit once inflated: refused before anything is
	// parsed. (Compressed, so that the client sends it whole: a plain body
	// over the limit is refused before it is read, which Go's client
	// reports as a broken connection.)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"kind":"patient","x":"` + strings.Repeat("a", 70000) + `"}`))
	zw.Close()
	status, out, _ = httpDoWith(t, "POST", root+"/registration", tok, gz.Bytes(), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
	if status != 413 {
		t.Fatalf("a body over --body-limit: %d %.200s", status, out)
	}

	admin := signedInAs(t, root, info.ChainID, adminKey.Key, "admin")
	var queue struct{ Requests []struct{ ID string } }
	mustJSON(t, get(t, root+"/registration?status=pending", admin), &queue)
	if len(queue.Requests) != 1 || queue.Requests[0].ID != req.ID {
		t.Fatalf("queue: %+v", queue)
	}
	status, out, _ = regPost(t, root+"/registration/"+req.ID+"/verify", admin, `{}`)
	if status != 200 {
		t.Fatalf("verify: %d %s", status, out)
	}
	mustJSON(t, out, &req)
	if req.Status != "verified" || !strings.HasPrefix(req.Record, "Practitioner/") {
		t.Fatalf("verified: %s", out)
	}

	// The applicant's session ended; signed in again, the wallet is the
	// practitioner and reads the directory.
	if status, _, _ := httpDo(t, "GET", root+"/registration/mine", tok, nil); status != 401 {
		t.Fatalf("the applicant's token after verification: %d", status)
	}
	status, body := siweSignIn(t, root, info.ChainID, applicantKey.Key)
	var r struct{ Role, Practitioner, AccessToken string }
	mustJSON(t, body, &r)
	if status != 200 || r.Role != "practitioner" || r.Practitioner != req.Record {
		t.Fatalf("sign-in after verification: %d %s", status, body)
	}
	var full map[string]any
	mustJSON(t, body, &full)
	doctor := full["access_token"].(string)
	if status, out, _ := httpDo(t, "GET", gw.Base+"/"+req.Record, doctor, nil); status != 200 || !bytes.Contains(out, []byte(`"active":true`)) {
		t.Fatalf("the practitioner reads their record: %d %s", status, out)
	}
	var mine struct{ Requests []json.RawMessage }
	mustJSON(t, get(t, root+"/registration/mine", doctor), &mine)
	if len(mine.Requests) != 1 {
		t.Fatalf("mine: %s", mine.Requests)
	}
}

// regPost posts JSON to a registration route.
func regPost(t *testing.T, url, tok, body string) (int, []byte, http.Header) {
	t.Helper()
	return httpDoWith(t, "POST", url, tok, []byte(body), map[string]string{"Content-Type": "application/json"})
}
