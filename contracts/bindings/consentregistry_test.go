package bindings_test

import (
	"context"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
)

var consentABI = bindings.NewConsentRegistry()

var (
	practitioner = consentsig.Grantee("Practitioner/123")
	organization = consentsig.Grantee("Organization/abc")
	reports      = consentsig.Scope("DiagnosticReport.rs")
	everything   = consentsig.Scope("*.rs")
)

type consentEnv struct {
	*chain
	c                                    *bind.BoundContract
	patient, patient2, relayer, stranger account
	domain                               consentsig.Domain
}

func newConsentEnv(t *testing.T, opts ...option) *consentEnv {
	t.Helper()
	accts := newAccounts(t, 4)
	ch := newChain(t, accts, opts...)
	e := &consentEnv{chain: ch, patient: accts[0], patient2: accts[1], relayer: accts[2], stranger: accts[3]}
	addr, tx, err := bindings.DeployConsentRegistry(e.relayer.opts, ch.client)
	e.c = ch.deployed(&bindings.ConsentRegistryMetaData, addr, tx, err)
	e.domain = consentsig.Domain{ChainID: ch.chainID, Registry: e.c.Address()}
	return e
}

func (e *consentEnv) permitted(patient common.Address, grantee, scope [32]byte, block *big.Int) bool {
	e.t.Helper()
	ok, err := bind.Call(e.c, &bind.CallOpts{BlockNumber: block}, consentABI.PackIsPermitted(patient, grantee, scope), consentABI.UnpackIsPermitted)
	if err != nil {
		e.t.Fatal(err)
	}
	return ok
}

func (e *consentEnv) expiryOf(patient common.Address, grantee, scope [32]byte) uint64 {
	e.t.Helper()
	exp, err := bind.Call(e.c, nil, consentABI.PackExpiryOf(patient, grantee, scope), consentABI.UnpackExpiryOf)
	if err != nil {
		e.t.Fatal(err)
	}
	return exp
}

