package consent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/policy"
)

// A grant stops at its expiry to the second, by the wall clock: allowed
// just before, refused just after; its Consent turns inactive at once.
func TestExpiryToTheSecond(t *testing.T) {
	e := newEnv(t, chain.DevConfig{BlockPeriod: time.Second})
	pat := e.account(1)
	fl := e.follow(nil)
	fl.SetPatient(testCtx(t), wallet(pat.Address), "Patient/exp-1")
	fl.AddGrantees(testCtx(t), "Practitioner/exp-doc")
	exp := time.Now().Truncate(time.Second).Add(5 * time.Second)
	r := e.wait(pat.Key, e.sendGrant(pat.Key, "Practitioner/exp-doc", "Observation.rs", uint64(exp.Unix())))
	fl.caughtUpTo(t, r.BlockNumber.Uint64())
	allowed := func() bool {
		return fl.allowed("Practitioner/exp-doc", "Patient/exp-1", "Observation", policy.PermRead)
	}

	time.Sleep(time.Until(exp.Add(-300 * time.Millisecond)))
	if !allowed() {
		t.Fatalf("refused %v before the expiry", time.Until(exp))
	}
	time.Sleep(time.Until(exp.Add(5 * time.Millisecond)))
	if allowed() {
		t.Fatalf("allowed %v after the expiry", -time.Until(exp))
	}
	k := gkey{Patient: pat.Address, Grantee: consentsig.Grantee("Practitioner/exp-doc"), Scope: consentsig.Scope("Observation.rs")}
	id := consentID(chain.DevChainID, e.registry, k)
	eventually(t, 2*time.Second, func() bool {
		fl.tmu.Lock()
		defer fl.tmu.Unlock()
		var c consentResource
		json.Unmarshal(fl.projs[id].Body, &c)
		return c.Status == "inactive"
	}, "inactive Consent")
	t.Logf("Consent inactive %v after the expiry", -time.Until(exp).Round(time.Millisecond))
	// The contract agrees once a block is past the expiry.
	eventually(t, 5*time.Second, func() bool { return e.dev.Head().Time >= uint64(exp.Unix()) }, "a block past the expiry")
	ok, err := bind.Call(regABI.Instance(e.c, e.registry), nil, regABI.PackIsPermitted(k.Patient, k.Grantee, k.Scope), regABI.UnpackIsPermitted)
	if err != nil || ok {
		t.Errorf("isPermitted after expiry: %v, %v", ok, err)
	}
}
