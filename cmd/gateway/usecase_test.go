package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
)

// TestResearchSystemUseCase is the original system's use case, end to end,
// against the real binary and its embedded chain: an admin registers and
// verifies a doctor; a patient signs in with a wallet, books an
// appointment and uploads a test report; the doctor is refused the report
// until the patient grants it from the wallet, can then read and search it
// within 2 s, updates it under a grant relayed gas-free, and is refused
// again within 2 s of the revocation; the patient lists who accessed the
// records; a regulator fetches proofs of those AuditEvents and `gateway
// verify` accepts them. Nothing the gateway put on chain names the patient.
func TestResearchSystemUseCase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	gw := testgateway.Start(t, "", "--anchor-interval", "1s")
	root := strings.TrimSuffix(gw.Base, "/fhir")
	info := dialChain(t, root)
	eth, registry := info.eth, info.registry
	accounts := chain.DevAccounts()
	patientKey, doctorKey, otherDoctorKey := accounts[1], accounts[2], accounts[3]
	caip10 := func(a chain.Account) string { return fmt.Sprintf("eip155:%d:%s", info.ChainID, a.Address.Hex()) }
	walletID := func(a chain.Account) string {
		return `{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"` + caip10(a) + `"}`
	}

	// The hospital: an administrator for the directory, the EHR for
	// patient registration.
	admin := gw.Token(t, "", "--role", "admin", "--sub", "admin/ops")
	ehr := gw.Token(t, "system/*.cruds "+policy.ScopeIdentityLinking) // the EHR also registers wallets
	const family, mrn = "Rivera-Usecase", "MRN-USECASE-40231"
	patient := create(t, gw.Base, ehr, "Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:example:mrn","value":"`+mrn+`"},`+walletID(patientKey)+`],"name":[{"family":"`+family+`","given":["Alex"]}],"birthDate":"1986-04-12"}`)

	// 1. The admin registers a doctor with a wallet; the doctor cannot sign
	// in until the admin verifies the record.
	doctor := create(t, gw.Base, admin, "Practitioner", `{"resourceType":"Practitioner","active":false,"identifier":[`+walletID(doctorKey)+`],"name":[{"prefix":["Dr."],"given":["Maria"],"family":"Santos"}]}`)
	if status, body := siweSignIn(t, root, info.ChainID, doctorKey.Key); status != 403 || !strings.Contains(string(body), "not verified") {
		t.Fatalf("an unverified doctor signed in: %d %s\n%s", status, body, gw.Logs())
	}
	if status, body, _ := httpDo(t, "PUT", gw.Base+"/Practitioner/"+doctor, admin, []byte(`{"resourceType":"Practitioner","id":"`+doctor+`","active":true,"identifier":[`+walletID(doctorKey)+`],"name":[{"prefix":["Dr."],"given":["Maria"],"family":"Santos"}]}`)); status != 200 {
		t.Fatalf("verify the doctor: %d %s", status, body)
	}
	otherDoctor := create(t, gw.Base, admin, "Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+walletID(otherDoctorKey)+`],"name":[{"family":"Okafor"}]}`)
	if status, body, _ := httpDo(t, "GET", gw.Base+"/Patient/"+patient, admin, nil); status != 403 {
		t.Fatalf("an admin read a patient: %d %.200s", status, body)
	}

	// 2. The patient signs in with the wallet, books an appointment with
	// the doctor and uploads a test report.
	pt := signedIn(t, root, info.ChainID, patientKey.Key, "patient", "Patient/"+patient)
	appt := create(t, gw.Base, pt, "Appointment", `{"resourceType":"Appointment","status":"booked","description":"Cardiology follow-up","start":"2026-12-01T10:00:00Z","end":"2026-12-01T10:30:00Z","participant":[{"actor":{"reference":"Patient/`+patient+`"},"status":"accepted"},{"actor":{"reference":"Practitioner/`+doctor+`"},"status":"needs-action"}]}`)
	description := "Lipid panel: LDL 3.1 mmol/L, fasting 12h"
	report := create(t, gw.Base, pt, "DiagnosticReport", `{"resourceType":"DiagnosticReport","status":"final","code":{"text":"Lipid panel"},"subject":{"reference":"Patient/`+patient+`"},"conclusion":"`+description+`","presentedForm":[{"contentType":"text/plain","title":"lab-report.txt","data":"`+base64.StdEncoding.EncodeToString([]byte(description))+`"}]}`)

	// 3. The doctor signs in by wallet: the appointment is theirs, the
	// report is not.
	dr := signedIn(t, root, info.ChainID, doctorKey.Key, "practitioner", "Practitioner/"+doctor)
	if status, body, _ := httpDo(t, "GET", gw.Base+"/Appointment/"+appt, dr, nil); status != 200 {
		t.Fatalf("the doctor cannot see their appointment: %d %s", status, body)
	}
	// refused: 404 for a record the doctor may not know of (answered as
	// an absent one), 403 for one they may read but not change.
	refused := func(want int, method, path string, body []byte) {
		t.Helper()
		status, out, _ := httpDo(t, method, gw.Base+path, dr, body)
		if status != want || strings.Contains(string(out), "LDL") {
			t.Fatalf("%s %s without consent: %d %.300s", method, path, status, out)
		}
	}
	refused(404, "GET", "/DiagnosticReport/"+report, nil)
	searchFinds := func() bool {
		_, out, _ := httpDo(t, "GET", gw.Base+"/DiagnosticReport?subject=Patient/"+patient, dr, nil)
		return strings.Contains(string(out), `"id":"`+report+`"`)
	}
	if searchFinds() {
		t.Fatal("the doctor's search found the report without consent")
	}

	// 4. The patient grants DiagnosticReport.rs to the doctor by a direct
	// transaction from the wallet; the doctor reads and searches within 2 s.
	reg := bindings.NewConsentRegistry()
	grantee := consentsig.Grantee("Practitioner/" + doctor)
	mined := sendTx(t, eth, info.ChainID, patientKey.Key, registry, reg.PackGrant(grantee, consentsig.Scope("DiagnosticReport.rs"), uint64(time.Now().Add(24*time.Hour).Unix())))
	effective := within(t, 2*time.Second, "the grant to take effect", func() bool {
		status, _, _ := httpDo(t, "GET", gw.Base+"/DiagnosticReport/"+report, dr, nil)
		return status == 200
	})
	t.Logf("grant effective %s after its block", effective.Sub(mined).Round(time.Millisecond))
	if !searchFinds() {
		t.Fatal("the doctor's search misses the consented report")
	}
	c := consentOf(t, gw.Base, pt, patient, "active")
	if !strings.Contains(c, "DiagnosticReport.rs") || !strings.Contains(c, "Practitioner/"+doctor) {
		t.Fatalf("the Consent projection does not say what was granted: %s", c)
	}
	if mine := get(t, gw.Base+"/Consent?actor=Practitioner/"+doctor, dr); !strings.Contains(string(mine), "DiagnosticReport.rs") {
		t.Fatalf("the doctor cannot see what was shared with them: %s", mine)
	}

	// 5. Updating needs DiagnosticReport.u: the patient signs a Grant
	// (EIP-712) and the gateway relays it, paying the gas.
	updated := []byte(`{"resourceType":"DiagnosticReport","id":"` + report + `","status":"amended","code":{"text":"Lipid panel"},"subject":{"reference":"Patient/` + patient + `"},"conclusion":"` + description + `; reviewed, statin advised"}`)
	refused(403, "PUT", "/DiagnosticReport/"+report, updated)
	balance, _ := eth.BalanceAt(context.Background(), patientKey.Address, nil)
	relayGrant(t, root, pt, eth, info.ChainID, registry, patientKey, grantee, "DiagnosticReport.u")
	if after, _ := eth.BalanceAt(context.Background(), patientKey.Address, nil); after.Cmp(balance) != 0 {
		t.Fatalf("the relayed grant cost the patient %s wei", new(big.Int).Sub(balance, after))
	}
	relayRefusals(t, root, pt, dr, eth, info.ChainID, registry, patientKey, otherDoctorKey, grantee)
	within(t, 2*time.Second, "the relayed grant to take effect", func() bool {
		status, _, _ := httpDo(t, "PUT", gw.Base+"/DiagnosticReport/"+report, dr, updated)
		return status == 200
	})
	// The portal's way: the gateway prepares the typed data (next nonce
	// included), the wallet signs it as is, the relay sends it.
	preparedGrant(t, root, pt, dr, patientKey, "Practitioner/"+doctor, "Appointment.rs")

	// 6. The patient revokes the read grant: refused again within 2 s.
	mined = sendTx(t, eth, info.ChainID, patientKey.Key, registry, reg.PackRevoke(grantee, consentsig.Scope("DiagnosticReport.rs")))
	revoked := within(t, 2*time.Second, "the revocation to take effect", func() bool {
		status, _, _ := httpDo(t, "GET", gw.Base+"/DiagnosticReport/"+report, dr, nil)
		return status == 404
	})
	t.Logf("revocation effective %s after its block", revoked.Sub(mined).Round(time.Millisecond))
	if searchFinds() {
		t.Fatal("the doctor's search still finds the report after the revocation")
	}
	consentOf(t, gw.Base, pt, patient, "inactive")

	// Another doctor in an emergency: break-glass works and is flagged.
	od := signedIn(t, root, info.ChainID, otherDoctorKey.Key, "practitioner", "Practitioner/"+otherDoctor)
	req := map[string]string{"X-Break-Glass": "unconscious on arrival, allergy check"}
	if status, body := httpDoHeaders(t, "GET", gw.Base+"/DiagnosticReport/"+report, od, nil, req); status != 200 {
		t.Fatalf("break-glass read: %d %s", status, body)
	}

	// 7. The patient lists who accessed the records: both doctors, the
	// refusals, the grants in force and the emergency access.
	var trail []auditEvent
	within(t, 5*time.Second, "the trail to show the emergency access", func() bool {
		trail = auditTrail(t, gw.Base, pt, patient)
		return slices.ContainsFunc(trail, func(e auditEvent) bool { return e.breakGlass && e.who == "Practitioner/"+otherDoctor })
	})
	var allowed, denied int
	for _, e := range trail {
		if e.who == "Practitioner/"+doctor && e.what == "DiagnosticReport/"+report {
			if e.outcome == "0" {
				allowed++
			} else {
				denied++
			}
		}
	}
	if allowed == 0 || denied == 0 {
		t.Fatalf("the patient's trail misses the doctor's accesses (%d allowed, %d denied of %d events)", allowed, denied, len(trail))
	}
	t.Logf("the patient sees %d events: the doctor %d times allowed, %d times refused", len(trail), allowed, denied)
	// The portal leaves out the patient's own actions on the server.
	var others struct {
		Entry []struct{ Resource map[string]any }
	}
	mustJSON(t, get(t, gw.Base+"/AuditEvent?patient=Patient/"+patient+"&altid:not="+url.QueryEscape(caip10(patientKey))+"&_count=1000", pt), &others)
	for _, e := range others.Entry {
		if b, _ := json.Marshal(e.Resource); strings.Contains(string(b), caip10(patientKey)) {
			t.Fatalf("altid:not kept the patient's own action: %s", b)
		}
	}
	if len(others.Entry) == 0 || len(others.Entry) >= len(trail) {
		t.Fatalf("altid:not left %d of %d events", len(others.Entry), len(trail))
	}
	if status, body, _ := httpDo(t, "GET", gw.Base+"/AuditEvent?_count=5", dr, nil); status == 200 && strings.Contains(string(body), report) {
		t.Fatal("a doctor reads the audit trail")
	}

	// 8. A regulator fetches the proofs of those AuditEvents and `gateway
	// verify` accepts each against the chain, offline from the gateway.
	regulator := gw.Token(t, "", "--role", "regulator", "--sub", "regulator/ico")
	if status, _, _ := httpDo(t, "GET", gw.Base+"/DiagnosticReport/"+report, regulator, nil); status != 403 {
		t.Fatal("a regulator reads clinical content")
	}
	dir := t.TempDir()
	checked := 0
	for _, e := range trail {
		if e.who != "Practitioner/"+doctor && !e.breakGlass {
			continue
		}
		proof := waitProof(t, gw.Base+"/AuditEvent/"+e.id+"/_history/1/$proof", regulator)
		resource := get(t, gw.Base+"/AuditEvent/"+e.id+"/_history/1", regulator)
		pf, rf := filepath.Join(dir, "proof.json"), filepath.Join(dir, "event.json")
		os.WriteFile(pf, proof, 0o600)
		os.WriteFile(rf, resource, 0o600)
		var out bytes.Buffer
		if code := run([]string{"verify", "--rpc", info.RPC, "--proof", pf, "--resource", rf}, &out, &out); code != 0 {
			t.Fatalf("gateway verify refused AuditEvent/%s: %d %s", e.id, code, out.String())
		}
		checked++
	}
	t.Logf("gateway verify accepted %d AuditEvent proofs", checked)

	// No PHI on chain: no name, identifier or record id in any
	// transaction's calldata or any log, from genesis to the head.
	phi := []string{family, mrn, "Alex", patient, doctor, otherDoctor, report, appt, "LDL", "Lipid", "Santos", "Okafor"}
	scanChain(t, eth, phi)
}

