package consent

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/policy"
)

// No PHI on chain: after direct and relayed grants and revocations for
// named patients, the calldata of every transaction and every log of every
// block holds none of the names, identifiers or resource ids involved, in
// any common encoding.
func TestNoPHIOnChain(t *testing.T) {
	re := newRelayEnv(t, chain.DevConfig{BlockPeriod: time.Second})
	ctx := testCtx(t)
	phi := []string{
		"Alice Wonderland", "Wonderland", "MRN-5531-ALICE", "pat-alice-5531", "Patient/pat-alice-5531",
		"Bob Tables", "pat-bob-0042", "Patient/pat-bob-0042", "1970-01-01",
		"dr-carol-7781", "Practitioner/dr-carol-7781", "org-stmary-12", "Organization/org-stmary-12", "ehr-client-9",
		"obs-glucose-9917", "Observation/obs-glucose-9917", "DiagnosticReport", "Observation",
	}
	alice := re.account(1)
	bobKey, _ := crypto.GenerateKey() // relayed: no ether
	bob := crypto.PubkeyToAddress(bobKey.PublicKey)
	re.fl.SetPatient(testCtx(t), wallet(alice.Address), "Patient/pat-alice-5531")
	re.fl.SetPatient(testCtx(t), wallet(bob), "Patient/pat-bob-0042")
	re.fl.AddGrantees(ctx, "Practitioner/dr-carol-7781", "Organization/org-stmary-12", "client/ehr-client-9")

	// Alice from her wallet.
	re.wait(alice.Key, re.sendGrant(alice.Key, "Practitioner/dr-carol-7781", "Observation.rs", forever))
	re.wait(alice.Key, re.sendGrant(alice.Key, "Organization/org-stmary-12", "DiagnosticReport.r", uint64(time.Now().Unix()+3600)))
	re.wait(alice.Key, re.sendRevoke(alice.Key, "Practitioner/dr-carol-7781", "Observation.rs"))
	// Bob through the relay.
	var last uint64
	for _, pr := range []PrepareRequest{
		{PrimaryType: "Grant", Patient: bob.Hex(), Grantee: "client/ehr-client-9", Scope: "*.rs"},
		{PrimaryType: "Grant", Patient: bob.Hex(), Grantee: "Practitioner/dr-carol-7781", Scope: "Observation.cruds"},
		{PrimaryType: "Revoke", Patient: bob.Hex(), Grantee: "client/ehr-client-9", Scope: "*.rs"},
	} {
		td, err := re.relay.Prepare(ctx, pr)
		if err != nil {
			t.Fatal(err)
		}
		h, err := re.submit(t, request(t, td, sign(t, bobKey, td)))
		if err != nil {
			t.Fatal(err)
		}
		last = re.waitStatus(t, h, "confirmed").Block
	}
	re.fl.caughtUpTo(t, last)
	if !re.fl.allowed("Practitioner/dr-carol-7781", "Patient/pat-bob-0042", "Observation", policy.PermUpdate) {
		t.Fatal("relayed grant not applied")
	}

	var needles [][]byte
	for _, s := range phi {
		for _, v := range []string{s, strings.ToLower(s), strings.ToUpper(s)} {
			needles = append(needles, []byte(v), []byte(hex.EncodeToString([]byte(v))))
		}
	}
	head := re.dev.Head().Number.Uint64()
	var txs, logs int
	for n := uint64(0); n <= head; n++ {
		b, err := re.c.BlockByNumber(ctx, u64(int64(n)))
		if err != nil {
			t.Fatal(err)
		}
		hay := [][]byte{b.Extra()}
		for _, tx := range b.Transactions() {
			txs++
			hay = append(hay, tx.Data())
			r, err := re.c.TransactionReceipt(ctx, tx.Hash())
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range r.Logs {
				logs++
				hay = append(hay, l.Data)
				for _, tp := range l.Topics {
					hay = append(hay, tp[:])
				}
			}
		}
		for _, h := range hay {
			for _, nd := range needles {
				if bytes.Contains(h, nd) {
					t.Errorf("block %d carries %q", n, nd)
				}
			}
		}
	}
	t.Logf("scanned %d blocks, %d transactions, %d logs: no PHI", head+1, txs, logs)
	if txs < 7 || logs < 6 {
		t.Errorf("scanned too little: %d transactions, %d logs", txs, logs)
	}
}
