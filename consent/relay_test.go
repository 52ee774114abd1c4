package consent

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	gmath "github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
)

type relayEnv struct {
	*env
	fl    *follower
	relay *Relay
}

func newRelayEnv(t *testing.T, dc chain.DevConfig) *relayEnv {
	e := newEnv(t, dc)
	fl := e.follow(nil)
	r, err := NewRelay(RelayConfig{Sender: e.gw, Registry: e.registry, Engine: e.eng, KnownGrantee: fl.KnowsGrantee, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return &relayEnv{env: e, fl: fl, relay: r}
}

// request builds the JSON body a portal posts: the typed data the wallet
// signed, plus the signature.
func request(t testing.TB, td apitypes.TypedData, sig []byte) []byte {
	t.Helper()
	b, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	m["signature"] = "0x" + common.Bytes2Hex(sig)
	out, _ := json.Marshal(m)
	return out
}

func sign(t testing.TB, key *ecdsa.PrivateKey, td apitypes.TypedData) []byte {
	t.Helper()
	h, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := consentsig.Sign(common.BytesToHash(h), key)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func (re *relayEnv) submit(t testing.TB, body []byte) (common.Hash, error) {
	t.Helper()
	s, err := DecodeRelayRequest(body)
	if err != nil {
		return common.Hash{}, err
	}
	acc, err := re.relay.Submit(testCtx(t), s)
	return acc.TxHash, err
}

func (re *relayEnv) grantTD(patient common.Address, grantee, scope string, expiry uint64, nonce int64, deadline int64) apitypes.TypedData {
	return consentsig.Grant{Patient: patient, Grantee: consentsig.Grantee(grantee), Scope: consentsig.Scope(scope), Expiry: expiry,
		Nonce: big.NewInt(nonce), Deadline: big.NewInt(deadline)}.TypedData(re.relay.Domain())
}

func (re *relayEnv) revokeTD(patient common.Address, grantee, scope string, nonce int64, deadline int64) apitypes.TypedData {
	return consentsig.Revoke{Patient: patient, Grantee: consentsig.Grantee(grantee), Scope: consentsig.Scope(scope),
		Nonce: big.NewInt(nonce), Deadline: big.NewInt(deadline)}.TypedData(re.relay.Domain())
}

func (re *relayEnv) waitStatus(t testing.TB, h common.Hash, want string) TxStatus {
	t.Helper()
	var st TxStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		st, err = re.relay.Status(testCtx(t), h)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for status %s: %+v", want, st)
		}
	}
}

// A patient without ether grants and revokes through the relay (via
// Prepare, as the portal does); the follower applies both.
func TestRelayHappyPath(t *testing.T) {
	re := newRelayEnv(t, chain.DevConfig{BlockPeriod: time.Second})
	key, _ := crypto.GenerateKey()
	patient := crypto.PubkeyToAddress(key.PublicKey)
	re.fl.SetPatient(testCtx(t), wallet(patient), "Patient/relay-1")
	re.fl.AddGrantees(testCtx(t), "Practitioner/relay-doc")
	ctx := testCtx(t)

	td, err := re.relay.Prepare(ctx, PrepareRequest{PrimaryType: "Grant", Patient: patient.Hex(), Grantee: "Practitioner/relay-doc", Scope: "Observation.rs"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := re.submit(t, request(t, td, sign(t, key, td)))
	if err != nil {
		t.Fatal(err)
	}
	st, err := re.relay.Status(ctx, h)
	if err != nil || (st.State != "pending" && st.State != "mined") || st.Kind != "grant" {
		t.Fatalf("status right after submit: %+v, %v", st, err)
	}
	st = re.waitStatus(t, h, "confirmed")
	re.fl.caughtUpTo(t, st.Block)
	if !re.fl.allowed("Practitioner/relay-doc", "Patient/relay-1", "Observation", policy.PermRead) {
		t.Fatal("relayed grant not in force")
	}
	// A second grant signed right away (nonce 1) while nothing is pending,
	// and a revocation queued behind it (nonce 2) before it is mined.
	td1, _ := re.relay.Prepare(ctx, PrepareRequest{PrimaryType: "Grant", Patient: patient.Hex(), Grantee: "Practitioner/relay-doc", Scope: "Condition.r", Expiry: "until-revoked"})
	h1, err := re.submit(t, request(t, td1, sign(t, key, td1)))
	if err != nil {
		t.Fatal(err)
	}
	td2, _ := re.relay.Prepare(ctx, PrepareRequest{PrimaryType: "Revoke", Patient: patient.Hex(), Grantee: "Practitioner/relay-doc", Scope: "Observation.rs"})
	if td2.Message["nonce"] != "2" {
		t.Fatalf("prepared nonce %v, want 2 (one in flight)", td2.Message["nonce"])
	}
	h2, err := re.submit(t, request(t, td2, sign(t, key, td2)))
	if err != nil {
		t.Fatal(err)
	}
	re.waitStatus(t, h1, "confirmed")
	st = re.waitStatus(t, h2, "confirmed")
	re.fl.caughtUpTo(t, st.Block)
	if re.fl.allowed("Practitioner/relay-doc", "Patient/relay-1", "Observation", policy.PermRead) ||
		!re.fl.allowed("Practitioner/relay-doc", "Patient/relay-1", "Condition", policy.PermRead) {
		t.Fatal("relayed revocation or second grant not applied")
	}
	bal, err := re.c.BalanceAt(ctx, patient, nil)
	if err != nil || bal.Sign() != 0 {
		t.Fatalf("patient balance %v, %v: patients need no ether", bal, err)
	}
	if _, err := re.relay.Status(ctx, common.HexToHash("0x1234")); !errors.Is(err, ErrUnknownTx) {
		t.Errorf("Status of an unknown hash: %v", err)
	}
}

// Every refusal, each with nothing sent.
func TestRelayRefusals(t *testing.T) {
	re := newRelayEnv(t, chain.DevConfig{Manual: true})
	key, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	patient := crypto.PubkeyToAddress(key.PublicKey)
	re.fl.AddGrantees(testCtx(t), "Practitioner/ok")
	now := time.Now().Unix()
	later := now + 600
	ok := re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, later)

	withDomain := func(td apitypes.TypedData, f func(*apitypes.TypedDataDomain)) apitypes.TypedData {
		f(&td.Domain)
		return td
	}
	mutSig := func(f func([]byte)) []byte {
		s := sign(t, key, ok)
		f(s)
		return s
	}
	highS := func() []byte {
		s := sign(t, key, ok)
		n := crypto.S256().Params().N
		sv := new(big.Int).SetBytes(s[32:64])
		copy(s[32:64], common.LeftPadBytes(new(big.Int).Sub(n, sv).Bytes(), 32))
		s[64] ^= 1 // 27 <-> 28
		return s
	}()
	chain1 := apitypes.TypedData(ok)
	chain1.Domain.ChainId = (*gmath.HexOrDecimal256)(big.NewInt(1))
	signedForChain1 := sign(t, key, chain1)

	tests := []struct {
		name string
		body []byte
		code string
	}{
		{"signature by someone else", request(t, ok, sign(t, other, ok)), CodeWrongSigner},
		{"altered field after signing", request(t, re.grantTD(patient, "Practitioner/ok", "Observation.cruds", forever, 0, later), sign(t, key, ok)), CodeWrongSigner},
		{"corrupted s", request(t, ok, mutSig(func(s []byte) { s[63] ^= 1 })), CodeWrongSigner},
		{"r not on the curve", request(t, ok, mutSig(func(s []byte) { copy(s[:32], bytes.Repeat([]byte{0xff}, 32)) })), CodeBadSignature},
		{"v not 27/28", request(t, ok, mutSig(func(s []byte) { s[64] = 29 })), CodeBadSignature},
		{"high s twin", request(t, ok, highS), CodeBadSignature},
		{"64-byte signature", request(t, ok, sign(t, key, ok)[:64]), CodeBadSignature},
		{"deadline passed", request(t, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, now-5), sign(t, key, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, now-5))), CodeDeadline},
		{"deadline too close", request(t, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, now+2), sign(t, key, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, now+2))), CodeDeadline},
		{"expiry in the past", request(t, re.grantTD(patient, "Practitioner/ok", "Observation.rs", uint64(now-1), 0, later), sign(t, key, re.grantTD(patient, "Practitioner/ok", "Observation.rs", uint64(now-1), 0, later))), CodeExpiry},
		{"future nonce", request(t, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 1, later), sign(t, key, re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 1, later))), CodeNonce},
		{"domain of another chain", request(t, chain1, signedForChain1), CodeWrongChain},
		{"signed for another chain, domain left out", func() []byte {
			var m map[string]any
			json.Unmarshal(request(t, ok, signedForChain1), &m)
			delete(m, "domain")
			b, _ := json.Marshal(m)
			return b
		}(), CodeWrongSigner},
		{"another registry", func() []byte {
			td := withDomain(ok, func(d *apitypes.TypedDataDomain) { d.VerifyingContract = "0x000000000000000000000000000000000000dEaD" })
			return request(t, td, sign(t, key, td))
		}(), CodeWrongRegistry},
		{"unknown scope", request(t, re.grantTD(patient, "Practitioner/ok", "Nonsense.rs", forever, 0, later), sign(t, key, re.grantTD(patient, "Practitioner/ok", "Nonsense.rs", forever, 0, later))), CodeUnknownScope},
		{"unknown grantee", request(t, re.grantTD(patient, "Practitioner/nobody", "Observation.rs", forever, 0, later), sign(t, key, re.grantTD(patient, "Practitioner/nobody", "Observation.rs", forever, 0, later))), CodeUnknownGrantee},
		{"zero grantee", func() []byte {
			td := ok
			td.Message = apitypes.TypedDataMessage{}
			for k, v := range ok.Message {
				td.Message[k] = v
			}
			td.Message["grantee"] = common.Hash{}.Hex()
			return request(t, td, sign(t, key, td))
		}(), CodeZero},
		{"revoke of no grant", request(t, re.revokeTD(patient, "Practitioner/ok", "Observation.rs", 0, later), sign(t, key, re.revokeTD(patient, "Practitioner/ok", "Observation.rs", 0, later))), CodeNoSuchGrant},
		{"not JSON", []byte(`{"primaryType": "Grant",`), CodeMalformed},
	}
	before, _ := re.c.PendingNonceAt(testCtx(t), re.gw.Address())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := re.submit(t, tc.body)
			var rerr *RefusedError
			if !errors.As(err, &rerr) || !errors.Is(err, ErrRefused) || rerr.Code != tc.code {
				t.Fatalf("got %v, want refusal %q", err, tc.code)
			}
			t.Logf("%s", rerr.Reason)
		})
	}
	if after, _ := re.c.PendingNonceAt(testCtx(t), re.gw.Address()); after != before {
		t.Errorf("refusals sent %d transactions", after-before)
	}

	// Replay: while pending, and after it is mined.
	good := request(t, ok, sign(t, key, ok))
	h, err := re.submit(t, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := re.submit(t, good); !isRefusal(err, CodeNonce) || !strings.Contains(err.Error(), "already submitted") {
		t.Errorf("replay while pending: %v", err)
	}
	re.mine()
	re.waitStatus(t, h, "confirmed")
	if _, err := re.submit(t, good); !isRefusal(err, CodeNonce) || !strings.Contains(err.Error(), "already used") {
		t.Errorf("replay after mining: %v", err)
	}
}

