package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/internal/testgateway"
)

type wellKnownInfo struct {
	RPC       string            `json:"rpc"`
	Contracts map[string]string `json:"contracts"`
}

func readWellKnown(t *testing.T, gw *testgateway.Gateway) wellKnownInfo {
	t.Helper()
	var info wellKnownInfo
	mustJSON(t, get(t, strings.TrimSuffix(gw.Base, "/fhir")+"/.well-known/fhirgate", ""), &info)
	if info.RPC == "" || info.Contracts["AuditAnchor"] == "" {
		t.Fatalf("well-known %+v", info)
	}
	return info
}

func chainCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkPrivate fails unless every file under dir is 0600 and every
// directory 0700 (issue 14: store files were 0644).
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, err := d.Info()
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
		n++
		return nil
	})
	t.Logf("%d files and directories under %s checked", n, dir)
}

// Issue 14, finding 10: on the embedded chain the AuditAnchor's owner and
// anchorer was dev account 0, whose key is public; setAnchorer(attacker)
// succeeded and afterwards $proof stayed 202 and /readyz 200. Now the
// gateway's own key holds both roles, the attacker's transaction reverts,
// and when the owner key does take the role away /readyz answers 503 and
// the metric says why. Files the gateway wrote are private to its user.
func TestDevChainAnchorTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	ctx := chainCtx(t)
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	root := strings.TrimSuffix(gw.Base, "/fhir")
	info := readWellKnown(t, gw)
	contract := common.HexToAddress(info.Contracts["AuditAnchor"])
	c, err := chain.Dial(ctx, info.RPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	key, err := chain.LoadKeyFile(filepath.Join(gw.Data, chainKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	me := crypto.PubkeyToAddress(key.PublicKey)
	r, err := ethanchor.ReadRoles(ctx, c, contract)
	if err != nil {
		t.Fatal(err)
	}
	if r.Owner != me || r.Anchorer != me {
		t.Fatalf("roles %+v, the gateway's account is %s", r, me.Hex())
	}
	for _, a := range chain.DevAccounts() {
		if a.Address == me {
			t.Fatal("the gateway signs with a development key")
		}
	}

	// The attack of the finding, with dev account 0's public key.
	abi := bindings.NewAuditAnchor()
	attacker, err := chain.NewSender(ctx, c, chain.DevAccounts()[0].Key, chain.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"setAnchorer":       abi.PackSetAnchorer(attacker.Address()),
		"transferOwnership": abi.PackTransferOwnership(attacker.Address()),
	} {
		if _, err := attacker.Transact(ctx, chain.TxRequest{To: &contract, Data: data, Gas: 100_000}); !errors.Is(err, chain.ErrReverted) {
			t.Errorf("attacker's %s: %v, want a revert", name, err)
		}
	}
	if r2, _ := ethanchor.ReadRoles(ctx, c, contract); r2 != r {
		t.Fatalf("roles changed by the attacker: %+v", r2)
	}
	tok := gw.Token(t, "system/*.cruds")
	id := createAt(t, gw.Base, tok, "Patient", `{"resourceType":"Patient","name":[{"family":"Anchored"}]}`)
	waitProof(t, gw.Base+"/Patient/"+id+"/_history/1/$proof", tok)
	if status, body, _ := httpDo(t, "GET", root+"/readyz", "", nil); status != 200 {
		t.Fatalf("/readyz after the failed attack: %d %s", status, body)
	}
	if m := string(get(t, root+"/metrics", "")); !strings.Contains(m, "fhirgate_anchor_ok 1") {
		t.Errorf("metrics while anchoring works:\n%s", grepLines(m, "fhirgate_anchor"))
	}

	// The owner (the gateway's key, used here by the test) gives the
	// anchorer role away.
	owner, err := chain.NewSender(ctx, c, key, chain.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := chain.DevAccounts()[1].Address
	if _, err := owner.Transact(ctx, chain.TxRequest{To: &contract, Data: abi.PackSetAnchorer(other)}); err != nil {
		t.Fatal(err)
	}
	id2 := createAt(t, gw.Base, tok, "Patient", `{"resourceType":"Patient","name":[{"family":"Stranded"}]}`)
	var status int
	var body []byte
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		if status, body, _ = httpDo(t, "GET", root+"/readyz", "", nil); status == 503 {
			break
		}
		if time.Since(start) > 45*time.Second {
			t.Fatalf("/readyz still %d %s after the role was taken away; logs:\n%s", status, body, gw.Logs())
		}
	}
	t.Logf("/readyz: %d %s", status, body)
	if !strings.Contains(string(body), "anchorer") || !strings.Contains(string(body), other.Hex()) {
		t.Errorf("/readyz says %q", body)
	}
	m := string(get(t, root+"/metrics", ""))
	if !strings.Contains(m, "fhirgate_anchor_ok 0") || !strings.Contains(m, `fhirgate_anchor_problem{reason="not_anchorer"} 1`) {
		t.Errorf("metrics after the role was taken away:\n%s", grepLines(m, "fhirgate_anchor"))
	}
	if !strings.Contains(gw.Logs(), "cannot anchor") {
		t.Error("the log does not say the gateway cannot anchor")
	}
	// $proof no longer says "retry in a second" forever: 503, and why.
	if status, body, h := httpDo(t, "GET", gw.Base+"/Patient/"+id2+"/_history/1/$proof", tok, nil); status != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(body), "cannot anchor") {
		t.Errorf("$proof of a version written after: %d %s", status, body)
	}
	gw.Stop()
	checkPrivate(t, gw.Data)
}

// createAt creates a resource and returns its id, from the Location
// header (whatever the body).
func createAt(t *testing.T, base, tok, typ, body string) string {
	t.Helper()
	status, out, h := httpDo(t, "POST", base+"/"+typ, tok, []byte(body))
	if status != 201 {
		t.Fatalf("create %s: %d %s", typ, status, out)
	}
	loc := strings.TrimPrefix(h.Get("Location"), base+"/"+typ+"/")
	id, _, _ := strings.Cut(loc, "/")
	if id == "" {
		t.Fatalf("create %s: Location %q", typ, h.Get("Location"))
	}
	return id
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// legacyDataDir makes the data directory an earlier version left: an
// embedded chain with the plain dev genesis (no gateway key funded), the
// contracts deployed from dev account 0 (owner and anchorer), recorded in
// deployments.json. give, if set, receives the AuditAnchor's ownership
// (someone took it over before the upgrade).
func legacyDataDir(t *testing.T, give *common.Address) (dir string, anchorAddr common.Address) {
	t.Helper()
	ctx := chainCtx(t)
	dir = t.TempDir()
	d, err := chain.StartDev(ctx, chain.DevConfig{DataDir: filepath.Join(dir, "chain")})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, err := chain.NewSender(ctx, d.Client(), chain.DevAccounts()[0].Key, chain.SenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	book := chain.OpenDeployments(filepath.Join(dir, "deployments.json"))
	dep, err := ethanchor.Deploy(ctx, s, book)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := book.DeployOnce(ctx, s, "ConsentRegistry", common.FromHex(bindings.ConsentRegistryMetaData.Bin), nil); err != nil {
		t.Fatal(err)
	}
	if give != nil {
		if _, err := s.Transact(ctx, chain.TxRequest{To: &dep.Address, Data: bindings.NewAuditAnchor().PackTransferOwnership(*give)}); err != nil {
			t.Fatal(err)
		}
	}
	// An earlier version's files were readable by others.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "left-by-an-old-version"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, dep.Address
}

// A data directory of an earlier version keeps working: the gateway
// generates its key, funds it from the development accounts, takes the
// AuditAnchor over from dev account 0 (same contract, same history) and
// anchors there; the files are made private. One whose AuditAnchor
// someone else took over is refused with a message saying what to do.
func TestLegacyDataDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	ctx := chainCtx(t)
	dir, anchorAddr := legacyDataDir(t, nil)
	gw := testgateway.Start(t, dir, "--anchor-interval", "1s")
	info := readWellKnown(t, gw)
	if info.Contracts["AuditAnchor"] != anchorAddr.Hex() {
		t.Fatalf("AuditAnchor %s, the earlier version's was %s", info.Contracts["AuditAnchor"], anchorAddr.Hex())
	}
	key, err := chain.LoadKeyFile(filepath.Join(dir, chainKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := chain.Dial(ctx, info.RPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := crypto.PubkeyToAddress(key.PublicKey)
	if r, err := ethanchor.ReadRoles(ctx, c, anchorAddr); err != nil || r.Owner != me || r.Anchorer != me {
		t.Fatalf("roles %+v (%v), the gateway's account is %s", r, err, me.Hex())
	}
	tok := gw.Token(t, "system/*.cruds")
	id := createAt(t, gw.Base, tok, "Patient", `{"resourceType":"Patient","name":[{"family":"Upgraded"}]}`)
	waitProof(t, gw.Base+"/Patient/"+id+"/_history/1/$proof", tok)
	gw.Stop()
	checkPrivate(t, dir)

	// A restart changes nothing more.
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	if again := readWellKnown(t, gw); again.Contracts["AuditAnchor"] != anchorAddr.Hex() {
		t.Errorf("AuditAnchor moved on restart: %s", again.Contracts["AuditAnchor"])
	}
	gw.Stop()

	thief := chain.DevAccounts()[5].Address
	taken, _ := legacyDataDir(t, &thief)
	g, err := testgateway.StartProcess(taken)
	if err == nil {
		g.Stop()
		t.Fatal("a gateway started on a chain whose AuditAnchor someone else owns")
	}
	if !strings.Contains(err.Error(), "owned by "+thief.Hex()) || !strings.Contains(err.Error(), "setAnchorer") {
		t.Errorf("the refusal does not explain itself: %v", err)
	}
}

// Issue 14, finding 12: $proof gave a regulator the leaf's salt and the
// body's unsalted SHA-256, enough to test guesses of the content. A
// regulator's proof of a clinical record now has neither; it verifies on
// chain as a proof of the leaf hash. The author, who may read the body,
// still gets salt and hash and checks the bytes; a regulator's proof of an
// AuditEvent (which regulators read) stays full.
func TestRegulatorProofWithholdsContentHash(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	info := readWellKnown(t, gw)
	sys := gw.Token(t, "system/*.cruds")
	regulator := gw.Token(t, "", "--role", "regulator", "--sub", "regulator/ico")
	id := createAt(t, gw.Base, sys, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"SARS-CoV-2 PCR"},"valueString":"positive"}`)
	url := gw.Base + "/Observation/" + id + "/_history/1/$proof"
	full := waitProof(t, url, sys)
	withheld := waitProof(t, url, regulator)
	served := get(t, gw.Base+"/Observation/"+id+"/_history/1", sys)

	var fp, wp map[string]any
	mustJSON(t, full, &fp)
	mustJSON(t, withheld, &wp)
	fl, wl := fp["leaf"].(map[string]any), wp["leaf"].(map[string]any)
	if fp["format"] != "fhirgate-proof-v1" || fl["salt"] == nil || fl["sha256"] == nil {
		t.Fatalf("the author's proof: %s", full)
	}
	if wp["format"] != "fhirgate-proof-v2" || wp["contentWithheld"] != true || wl["salt"] != nil || wl["sha256"] != nil {
		t.Fatalf("the regulator's proof: %s", withheld)
	}
	for _, h := range []any{fl["salt"], fl["sha256"]} {
		if bytes.Contains(withheld, []byte(h.(string))) {
			t.Fatalf("the regulator's proof contains %s", h)
		}
	}
	if wp["leafHash"] != fp["leafHash"] || wp["leafIndex"] != fp["leafIndex"] {
		t.Error("the two proofs name different entries")
	}

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		return p
	}
	verify := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(append([]string{"verify", "--rpc", info.RPC}, args...), &out, &out)
		return code, out.String()
	}
	if code, out := verify("--proof", write("full.json", full), "--resource", write("obs.json", served)); code != 0 {
		t.Errorf("the author's proof with the bytes: %d %s", code, out)
	}
	if code, out := verify("--proof", write("withheld.json", withheld)); code != 0 || !strings.Contains(out, "withholds") {
		t.Errorf("the regulator's proof: %d %s", code, out)
	}
	if code, out := verify("--proof", write("withheld.json", withheld), "--resource", write("obs.json", served)); code != 2 {
		t.Errorf("the regulator's proof with resource bytes: %d %s", code, out)
	}
	wp["leafHash"] = fp["inclusion"].([]any)[0]
	bad, _ := json.Marshal(wp)
	if code, out := verify("--proof", write("bad.json", bad)); code != 1 || !strings.HasPrefix(out, "INVALID") {
		t.Errorf("a withheld proof of another leaf hash: %d %s", code, out)
	}

	// An AuditEvent, which regulators read: the full proof.
	var bundle struct {
		Entry []struct {
			Resource struct{ ID string } `json:"resource"`
		} `json:"entry"`
	}
	mustJSON(t, get(t, gw.Base+"/AuditEvent?_count=1", regulator), &bundle)
	if len(bundle.Entry) == 0 {
		t.Fatal("no AuditEvent")
	}
	ev := waitProof(t, gw.Base+"/AuditEvent/"+bundle.Entry[0].Resource.ID+"/_history/1/$proof", regulator)
	if !bytes.Contains(ev, []byte(`"sha256"`)) || bytes.Contains(ev, []byte("contentWithheld")) {
		t.Errorf("a regulator's proof of an AuditEvent: %s", ev)
	}
}