// gatewayChain is what /.well-known/fhirgate says of the gateway's chain,
// with a client dialled to it (closed when the test ends).
type gatewayChain struct {
	ChainID   uint64            `json:"chainId"`
	RPC       string            `json:"rpc"`
	Contracts map[string]string `json:"contracts"`
	eth       *ethclient.Client
	registry  common.Address
}

func dialChain(t *testing.T, root string) gatewayChain {
	t.Helper()
	var info gatewayChain
	mustJSON(t, get(t, root+"/.well-known/fhirgate", ""), &info)
	eth, err := ethclient.Dial(info.RPC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eth.Close)
	info.eth, info.registry = eth, common.HexToAddress(info.Contracts["ConsentRegistry"])
	return info
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %.300s", err, b)
	}
}

func get(t *testing.T, url, tok string) []byte {
	t.Helper()
	status, body, _ := httpDo(t, "GET", url, tok, nil)
	if status != 200 {
		t.Fatalf("GET %s: %d %.300s", url, status, body)
	}
	return body
}

func httpDoHeaders(t *testing.T, method, url, tok string, body []byte, h map[string]string) (int, []byte) {
	t.Helper()
	status, out, _ := httpDoWith(t, method, url, tok, body, h)
	return status, out
}

func create(t *testing.T, base, tok, typ, body string) string {
	t.Helper()
	status, out, _ := httpDo(t, "POST", base+"/"+typ, tok, []byte(body))
	if status != 201 {
		t.Fatalf("create %s: %d %s", typ, status, out)
	}
	var r struct{ ID string }
	mustJSON(t, out, &r)
	return r.ID
}