func isRefusal(err error, code string) bool {
	var r *RefusedError
	return errors.As(err, &r) && r.Code == code
}

// A relayed transaction that reverts (another relayer front-ran the same
// signature) is reported failed, and the patient's nonce moves on.
func TestRelayFrontRun(t *testing.T) {
	re := newRelayEnv(t, chain.DevConfig{Manual: true})
	key, _ := crypto.GenerateKey()
	patient := crypto.PubkeyToAddress(key.PublicKey)
	re.fl.AddGrantees(testCtx(t), "Practitioner/ok")
	// One deadline for both: the rival's call must carry exactly what was
	// signed. With two time.Now() calls, a second boundary crossed between
	// them (about 1 run in 20) made the rival's signature invalid, so the
	// rival reverted and the relay's transaction was confirmed.
	deadline := time.Now().Unix() + 600
	td := re.grantTD(patient, "Practitioner/ok", "Observation.rs", forever, 0, deadline)
	sig := sign(t, key, td)
	h, err := re.submit(t, request(t, td, sig))
	if err != nil {
		t.Fatal(err)
	}
	// The relay sends from its queue in the background, and its record
	// turns pending in the commit before the broadcast; the node's pool
	// promotes what it is sent asynchronously. Both transactions must be
	// pending in the pool before the one block is mined.
	re.waitStatus(t, h, "pending")
	var relayed *types.Transaction
	eventually(t, 10*time.Second, func() bool {
		tx, pending, err := re.c.TransactionByHash(testCtx(t), h)
		relayed = tx
		return err == nil && pending
	}, "the relayed transaction in the pool")
	re.waitPool(re.gw.Address(), relayed.Nonce()+1)
	// Someone else relays the same signature, paying a higher tip.
	data := regABI.PackGrantBySig(patient, consentsig.Grantee("Practitioner/ok"), consentsig.Scope("Observation.rs"), forever, big.NewInt(deadline), sig)
	rival := re.account(7)
	re.sendRaw(rival.Key, 0, data)
	re.waitPool(rival.Address, 1)
	re.mine()
	st := re.waitStatus(t, h, "failed")
	if st.Block == 0 || st.Error == "" {
		t.Errorf("status %+v", st)
	}
	next, err := re.relay.Prepare(testCtx(t), PrepareRequest{PrimaryType: "Revoke", Patient: patient.Hex(), Grantee: "Practitioner/ok", Scope: "Observation.rs"})
	if err != nil || next.Message["nonce"] != "1" {
		t.Errorf("next nonce %v, %v; want 1", next.Message["nonce"], err)
	}
}

