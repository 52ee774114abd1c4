package main

import (
	"bytes"
	"crypto/ecdsa"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
)

// TestWalletSignIn runs the real gateway on its embedded dev chain without
// --admins (dev account (9) administers) and with --regulators: what each
// wallet signs in as, that an applicant opens no FHIR route and cannot
// relay a consent, and that sessions end at once when an administrator
// deactivates a practitioner or a clinic replaces a patient's wallet.
func TestWalletSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway with its chain")
	}
	accounts := chain.DevAccounts()
	adminKey, regKey, applicantKey, doctorKey, unverifiedKey, patientKey, nextKey :=
		accounts[9], accounts[8], accounts[7], accounts[6], accounts[5], accounts[4], accounts[3]
	gw := testgateway.Start(t, "", "--regulators", regKey.Address.Hex())
	root := strings.TrimSuffix(gw.Base, "/fhir")
	info := dialChain(t, root)
	walletID := func(a chain.Account) string {
		return fmt.Sprintf(`{"system":"https://chainagnostic.org/CAIPs/caip-10","value":"eip155:%d:%s"}`, info.ChainID, a.Address.Hex())
	}

	// The banner names the default administrator.
	if want := fmt.Sprintf("(9) %s %s administrator (--admins)", adminKey.Address.Hex(), adminKey.PrivateKeyHex()); !strings.Contains(gw.Logs(), want) {
		t.Errorf("the start-up banner does not mark the dev administrator (%q):\n%s", want, gw.Logs())
	}

	ehr := gw.Token(t, "system/*.cruds "+policy.ScopeIdentityLinking)
	admin := signedInAs(t, root, info.ChainID, adminKey.Key, "admin")
	doctor := create(t, gw.Base, admin, "Practitioner", `{"resourceType":"Practitioner","active":true,"identifier":[`+walletID(doctorKey)+`],"name":[{"family":"Okafor"}]}`)
	create(t, gw.Base, admin, "Practitioner", `{"resourceType":"Practitioner","active":false,"identifier":[`+walletID(unverifiedKey)+`],"name":[{"family":"Nash"}]}`)
	patient := create(t, gw.Base, ehr, "Patient", `{"resourceType":"Patient","identifier":[`+walletID(patientKey)+`],"name":[{"family":"Rivera"}]}`)

	t.Run("Roles", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			key    chain.Account
			status int
			role   string
			scope  string // contained in the answer's scope
			record string // the answer's patient or practitioner
			refuse string
		}{
			{"administrator (dev default)", adminKey, 200, "admin", "system/Practitioner.cruds", "", ""},
			{"administrator may decide registrations", adminKey, 200, "admin", policy.ScopeRegistrationAdmin, "", ""},
			{"regulator (--regulators)", regKey, 200, "regulator", "system/AuditEvent.rs", "", ""},
			{"wallet linked to nothing", applicantKey, 200, "applicant", policy.ScopeRegistration, "", ""},
			{"patient", patientKey, 200, "patient", "patient/", "Patient/" + patient, ""},
			{"practitioner", doctorKey, 200, "practitioner", "user/", "Practitioner/" + doctor, ""},
			{"practitioner not verified", unverifiedKey, 403, "", "", "", "the practitioner account of this wallet is not active: an administrator has not verified it yet, or has deactivated it"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := siweSignIn(t, root, info.ChainID, tc.key.Key)
				if status != tc.status || !bytes.Contains(body, []byte(tc.refuse)) {
					t.Fatalf("%d %s", status, body)
				}
				if tc.status != 200 {
					return
				}
				var r struct{ Role, Scope, Patient, Practitioner string }
				mustJSON(t, body, &r)
				if r.Role != tc.role || !strings.Contains(r.Scope, tc.scope) || r.Patient+r.Practitioner != tc.record {
					t.Fatalf("%s", body)
				}
			})
		}
	})

	t.Run("ApplicantOpensNothing", func(t *testing.T) {
		tok := signedInAs(t, root, info.ChainID, applicantKey.Key, "applicant")
		for _, r := range []struct{ method, url, body string }{
			{"GET", gw.Base + "/Patient/" + patient, ""},
			{"GET", gw.Base + "/Patient", ""},
			{"GET", gw.Base + "/Practitioner/" + doctor, ""},
			{"GET", gw.Base + "/Practitioner", ""},
			{"GET", gw.Base + "/AuditEvent", ""},
			{"POST", gw.Base + "/Patient", `{"resourceType":"Patient"}`},
			{"POST", gw.Base + "/Practitioner", `{"resourceType":"Practitioner","active":true}`},
			// The consent relay: only a patient relays their own consent.
			{"POST", root + "/consent/relay", `{}`},
			{"POST", root + "/consent/relay/prepare", `{"patient":"` + applicantKey.Address.Hex() + `","action":"grant"}`},
		} {
			var body []byte
			if r.body != "" {
				body = []byte(r.body)
			}
			status, out, _ := httpDo(t, r.method, r.url, tok, body)
			if status != 403 {
				t.Errorf("%s %s as an applicant: %d %.300s", r.method, r.url, status, out)
			}
		}
	})

	sessionEnded := func(t *testing.T, tok, url, reason string) {
		t.Helper()
		status, out, h := httpDo(t, "GET", url, tok, nil)
		want := "Your session has ended: " + reason + ". Sign in again."
		if status != 401 || !bytes.Contains(out, []byte(want)) || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("after the change: %d %s (WWW-Authenticate %q), want 401 %q", status, out, h.Get("WWW-Authenticate"), want)
		}
	}

	t.Run("PractitionerDeactivated", func(t *testing.T) {
		dr := signedInAs(t, root, info.ChainID, doctorKey.Key, "practitioner")
		if status, out, _ := httpDo(t, "GET", gw.Base+"/Practitioner/"+doctor, dr, nil); status != 200 {
			t.Fatalf("before: %d %s", status, out)
		}
		body := `{"resourceType":"Practitioner","id":"` + doctor + `","active":false,"identifier":[` + walletID(doctorKey) + `],"name":[{"family":"Okafor"}]}`
		if status, out, _ := httpDo(t, "PUT", gw.Base+"/Practitioner/"+doctor, admin, []byte(body)); status != 200 {
			t.Fatalf("deactivate: %d %s", status, out)
		}
		sessionEnded(t, dr, gw.Base+"/Practitioner/"+doctor, "your practitioner account was deactivated by an administrator")
		if status, out := siweSignIn(t, root, info.ChainID, doctorKey.Key); status != 403 {
			t.Fatalf("a deactivated practitioner signs in: %d %s", status, out)
		}
	})

	t.Run("PatientWalletReplaced", func(t *testing.T) {
		pt := signedInAs(t, root, info.ChainID, patientKey.Key, "patient")
		body := `{"resourceType":"Patient","id":"` + patient + `","identifier":[` + walletID(nextKey) + `],"name":[{"family":"Rivera"}]}`
		if status, out, _ := httpDo(t, "PUT", gw.Base+"/Patient/"+patient, ehr, []byte(body)); status != 200 {
			t.Fatalf("replace the wallet: %d %s", status, out)
		}
		sessionEnded(t, pt, gw.Base+"/Patient/"+patient, "this wallet is no longer linked to your record")
		// The old wallet is an applicant now; the new one is the patient.
		signedInAs(t, root, info.ChainID, patientKey.Key, "applicant")
		next := signedInAs(t, root, info.ChainID, nextKey.Key, "patient")
		if status, out, _ := httpDo(t, "GET", gw.Base+"/Patient/"+patient, next, nil); status != 200 {
			t.Fatalf("the new wallet reads the record: %d %s", status, out)
		}
	})

	t.Run("ApplicantLinked", func(t *testing.T) {
		tok := signedInAs(t, root, info.ChainID, applicantKey.Key, "applicant")
		create(t, gw.Base, ehr, "Patient", `{"resourceType":"Patient","identifier":[`+walletID(applicantKey)+`],"name":[{"family":"Okoye"}]}`)
		sessionEnded(t, tok, gw.Base+"/Practitioner", "this wallet is now linked to a record")
		signedInAs(t, root, info.ChainID, applicantKey.Key, "patient")
	})
}

