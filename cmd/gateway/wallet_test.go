package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
	"github.com/fhirgate/fhirgate/store/pebble"
)

// A wallet taken off a Patient record no longer speaks for the patient:
// the grants it signed stop counting at once, also after a restart, and
// the wallet now listed takes over (a patient replacing a lost or stolen
// key). Deleting the Patient ends its wallets' grants too.
func TestWalletTakenOffEndsItsGrants(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	type env struct {
		root, ehr string
		chainID   uint64
		eth       *ethclient.Client
		registry  common.Address
	}
	connect := func() env {
		root := strings.TrimSuffix(gw.Base, "/fhir")
		c := dialChain(t, root)
		return env{root: root, ehr: gw.Token(t, "system/*.cruds "+policy.ScopeIdentityLinking), chainID: c.ChainID, eth: c.eth, registry: c.registry}
	}
	e := connect()
	accounts := chain.DevAccounts()
	oldKey, newKey, doctorKey := accounts[4], accounts[5], accounts[6]
	walletID := func(a chain.Account) string {
		return fmt.Sprintf(`{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"eip155:%d:%s"}`, e.chainID, a.Address.Hex())
	}
	patientBody := func(id string, w chain.Account) []byte {
		return []byte(`{"resourceType":"Patient","id":"` + id + `","identifier":[` + walletID(w) + `],"name":[{"family":"Keyloss"}]}`)
	}
	admin := gw.Token(t, "", "--role", "admin", "--sub", "admin/ops")
	doctor := create(t, gw.Base, admin, "Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+walletID(doctorKey)+`],"name":[{"family":"Okafor"}]}`)
	patient := create(t, gw.Base, e.ehr, "Patient", `{"resourceType":"Patient","identifier":[`+walletID(oldKey)+`],"name":[{"family":"Keyloss"}]}`)
	report := create(t, gw.Base, e.ehr, "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"HbA1c"},"subject":{"reference":"Patient/`+patient+`"}}`)

	reg := bindings.NewConsentRegistry()
	grant := func(e env, key chain.Account) {
		sendTx(t, e.eth, e.chainID, key.Key, e.registry, reg.PackGrant(consentsig.Grantee("Practitioner/"+doctor), consentsig.Scope("DiagnosticReport.rs"), uint64(time.Now().Add(24*time.Hour).Unix())))
	}
	reads := func(e env, dr string) int {
		status, _, _ := httpDo(t, "GET", gw.Base+"/DiagnosticReport/"+report, dr, nil)
		return status
	}
	dr := signedIn(t, e.root, e.chainID, doctorKey.Key, "practitioner", "Practitioner/"+doctor)
	grant(e, oldKey)
	within(t, 5*time.Second, "the old wallet's grant to take effect", func() bool { return reads(e, dr) == 200 })

	// The patient lost the old key: the hospital records the new wallet.
	if status, body, _ := httpDo(t, "PUT", gw.Base+"/Patient/"+patient, e.ehr, patientBody(patient, newKey)); status != 200 {
		t.Fatalf("update the patient's wallet: %d %s", status, body)
	}
	if status := reads(e, dr); status != 404 {
		t.Fatalf("the old wallet's grant still counts after the wallet was taken off: %d", status)
	}
	// The old key cannot grant for the patient any more either.
	grant(e, oldKey)
	time.Sleep(2 * time.Second)
	if status := reads(e, dr); status != 404 {
		t.Fatalf("a grant by the removed wallet took effect: %d", status)
	}

	// Still so after a restart (the follower keeps its wallet map on disk).
	gw.Stop()
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	e = connect()
	dr = signedIn(t, e.root, e.chainID, doctorKey.Key, "practitioner", "Practitioner/"+doctor)
	time.Sleep(time.Second)
	if status := reads(e, dr); status != 404 {
		t.Fatalf("after a restart the removed wallet's grant counts again: %d", status)
	}

	// The new wallet grants: the doctor reads again.
	grant(e, newKey)
	within(t, 5*time.Second, "the new wallet's grant to take effect", func() bool { return reads(e, dr) == 200 })

	// A crash between storing a Patient's new record and unmapping the
	// wallet it dropped: the next start unmaps it (simulated by rewriting
	// the stored record behind the gateway's back).
	gw.Stop()
	db, err := pebble.New(context.Background(), pebble.Config{Dir: filepath.Join(gw.Data, "store")})
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(db, store.Options{})
	thirdKey := accounts[7]
	rec, err := st.Engine().Get(context.Background(), store.VersionKey("Patient", patient, 2))
	if err != nil || !bytes.Contains(rec, []byte(newKey.Address.Hex())) {
		t.Fatalf("the stored record: %v %.200s", err, rec)
	}
	var b store.Batch
	b.Set(store.VersionKey("Patient", patient, 2), bytes.Replace(rec, []byte(newKey.Address.Hex()), []byte(thirdKey.Address.Hex()), 1))
	if err := st.Engine().Apply(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := gw.Restart(); err != nil {
		t.Fatal(err)
	}
	e = connect()
	dr = signedIn(t, e.root, e.chainID, doctorKey.Key, "practitioner", "Practitioner/"+doctor)
	if status := reads(e, dr); status != 404 {
		t.Fatalf("after the start, a wallet the record no longer lists still speaks for the patient: %d", status)
	}
	grant(e, thirdKey)
	within(t, 5*time.Second, "the listed wallet's grant to take effect", func() bool { return reads(e, dr) == 200 })

	// A deleted Patient's wallets speak for nobody.
	if status, body, _ := httpDo(t, "DELETE", gw.Base+"/Patient/"+patient, e.ehr, nil); status != 200 && status != 204 {
		t.Fatalf("delete the patient: %d %s", status, body)
	}
	if status := reads(e, dr); status != 404 {
		t.Fatalf("the grant of a deleted patient's wallet still counts: %d", status)
	}
}