// Unknown wallets are refused when KnownPatient is set; a patient's
// transactions in flight are bounded.
func TestRelayPatientLimits(t *testing.T) {
	re := newRelayEnv(t, chain.DevConfig{Manual: true})
	re.relay.cfg.KnownPatient = re.fl.KnowsWallet
	re.relay.cfg.MaxPending = 2
	key, _ := crypto.GenerateKey()
	patient := crypto.PubkeyToAddress(key.PublicKey)
	re.fl.AddGrantees(testCtx(t), "Practitioner/ok")
	later := time.Now().Unix() + 600
	grant := func(scope string, nonce int64) []byte {
		td := re.grantTD(patient, "Practitioner/ok", scope, forever, nonce, later)
		return request(t, td, sign(t, key, td))
	}
	if _, err := re.submit(t, grant("Observation.r", 0)); !isRefusal(err, CodeUnknownPatient) {
		t.Fatalf("unknown wallet: %v", err)
	}
	re.fl.SetPatient(testCtx(t), wallet(patient), "Patient/lim-1")
	var hs []common.Hash
	for i, sc := range []string{"Observation.r", "Condition.r"} {
		h, err := re.submit(t, grant(sc, int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if _, err := re.submit(t, grant("Encounter.r", 2)); !isRefusal(err, CodeBusy) {
		t.Fatalf("third in flight: %v", err)
	}
	re.mine()
	for _, h := range hs {
		re.waitStatus(t, h, "confirmed")
	}
	eventually(t, 5*time.Second, func() bool {
		_, err := re.submit(t, grant("Encounter.r", 2))
		if err != nil && !isRefusal(err, CodeBusy) {
			t.Fatal(err)
		}
		return err == nil
	}, "room for the next transaction")
	if got := SignerOf(SignedGrant{Grant: consentsig.Grant{Patient: patient}}); got != patient {
		t.Errorf("SignerOf = %s", got.Hex())
	}
}