// signedInAs signs in with a wallet and returns the token, failing unless
// the answer's role is role.
func signedInAs(t *testing.T, root string, chainID uint64, key *ecdsa.PrivateKey, role string) string {
	t.Helper()
	status, body := siweSignIn(t, root, chainID, key)
	var r map[string]any
	mustJSON(t, body, &r)
	if status != 200 || r["role"] != role || r["access_token"] == "" {
		t.Fatalf("sign-in as %s: %d %s", role, status, body)
	}
	return r["access_token"].(string)
}

// TestOperatorFlagsChecked: an address that is not one refuses the start,
// saying which.
func TestOperatorFlagsChecked(t *testing.T) {
	bin := testgateway.Binary(t)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--admins", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8,alice"}, "", `administrator wallet "alice": invalid Ethereum address`},
		{[]string{"--regulators", "0x1234"}, "", `regulator wallet "0x1234": invalid Ethereum address`},
		{nil, "FHIRGATE_ADMINS=0x70997970c51812dc3A010C7d01b50e0d17dc79C8", "EIP-55 checksum mismatch"},
		{[]string{"--admins", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--regulators", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"}, "", "both administrator and regulator"},
	} {
		cmd := exec.Command(bin, append([]string{"serve", "--data", t.TempDir(), "--addr", "127.0.0.1:0"}, tc.args...)...)
		cmd.Env = append(cmd.Environ(), "FHIRGATE_ADMINS=", "FHIRGATE_REGULATORS=")
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(out.String(), "gateway serve: --admins/--regulators: ") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("%v %s: %v\n%s", tc.args, tc.env, err, out.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("%v %s: the gateway started", tc.args, tc.env)
		}
	}
}