// siweSignIn signs in with a wallet as the portal does: a nonce, an
// EIP-4361 message, a personal_sign signature.
func siweSignIn(t *testing.T, root string, chainID uint64, key *ecdsa.PrivateKey) (int, []byte) {
	t.Helper()
	var n struct{ Nonce string }
	mustJSON(t, get(t, root+"/auth/siwe/nonce", ""), &n)
	host := strings.TrimPrefix(root, "http://")
	now := time.Now().UTC()
	msg := fmt.Sprintf("%s wants you to sign in with your Ethereum account:\n%s\n\nSign in to fhirgate.\n\nURI: %s\nVersion: 1\nChain ID: %d\nNonce: %s\nIssued At: %s\nExpiration Time: %s",
		host, crypto.PubkeyToAddress(key.PublicKey).Hex(), root, chainID, n.Nonce, now.Format(time.RFC3339), now.Add(10*time.Minute).Format(time.RFC3339))
	digest := crypto.Keccak256([]byte(fmt.Sprintf("\x19Ethereum Signed Message:\n%d%s", len(msg), msg)))
	sig, err := crypto.Sign(digest, key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	body, _ := json.Marshal(map[string]string{"message": msg, "signature": "0x" + common.Bytes2Hex(sig)})
	status, out, _ := httpDoWith(t, "POST", root+"/auth/siwe", "", body, map[string]string{"Content-Type": "application/json"})
	return status, out
}

func signedIn(t *testing.T, root string, chainID uint64, key *ecdsa.PrivateKey, kind, want string) string {
	t.Helper()
	status, body := siweSignIn(t, root, chainID, key)
	var r map[string]any
	mustJSON(t, body, &r)
	if status != 200 || r[kind] != want || r["access_token"] == "" {
		t.Fatalf("sign-in as %s: %d %s", want, status, body)
	}
	return r["access_token"].(string)
}

// sendTx sends calldata from key and returns when its block is mined.
func sendTx(t *testing.T, eth *ethclient.Client, chainID uint64, key *ecdsa.PrivateKey, to common.Address, data []byte) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := eth.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := eth.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := eth.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(new(big.Int).SetUint64(chainID)), &types.DynamicFeeTx{
		ChainID: new(big.Int).SetUint64(chainID), Nonce: nonce, GasTipCap: tip,
		GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas:       200_000, To: &to, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eth.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// Poll the receipt closely (bind.WaitMined polls once a second): the
	// time returned is when the block was visible, within 10 ms.
	for {
		rc, err := eth.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if rc.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("transaction %s reverted", tx.Hash())
			}
			return time.Now()
		}
		if ctx.Err() != nil {
			t.Fatalf("transaction %s: %v", tx.Hash(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayGrant has the patient sign a Grant (EIP-712) and hands it to POST
// /consent/relay, then waits for the relay to report it confirmed.
func relayGrant(t *testing.T, root, tok string, eth *ethclient.Client, chainID uint64, registry common.Address, patient chain.Account, grantee common.Hash, scope string) {
	t.Helper()
	reg := bindings.NewConsentRegistry()
	nonce, err := bind.Call(reg.Instance(eth, registry), nil, reg.PackNonces(patient.Address), reg.UnpackNonces)
	if err != nil {
		t.Fatal(err)
	}
	d := consentsig.Domain{ChainID: new(big.Int).SetUint64(chainID), Registry: registry}
	g := consentsig.Grant{Patient: patient.Address, Grantee: grantee, Scope: consentsig.Scope(scope),
		Expiry: uint64(time.Now().Add(time.Hour).Unix()), Nonce: nonce, Deadline: big.NewInt(time.Now().Add(10 * time.Minute).Unix())}
	digest, err := g.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := consentsig.Sign(digest, patient.Key)
	if err != nil {
		t.Fatal(err)
	}
	var req map[string]any
	td, _ := json.Marshal(g.TypedData(d))
	mustJSON(t, td, &req)
	req["signature"] = "0x" + common.Bytes2Hex(sig)
	body, _ := json.Marshal(req)
	relayConfirmed(t, root, tok, body)
}

// relayConfirmed posts a signed consent to the relay and waits until the
// relay reports it confirmed.
func relayConfirmed(t *testing.T, root, tok string, body []byte) {
	t.Helper()
	status, out, _ := httpDoWith(t, "POST", root+"/consent/relay", tok, body, map[string]string{"Content-Type": "application/json"})
	if status != 202 {
		t.Fatalf("relay: %d %s", status, out)
	}
	var sub struct{ TxHash string }
	mustJSON(t, out, &sub)
	within(t, 30*time.Second, "the relayed consent to be confirmed", func() bool {
		var st struct{ State, Error string }
		mustJSON(t, get(t, root+"/consent/relay/"+sub.TxHash, tok), &st)
		if st.State == "failed" {
			t.Fatalf("the relayed consent failed: %s", st.Error)
		}
		return st.State == "confirmed"
	})
}

// preparedGrant asks POST /consent/relay/prepare for a Grant's typed data,
// signs exactly what came back and relays it: the prepared data must be
// what the contract verifies. Only the patient's own wallet may prepare.
func preparedGrant(t *testing.T, root, patientTok, doctorTok string, patient chain.Account, grantee, scope string) {
	t.Helper()
	req, _ := json.Marshal(map[string]string{"primaryType": "Grant", "patient": patient.Address.Hex(), "grantee": grantee, "scope": scope})
	ct := map[string]string{"Content-Type": "application/json"}
	if status, out, _ := httpDoWith(t, "POST", root+"/consent/relay/prepare", doctorTok, req, ct); status != 403 {
		t.Fatalf("a doctor prepared a patient's consent: %d %s", status, out)
	}
	other, _ := json.Marshal(map[string]string{"primaryType": "Grant", "patient": "0x000000000000000000000000000000000000dEaD", "grantee": grantee, "scope": scope})
	if status, out, _ := httpDoWith(t, "POST", root+"/consent/relay/prepare", patientTok, other, ct); status != 403 {
		t.Fatalf("a patient prepared another wallet's consent: %d %s", status, out)
	}
	status, out, _ := httpDoWith(t, "POST", root+"/consent/relay/prepare", patientTok, req, ct)
	if status != 200 {
		t.Fatalf("prepare: %d %s", status, out)
	}
	var td apitypes.TypedData
	mustJSON(t, out, &td)
	digest, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := consentsig.Sign(common.BytesToHash(digest), patient.Key)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	mustJSON(t, out, &body)
	body["signature"] = "0x" + common.Bytes2Hex(sig)
	signed, _ := json.Marshal(body)
	relayConfirmed(t, root, patientTok, signed)
}

// relayRefusals: the relay takes only a patient's own, well-formed,
// fresh signatures, and says why it refuses.
func relayRefusals(t *testing.T, root, patientTok, doctorTok string, eth *ethclient.Client, chainID uint64, registry common.Address,
	patient, stranger chain.Account, grantee common.Hash) {
	t.Helper()
	reg := bindings.NewConsentRegistry()
	nonce, err := bind.Call(reg.Instance(eth, registry), nil, reg.PackNonces(patient.Address), reg.UnpackNonces)
	if err != nil {
		t.Fatal(err)
	}
	d := consentsig.Domain{ChainID: new(big.Int).SetUint64(chainID), Registry: registry}
	signed := func(g consentsig.Grant, key *ecdsa.PrivateKey) []byte {
		digest, err := g.Digest(d)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := consentsig.Sign(digest, key)
		var req map[string]any
		td, _ := json.Marshal(g.TypedData(d))
		mustJSON(t, td, &req)
		req["signature"] = "0x" + common.Bytes2Hex(sig)
		b, _ := json.Marshal(req)
		return b
	}
	g := consentsig.Grant{Patient: patient.Address, Grantee: grantee, Scope: consentsig.Scope("DiagnosticReport.d"),
		Expiry: uint64(time.Now().Add(time.Hour).Unix()), Nonce: nonce, Deadline: big.NewInt(time.Now().Add(10 * time.Minute).Unix())}
	stale := g
	stale.Nonce = new(big.Int).Add(nonce, big.NewInt(5))
	forOther := g
	forOther.Patient = stranger.Address
	for _, tc := range []struct {
		name, tok string
		body      []byte
		status    int
		code      string
	}{
		{"a doctor", doctorTok, signed(g, patient.Key), 403, "forbidden"},
		{"not JSON", patientTok, []byte("{"), 400, "malformed"},
		{"signed by another wallet", patientTok, signed(forOther, stranger.Key), 403, "forbidden"},
		{"wrong signer for the patient", patientTok, signed(g, stranger.Key), 422, "wrong-signer"},
		{"a nonce out of order", patientTok, signed(stale, patient.Key), 409, "nonce"},
	} {
		status, out, _ := httpDoWith(t, "POST", root+"/consent/relay", tc.tok, tc.body, map[string]string{"Content-Type": "application/json"})
		var r struct{ Code, Error string }
		json.Unmarshal(out, &r)
		if status != tc.status || r.Code != tc.code || r.Error == "" {
			t.Errorf("relay of %s: %d %s, want %d %s", tc.name, status, out, tc.status, tc.code)
		}
	}
	if status, _, _ := httpDoWith(t, "GET", root+"/consent/relay/0x1234", patientTok, nil, nil); status != 400 {
		t.Errorf("status of a malformed hash: %d", status)
	}
	if status, _, _ := httpDoWith(t, "GET", root+"/consent/relay/0x"+strings.Repeat("ab", 32), patientTok, nil, nil); status != 404 {
		t.Errorf("status of an unknown hash: %d", status)
	}
	if status, _, _ := httpDoWith(t, "POST", root+"/consent/relay", "", signed(g, patient.Key), nil); status != 401 {
		t.Errorf("relay without a token: %d", status)
	}
}

// within polls cond every 20 ms and returns when it first held, failing
// after d.
func within(t *testing.T, d time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// consentOf returns the patient's projected Consent resources with status.
func consentOf(t *testing.T, base, tok, patient, status string) string {
	t.Helper()
	var out []byte
	within(t, 5*time.Second, "a "+status+" Consent", func() bool {
		out = get(t, base+"/Consent?patient=Patient/"+patient+"&status="+status, tok)
		return strings.Contains(string(out), `"resourceType":"Consent"`)
	})
	return string(out)
}

type auditEvent struct {
	id, who, what, outcome string
	breakGlass             bool
}

// auditTrail is what the patient sees of the AuditEvents about them.
func auditTrail(t *testing.T, base, tok, patient string) []auditEvent {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ID      string `json:"id"`
				Outcome string `json:"outcome"`
				Purpose []struct {
					Coding []struct{ Code string } `json:"coding"`
				} `json:"purposeOfEvent"`
				Agent []struct {
					Requestor bool `json:"requestor"`
					Who       struct {
						Reference  string
						Identifier struct{ Value string }
					}
				} `json:"agent"`
				Entity []struct {
					What struct{ Reference string }
				} `json:"entity"`
			} `json:"resource"`
		} `json:"entry"`
	}
	mustJSON(t, get(t, base+"/AuditEvent?patient=Patient/"+patient+"&_count=1000", tok), &b)
	var out []auditEvent
	for _, e := range b.Entry {
		r := e.Resource
		ev := auditEvent{id: r.ID, outcome: r.Outcome}
		for _, a := range r.Agent {
			if a.Requestor {
				ev.who = a.Who.Reference + a.Who.Identifier.Value
			}
		}
		for _, en := range r.Entity {
			if ref, _, _ := strings.Cut(en.What.Reference, "/_history/"); !strings.HasPrefix(ref, "Patient/") {
				ev.what = ref
			}
		}
		for _, p := range r.Purpose {
			for _, c := range p.Coding {
				ev.breakGlass = ev.breakGlass || c.Code == "BTG"
			}
		}
		out = append(out, ev)
	}
	return out
}

func waitProof(t *testing.T, url, tok string) []byte {
	t.Helper()
	var proof []byte
	within(t, 30*time.Second, "a proof", func() bool {
		var status int
		status, proof, _ = httpDo(t, "GET", url, tok, nil)
		if status != 200 && status != 202 {
			t.Fatalf("%s: %d %s", url, status, proof)
		}
		return status == 200
	})
	return proof
}

// scanChain reads every block from genesis to the head and fails if any
// transaction's calldata or any log carries one of the strings.
func scanChain(t *testing.T, eth *ethclient.Client, phi []string) {
	t.Helper()
	ctx := context.Background()
	head, err := eth.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	txs, logs := 0, 0
	check := func(where string, b []byte) {
		for _, s := range phi {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s carries %q", where, s)
			}
		}
	}
	for n := uint64(0); n <= head; n++ {
		blk, err := eth.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("block %d extra data", n), blk.Extra())
		for _, tx := range blk.Transactions() {
			txs++
			check("transaction "+tx.Hash().Hex(), tx.Data())
			rc, err := eth.TransactionReceipt(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range rc.Logs {
				logs++
				check("a log of "+tx.Hash().Hex(), l.Data)
				for _, topic := range l.Topics {
					check("a log topic of "+tx.Hash().Hex(), topic[:])
				}
			}
		}
	}
	if txs < 4 || logs < 4 {
		t.Fatalf("the scan saw %d transactions and %d logs: nothing to check", txs, logs)
	}
	t.Logf("no PHI in %d blocks, %d transactions, %d logs", head+1, txs, logs)
}
