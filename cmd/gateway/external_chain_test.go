package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

// TestExternalDevNode is what docker-compose runs: geth --dev initialised
// with `gateway dev-genesis`, the gateway on --eth-rpc without a key file
// (the dev genesis allows the development key). Contracts are deployed
// once, writes are anchored there and `gateway verify` accepts the proofs
// against that node.
func TestExternalDevNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs geth and a gateway")
	}
	var genesis bytes.Buffer
	if code := run([]string{"dev-genesis"}, &genesis, os.Stderr); code != 0 {
		t.Fatalf("dev-genesis exited %d", code)
	}
	node := gethtest.StartDev(t, genesis.Bytes(), 1)
	gw := testgateway.Start(t, "", "--eth-rpc", node.WS, "--anchor-interval", "1s")
	root := strings.TrimSuffix(gw.Base, "/fhir")
	var info struct {
		RPC       string            `json:"rpc"`
		Contracts map[string]string `json:"contracts"`
	}
	mustJSON(t, get(t, root+"/.well-known/fhirgate", ""), &info)
	if len(info.Contracts) != 2 {
		t.Fatalf("contracts %v", info.Contracts)
	}
	tok := gw.Token(t, "system/*.cruds")
	id := create(t, gw.Base, tok, "Patient", `{"resourceType":"Patient","name":[{"family":"External"}]}`)
	proof := waitProof(t, gw.Base+"/Patient/"+id+"/_history/1/$proof", tok)
	dir := t.TempDir()
	pf, rf := filepath.Join(dir, "proof.json"), filepath.Join(dir, "patient.json")
	os.WriteFile(pf, proof, 0o600)
	os.WriteFile(rf, get(t, gw.Base+"/Patient/"+id+"/_history/1", tok), 0o600)
	var out bytes.Buffer
	if code := run([]string{"verify", "--rpc", node.HTTP, "--proof", pf, "--resource", rf}, &out, &out); code != 0 {
		t.Fatalf("verify against the external node: %d %s", code, out.String())
	}

	// A restart finds the contracts it deployed.
	stopped := time.Now()
	gw.Stop()
	if d := time.Since(stopped); d > 10*time.Second {
		t.Errorf("the gateway took %s to stop", d)
	}
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	var again struct{ Contracts map[string]string }
	mustJSON(t, get(t, strings.TrimSuffix(gw.Base, "/fhir")+"/.well-known/fhirgate", ""), &again)
	a, _ := json.Marshal(info.Contracts)
	b, _ := json.Marshal(again.Contracts)
	if !bytes.Equal(a, b) {
		t.Fatalf("contracts moved on restart: %s then %s", a, b)
	}
}