func (e *consentEnv) nonce(patient common.Address) *big.Int {
	e.t.Helper()
	n, err := bind.Call(e.c, nil, consentABI.PackNonces(patient), consentABI.UnpackNonces)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *consentEnv) granted(r *types.Receipt) *bindings.ConsentRegistryConsentGranted {
	e.t.Helper()
	if len(r.Logs) != 1 {
		e.t.Fatalf("%d logs, want 1", len(r.Logs))
	}
	ev, err := consentABI.UnpackConsentGrantedEvent(r.Logs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

func (e *consentEnv) revoked(r *types.Receipt) *bindings.ConsentRegistryConsentRevoked {
	e.t.Helper()
	if len(r.Logs) != 1 {
		e.t.Fatalf("%d logs, want 1", len(r.Logs))
	}
	ev, err := consentABI.UnpackConsentRevokedEvent(r.Logs[0])
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// signGrant signs g for this registry with key.
func (e *consentEnv) signGrant(g consentsig.Grant, d consentsig.Domain, key account) []byte {
	e.t.Helper()
	digest, err := g.Digest(d)
	if err != nil {
		e.t.Fatal(err)
	}
	sig, err := consentsig.Sign(digest, key.key)
	if err != nil {
		e.t.Fatal(err)
	}
	return sig
}

func (e *consentEnv) signRevoke(r consentsig.Revoke, d consentsig.Domain, key account) []byte {
	e.t.Helper()
	digest, err := r.Digest(d)
	if err != nil {
		e.t.Fatal(err)
	}
	sig, err := consentsig.Sign(digest, key.key)
	if err != nil {
		e.t.Fatal(err)
	}
	return sig
}

func TestConsentDomain(t *testing.T) {
	e := newConsentEnv(t)
	ds, err := bind.Call(e.c, nil, consentABI.PackDOMAINSEPARATOR(), consentABI.UnpackDOMAINSEPARATOR)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.domain.DomainSeparator()
	if err != nil {
		t.Fatal(err)
	}
	if ds != want {
		t.Errorf("DOMAIN_SEPARATOR() = %x, consentsig says %x", ds, want)
	}
	for _, tc := range []struct {
		pack   []byte
		unpack func([]byte) ([32]byte, error)
		typ    string
	}{
		{consentABI.PackGRANTTYPEHASH(), consentABI.UnpackGRANTTYPEHASH, "Grant(address patient,bytes32 grantee,bytes32 scope,uint64 expiry,uint256 nonce,uint256 deadline)"},
		{consentABI.PackREVOKETYPEHASH(), consentABI.UnpackREVOKETYPEHASH, "Revoke(address patient,bytes32 grantee,bytes32 scope,uint256 nonce,uint256 deadline)"},
	} {
		got, err := bind.Call(e.c, nil, tc.pack, tc.unpack)
		if err != nil || got != crypto.Keccak256Hash([]byte(tc.typ)) {
			t.Errorf("type hash of %s = %x, %v", tc.typ, got, err)
		}
	}
}

func TestConsentGrantRevoke(t *testing.T) {
	e := newConsentEnv(t)
	p := e.patient
	expiry := e.blockTime(nil) + 3600

	ev := e.granted(e.mine(bind.Transact(e.c, p.opts, consentABI.PackGrant(practitioner, reports, expiry))))
	if ev.Patient != p.addr || ev.Grantee != practitioner || ev.Scope != reports || ev.Expiry != expiry {
		t.Fatalf("ConsentGranted = %+v", ev)
	}
	for _, tc := range []struct {
		name    string
		patient common.Address
		grantee [32]byte
		scope   [32]byte
		want    bool
	}{
		{"granted", p.addr, practitioner, reports, true},
		{"other scope", p.addr, practitioner, everything, false},
		{"other grantee", p.addr, organization, reports, false},
		{"other patient", e.patient2.addr, practitioner, reports, false},
	} {
		if got := e.permitted(tc.patient, tc.grantee, tc.scope, nil); got != tc.want {
			t.Errorf("%s: isPermitted = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := e.expiryOf(p.addr, practitioner, reports); got != expiry {
		t.Errorf("expiryOf = %d, want %d", got, expiry)
	}

	// Granting again replaces the expiry, shortening as well as extending.
	shorter := expiry - 1800
	ev = e.granted(e.mine(bind.Transact(e.c, p.opts, consentABI.PackGrant(practitioner, reports, shorter))))
	if ev.Expiry != shorter || e.expiryOf(p.addr, practitioner, reports) != shorter {
		t.Fatalf("re-grant: event %+v, expiryOf %d; want %d", ev, e.expiryOf(p.addr, practitioner, reports), shorter)
	}

	// Someone else's revoke touches only their own (absent) grant.
	_, err := bind.Transact(e.c, e.stranger.opts, consentABI.PackRevoke(practitioner, reports))
	wantRevert(t, err, consentABI.UnpackError, &bindings.ConsentRegistryNoSuchGrant{Patient: e.stranger.addr, Grantee: practitioner, Scope: reports})

	rv := e.revoked(e.mine(bind.Transact(e.c, p.opts, consentABI.PackRevoke(practitioner, reports))))
	if rv.Patient != p.addr || rv.Grantee != practitioner || rv.Scope != reports {
		t.Fatalf("ConsentRevoked = %+v", rv)
	}
	if e.permitted(p.addr, practitioner, reports, nil) || e.expiryOf(p.addr, practitioner, reports) != 0 {
		t.Fatal("grant still present after revoke")
	}
	_, err = bind.Transact(e.c, p.opts, consentABI.PackRevoke(practitioner, reports))
	wantRevert(t, err, consentABI.UnpackError, &bindings.ConsentRegistryNoSuchGrant{Patient: p.addr, Grantee: practitioner, Scope: reports})
}

// Followers select events by the indexed patient, grantee and scope.
func TestConsentEventTopics(t *testing.T) {
	e := newConsentEnv(t)
	expiry := e.blockTime(nil) + 3600
	e.mine(bind.Transact(e.c, e.patient.opts, consentABI.PackGrant(practitioner, reports, expiry)))
	e.mine(bind.Transact(e.c, e.patient.opts, consentABI.PackGrant(organization, everything, expiry)))
	e.mine(bind.Transact(e.c, e.patient2.opts, consentABI.PackGrant(practitioner, reports, expiry)))

	for _, tc := range []struct {
		name   string
		topics [][]any
		want   int
	}{
		{"all", nil, 3},
		{"patient", [][]any{{e.patient.addr}}, 2},
		{"grantee", [][]any{nil, {practitioner}}, 2},
		{"patient and scope", [][]any{{e.patient2.addr}, nil, {reports}}, 1},
		{"nobody", [][]any{{e.stranger.addr}}, 0},
	} {
		it, err := bind.FilterEvents(e.c, &bind.FilterOpts{Start: 0}, consentABI.UnpackConsentGrantedEvent, tc.topics...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for it.Next() {
			n++
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("%s: %d ConsentGranted events, want %d", tc.name, n, tc.want)
		}
	}
}

func TestConsentGrantRejects(t *testing.T) {
	e := newConsentEnv(t)
	now := e.blockTime(nil)
	for _, tc := range []struct {
		name string
		data []byte
		want any
	}{
		{"zero expiry", consentABI.PackGrant(practitioner, reports, 0), &bindings.ConsentRegistryExpiryNotInFuture{Expiry: 0}},
		{"expiry in the past", consentABI.PackGrant(practitioner, reports, now-1), &bindings.ConsentRegistryExpiryNotInFuture{Expiry: now - 1}},
		{"expiry now", consentABI.PackGrant(practitioner, reports, now), &bindings.ConsentRegistryExpiryNotInFuture{Expiry: now}},
		{"zero grantee", consentABI.PackGrant([32]byte{}, reports, now+3600), &bindings.ConsentRegistryZeroGranteeOrScope{}},
		{"zero scope", consentABI.PackGrant(practitioner, [32]byte{}, now+3600), &bindings.ConsentRegistryZeroGranteeOrScope{}},
		{"revoke without grant", consentABI.PackRevoke(practitioner, reports), &bindings.ConsentRegistryNoSuchGrant{Patient: e.patient.addr, Grantee: practitioner, Scope: reports}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.c.CallRaw(callAs(e.patient.addr), tc.data)
			wantRevert(t, err, consentABI.UnpackError, tc.want)
		})
	}
}

// Expiry is judged by block time: in force up to the block before expiry,
// not in the block at expiry, and still true of the past blocks.
func TestConsentExpiryByBlockTime(t *testing.T) {
	e := newConsentEnv(t)
	p := e.patient
	expiry := e.blockTime(nil) + 100
	e.mine(bind.Transact(e.c, p.opts, consentABI.PackGrant(practitioner, reports, expiry)))

	// AdjustTime seals an empty block exactly that much after the latest.
	if err := e.sim.AdjustTime(time.Duration(expiry-1-e.blockTime(nil)) * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := e.blockTime(nil); got != expiry-1 {
		t.Fatalf("block time %d, want %d", got, expiry-1)
	}
	if !e.permitted(p.addr, practitioner, reports, nil) {
		t.Fatal("not permitted one second before expiry")
	}
	before, err := e.client.BlockNumber(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AdjustTime(time.Second); err != nil {
		t.Fatal(err)
	}
	if e.blockTime(nil) != expiry || e.permitted(p.addr, practitioner, reports, nil) {
		t.Fatal("still permitted at expiry")
	}
	if !e.permitted(p.addr, practitioner, reports, new(big.Int).SetUint64(before)) {
		t.Fatal("history changed: block before expiry no longer permitted")
	}
	// The expired grant is still stored, and can be revoked explicitly.
	if e.expiryOf(p.addr, practitioner, reports) != expiry {
		t.Fatal("expired grant not stored")
	}
	e.revoked(e.mine(bind.Transact(e.c, p.opts, consentABI.PackRevoke(practitioner, reports))))
}

// The gas-free path: the patient signs, a relayer pays.
func TestConsentBySig(t *testing.T) {
	e := newConsentEnv(t)
	p := e.patient
	ctx := context.Background()
	balance, err := e.client.BalanceAt(ctx, p.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := e.blockTime(nil)
	deadline := new(big.Int).SetUint64(now + 600)

	g := consentsig.Grant{Patient: p.addr, Grantee: practitioner, Scope: reports, Expiry: now + 86400, Nonce: e.nonce(p.addr), Deadline: deadline}
	sig := e.signGrant(g, e.domain, p)
	ev := e.granted(e.mine(bind.Transact(e.c, e.relayer.opts, consentABI.PackGrantBySig(p.addr, practitioner, reports, g.Expiry, deadline, sig))))
	if ev.Patient != p.addr || ev.Grantee != practitioner || ev.Scope != reports || ev.Expiry != g.Expiry {
		t.Fatalf("ConsentGranted = %+v", ev)
	}
	if !e.permitted(p.addr, practitioner, reports, nil) {
		t.Fatal("not permitted after grantBySig")
	}
	if n := e.nonce(p.addr); n.Uint64() != 1 {
		t.Fatalf("nonce = %v after one signature, want 1", n)
	}

	r := consentsig.Revoke{Patient: p.addr, Grantee: practitioner, Scope: reports, Nonce: e.nonce(p.addr), Deadline: deadline}
	sig = e.signRevoke(r, e.domain, p)
	rv := e.revoked(e.mine(bind.Transact(e.c, e.relayer.opts, consentABI.PackRevokeBySig(p.addr, practitioner, reports, deadline, sig))))
	if rv.Patient != p.addr || rv.Grantee != practitioner || rv.Scope != reports {
		t.Fatalf("ConsentRevoked = %+v", rv)
	}
	if e.permitted(p.addr, practitioner, reports, nil) {
		t.Fatal("permitted after revokeBySig")
	}
	if n := e.nonce(p.addr); n.Uint64() != 2 {
		t.Fatalf("nonce = %v after two signatures, want 2", n)
	}
	if n := e.nonce(e.patient2.addr); n.Sign() != 0 {
		t.Fatalf("another patient's nonce moved to %v", n)
	}
	if after, err := e.client.BalanceAt(ctx, p.addr, nil); err != nil || after.Cmp(balance) != 0 {
		t.Fatalf("patient balance %v -> %v: the patient paid gas", balance, after)
	}
}

func TestConsentBySigRejects(t *testing.T) {
	e := newConsentEnv(t)
	p := e.patient
	now := e.blockTime(nil)
	deadline := new(big.Int).SetUint64(now + 600)
	expiry := now + 86400

	// A grant to revoke, and one used signature to replay.
	e.mine(bind.Transact(e.c, p.opts, consentABI.PackGrant(organization, everything, expiry)))
	used := consentsig.Grant{Patient: p.addr, Grantee: practitioner, Scope: reports, Expiry: expiry, Nonce: e.nonce(p.addr), Deadline: deadline}
	usedSig := e.signGrant(used, e.domain, p)
	e.mine(bind.Transact(e.c, e.relayer.opts, consentABI.PackGrantBySig(p.addr, practitioner, reports, expiry, deadline, usedSig)))
	nonce := e.nonce(p.addr)

	grant := consentsig.Grant{Patient: p.addr, Grantee: practitioner, Scope: everything, Expiry: expiry, Nonce: nonce, Deadline: deadline}
	revoke := consentsig.Revoke{Patient: p.addr, Grantee: organization, Scope: everything, Nonce: nonce, Deadline: deadline}
	good := e.signGrant(grant, e.domain, p)
	goodRevoke := e.signRevoke(revoke, e.domain, p)
	packGrant := func(g consentsig.Grant, sig []byte) []byte {
		return consentABI.PackGrantBySig(g.Patient, g.Grantee, g.Scope, g.Expiry, g.Deadline, sig)
	}
	packRevoke := func(r consentsig.Revoke, sig []byte) []byte {
		return consentABI.PackRevokeBySig(r.Patient, r.Grantee, r.Scope, r.Deadline, sig)
	}
	// wrongSigner is the error for sig submitted as the grant g: the
	// contract recovers some other account from the digest it computes.
	wrongSigner := func(g consentsig.Grant, sig []byte) any {
		g.Nonce = e.nonce(g.Patient)
		digest, err := g.Digest(e.domain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := consentsig.Recover(digest, sig)
		if err != nil {
			t.Fatal(err)
		}
		return &bindings.ConsentRegistryWrongSigner{Recovered: got, Patient: g.Patient}
	}
	wrongRevokeSigner := func(r consentsig.Revoke, sig []byte) any {
		r.Nonce = e.nonce(r.Patient)
		digest, err := r.Digest(e.domain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := consentsig.Recover(digest, sig)
		if err != nil {
			t.Fatal(err)
		}
		return &bindings.ConsentRegistryWrongSigner{Recovered: got, Patient: r.Patient}
	}
	with := func(g consentsig.Grant, f func(*consentsig.Grant)) consentsig.Grant { f(&g); return g }
	edit := func(sig []byte, f func([]byte)) []byte {
		s := append([]byte(nil), sig...)
		f(s)
		return s
	}
	// The malleable twin of a signature: same signer, (n - s, v ^ 1).
	n := crypto.S256().Params().N
	twin := func(sig []byte) []byte {
		return edit(sig, func(s []byte) {
			new(big.Int).Sub(n, new(big.Int).SetBytes(s[32:64])).FillBytes(s[32:64])
			s[64] ^= 1
		})
	}
	highS, revokeHighS := twin(good), twin(goodRevoke)
	otherChain := consentsig.Domain{ChainID: big.NewInt(1), Registry: e.domain.Registry}
	otherRegistry := consentsig.Domain{ChainID: e.domain.ChainID, Registry: e.stranger.addr}
	past := new(big.Int).SetUint64(now - 1)
	expiredGrant := with(grant, func(g *consentsig.Grant) { g.Deadline = past })
	staleExpiry := with(grant, func(g *consentsig.Grant) { g.Expiry = now - 1 })
	tampered := with(grant, func(g *consentsig.Grant) { g.Expiry = expiry + 1 })
	futureNonce := with(grant, func(g *consentsig.Grant) { g.Nonce = new(big.Int).Add(nonce, common.Big1) })
	zeroPatient := with(grant, func(g *consentsig.Grant) { g.Patient = common.Address{} })
	absent := consentsig.Revoke{Patient: p.addr, Grantee: organization, Scope: reports, Nonce: nonce, Deadline: deadline}
	byStranger := e.signGrant(grant, e.domain, e.stranger)

	for _, tc := range []struct {
		name string
		data []byte
		want any
	}{
		{"replay", packGrant(used, usedSig), wrongSigner(used, usedSig)},
		{"other chain id", packGrant(grant, e.signGrant(grant, otherChain, p)), wrongSigner(grant, e.signGrant(grant, otherChain, p))},
		{"other registry", packGrant(grant, e.signGrant(grant, otherRegistry, p)), wrongSigner(grant, e.signGrant(grant, otherRegistry, p))},
		{"wrong signer", packGrant(grant, byStranger), &bindings.ConsentRegistryWrongSigner{Recovered: e.stranger.addr, Patient: p.addr}},
		{"relayer changed expiry", packGrant(tampered, good), wrongSigner(tampered, good)},
		{"future nonce", packGrant(grant, e.signGrant(futureNonce, e.domain, p)), wrongSigner(grant, e.signGrant(futureNonce, e.domain, p))},
		{"revoke signature as grant", packGrant(with(grant, func(g *consentsig.Grant) { g.Grantee = organization }), goodRevoke), wrongSigner(with(grant, func(g *consentsig.Grant) { g.Grantee = organization }), goodRevoke)},
		{"expired deadline", packGrant(expiredGrant, e.signGrant(expiredGrant, e.domain, p)), &bindings.ConsentRegistrySignatureExpired{Deadline: past}},
		{"expiry in the past", packGrant(staleExpiry, e.signGrant(staleExpiry, e.domain, p)), &bindings.ConsentRegistryExpiryNotInFuture{Expiry: now - 1}},
		{"high s", packGrant(grant, highS), &bindings.ConsentRegistryInvalidSignatureS{S: [32]byte(highS[32:64])}},
		{"raw v", packGrant(grant, edit(good, func(s []byte) { s[64] -= 27 })), &bindings.ConsentRegistryInvalidSignatureV{V: good[64] - 27}},
		{"v 29", packGrant(grant, edit(good, func(s []byte) { s[64] = 29 })), &bindings.ConsentRegistryInvalidSignatureV{V: 29}},
		{"64 bytes", packGrant(grant, good[:64]), &bindings.ConsentRegistryInvalidSignatureLength{Length: big.NewInt(64)}},
		{"66 bytes", packGrant(grant, append(append([]byte(nil), good...), 0)), &bindings.ConsentRegistryInvalidSignatureLength{Length: big.NewInt(66)}},
		{"empty", packGrant(grant, nil), &bindings.ConsentRegistryInvalidSignatureLength{Length: big.NewInt(0)}},
		{"ecrecover finds no one", packGrant(grant, edit(good, func(s []byte) { clear(s[:32]) })), &bindings.ConsentRegistryInvalidSignature{}},
		{"zero patient, garbage signature", packGrant(zeroPatient, edit(good, func(s []byte) { clear(s[:32]) })), &bindings.ConsentRegistryInvalidSignature{}},
		{"zero patient, someone's signature", packGrant(zeroPatient, good), wrongSigner(zeroPatient, good)},
		{"revoke: replay of a grant signature", packRevoke(revoke, usedSig), wrongRevokeSigner(revoke, usedSig)},
		{"revoke: grant signature", packRevoke(revoke, good), wrongRevokeSigner(revoke, good)},
		{"revoke: expired deadline", packRevoke(withDeadline(revoke, past), e.signRevoke(withDeadline(revoke, past), e.domain, p)), &bindings.ConsentRegistrySignatureExpired{Deadline: past}},
		{"revoke: wrong signer", packRevoke(revoke, e.signRevoke(revoke, e.domain, e.stranger)), &bindings.ConsentRegistryWrongSigner{Recovered: e.stranger.addr, Patient: p.addr}},
		{"revoke: other chain id", packRevoke(revoke, e.signRevoke(revoke, otherChain, p)), wrongRevokeSigner(revoke, e.signRevoke(revoke, otherChain, p))},
		{"revoke: high s", packRevoke(revoke, revokeHighS), &bindings.ConsentRegistryInvalidSignatureS{S: [32]byte(revokeHighS[32:64])}},
		{"revoke: no such grant", packRevoke(absent, e.signRevoke(absent, e.domain, p)), &bindings.ConsentRegistryNoSuchGrant{Patient: p.addr, Grantee: organization, Scope: reports}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bind.Transact(e.c, e.relayer.opts, tc.data)
			wantRevert(t, err, consentABI.UnpackError, tc.want)
		})
	}
	if got := e.nonce(p.addr); got.Cmp(nonce) != 0 {
		t.Fatalf("nonce moved to %v by rejected signatures, want %v", got, nonce)
	}

	// The good signatures still work, once.
	e.mine(bind.Transact(e.c, e.relayer.opts, packGrant(grant, good)))
	_, err := bind.Transact(e.c, e.relayer.opts, packGrant(grant, good))
	wantRevert(t, err, consentABI.UnpackError, wrongSigner(grant, good))
	// goodRevoke carried the nonce just consumed: it is dead too.
	_, err = bind.Transact(e.c, e.relayer.opts, packRevoke(revoke, goodRevoke))
	wantRevert(t, err, consentABI.UnpackError, wrongRevokeSigner(revoke, goodRevoke))
}

// The deadline is inclusive: a signature is good in the block whose time
// equals its deadline, and not after.
func TestConsentDeadlineBoundary(t *testing.T) {
	e := newConsentEnv(t)
	p := e.patient
	now := e.blockTime(nil) // eth_call at latest runs with this block.timestamp
	for _, tc := range []struct {
		deadline uint64
		want     any
	}{
		{now, nil},
		{now - 1, &bindings.ConsentRegistrySignatureExpired{Deadline: new(big.Int).SetUint64(now - 1)}},
	} {
		g := consentsig.Grant{Patient: p.addr, Grantee: practitioner, Scope: reports, Expiry: now + 3600, Nonce: big.NewInt(0), Deadline: new(big.Int).SetUint64(tc.deadline)}
		_, err := e.c.CallRaw(callAs(e.relayer.addr), consentABI.PackGrantBySig(g.Patient, g.Grantee, g.Scope, g.Expiry, g.Deadline, e.signGrant(g, e.domain, p)))
		if tc.want == nil {
			if err != nil {
				t.Errorf("deadline = block time: %v", err)
			}
			continue
		}
		if err := checkRevert(err, consentABI.UnpackError, tc.want); err != nil {
			t.Errorf("deadline = block time - 1: %v", err)
		}
	}
}

func withDeadline(r consentsig.Revoke, deadline *big.Int) consentsig.Revoke {
	r.Deadline = deadline
	return r
}
