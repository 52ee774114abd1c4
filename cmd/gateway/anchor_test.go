package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

func httpDo(t *testing.T, method, url, tok string, body []byte) (int, []byte, http.Header) {
	t.Helper()
	return httpDoWith(t, method, url, tok, body, nil)
}

// httpDoWith sends FHIR JSON with extra headers (which may override the
// Content-Type).
func httpDoWith(t *testing.T, method, url, tok string, body []byte, headers map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

// TestProofsVerifyOnChain: a version written through the API becomes
// provable on chain within seconds; `gateway verify` accepts the proof and
// refuses an altered resource, an altered proof and a root that is not on
// chain; a version altered behind the gateway's back is flagged by $verify.
func TestProofsVerifyOnChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	tok := gw.Token(t, "system/*.cruds")
	status, body, _ := httpDo(t, "POST", gw.Base+"/Patient", tok, []byte(`{"resourceType":"Patient","name":[{"family":"Provable"}]}`))
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	var pat struct{ ID string }
	json.Unmarshal(body, &pat)
	_, served, _ := httpDo(t, "GET", gw.Base+"/Patient/"+pat.ID+"/_history/1", tok, nil)

	start := time.Now()
	var proof []byte
	for {
		status, proof, _ = httpDo(t, "GET", gw.Base+"/Patient/"+pat.ID+"/_history/1/$proof", tok, nil)
		if status == 200 {
			break
		}
		if status != 202 || time.Since(start) > 30*time.Second {
			t.Fatalf("$proof: %d %s after %s", status, proof, time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("provable on chain %s after the write", time.Since(start).Round(100*time.Millisecond))

	_, wk, _ := httpDo(t, "GET", strings.TrimSuffix(gw.Base, "/fhir")+"/.well-known/fhirgate", "", nil)
	var info struct {
		RPC string `json:"rpc"`
	}
	json.Unmarshal(wk, &info)
	if info.RPC == "" {
		t.Fatalf("no rpc in %s", wk)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	verify := func(proof, resource []byte) (int, string) {
		args := []string{"verify", "--rpc", info.RPC, "--proof", write("proof.json", proof)}
		if resource != nil {
			args = append(args, "--resource", write("resource.json", resource))
		}
		var out bytes.Buffer
		return run(args, &out, &out), out.String()
	}
	if code, out := verify(proof, served); code != 0 {
		t.Fatalf("a real proof was refused: %d %s", code, out)
	}
	altered := bytes.Replace(served, []byte("Provable"), []byte("Provabel"), 1)
	if code, out := verify(proof, altered); code != 1 || !strings.HasPrefix(out, "INVALID") {
		t.Fatalf("an altered resource passed: %d %s", code, out)
	}
	var p map[string]any
	json.Unmarshal(proof, &p)
	p["leafIndex"] = p["leafIndex"].(float64) + 1
	bad, _ := json.Marshal(p)
	if code, out := verify(bad, nil); code != 1 {
		t.Fatalf("an altered proof passed: %d %s", code, out)
	}
	json.Unmarshal(proof, &p)
	cp := p["checkpoint"].(map[string]any)
	cp["root"] = "0x" + strings.Repeat("ab", 32)
	bad, _ = json.Marshal(p)
	if code, out := verify(bad, nil); code != 1 {
		t.Fatalf("a root not on chain passed: %d %s", code, out)
	}
	if code, _ := verify([]byte(`{"nonsense":true}`), nil); code != 1 {
		t.Fatal("a malformed proof passed")
	}

	// Alter the stored version behind the gateway's back.
	gw.Stop()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: filepath.Join(gw.Data, "store")})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	if err := tamper(st, "Patient", pat.ID, []byte("Provable"), []byte("Tampered")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	status, body, _ = httpDo(t, "GET", gw.Base+"/Patient/"+pat.ID+"/$verify", tok, nil)
	if status != 200 || !strings.Contains(string(body), `"severity":"error"`) {
		t.Fatalf("$verify did not flag the tampered version: %d %s", status, body)
	}
}

// tamper rewrites the first stored version of a resource behind the
// gateway's back.
func tamper(st *store.Store, typ, id string, from, to []byte) error {
	ctx := context.Background()
	k := store.VersionKey(typ, id, 1)
	rec, err := st.Engine().Get(ctx, k)
	if err != nil {
		return err
	}
	var b store.Batch
	b.Set(k, bytes.Replace(rec, from, to, 1))
	return st.Engine().Apply(ctx, &b)
}
