// The follower's identities: which patient a wallet speaks for and which
// references grantee hashes stand for.

package consent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/store"
)

// PatientResolver finds the patient a wallet belongs to. The gateway
// implements it over the FHIR store: the Patient whose identifier is the
// CAIP-10 wallet ("eip155:<chainId>:<address>").
type PatientResolver interface {
	// PatientByWallet returns "Patient/<id>", or "" when no patient has
	// that wallet.
	PatientByWallet(ctx context.Context, wallet string) (string, error)
}

// SetPatient maps a wallet (CAIP-10, "eip155:<chainId>:<address>") to the
// patient it belongs to ("Patient/<id>"; "" removes the mapping). Grants
// made from that wallet take effect, or stop, at once. The gateway calls
// it for every Patient with a wallet identifier at start and on every
// Patient write. The mapping of wallets that hold grants is kept in the
// follower's keyspace (so a restart applies grants before the gateway
// has fed it again); calls that change nothing write nothing. A wallet
// of another chain returns ErrOtherChain.
func (f *Follower) SetPatient(ctx context.Context, wallet, ref string) error {
	return f.SetPatients(ctx, []WalletPatient{{Wallet: wallet, Patient: ref}})
}

// WalletPatient maps a CAIP-10 wallet to "Patient/<id>" ("" unmaps).
type WalletPatient struct {
	Wallet, Patient string
}

// SetPatients is SetPatient for many wallets, with one write (for the
// gateway's start). A wallet of another chain fails the call with
// ErrOtherChain before anything changes; skip those first (ParseCAIP10).
func (f *Follower) SetPatients(ctx context.Context, ms []WalletPatient) error {
	addrs := make([]common.Address, len(ms))
	for i, m := range ms {
		id, addr, err := ParseCAIP10(m.Wallet)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
		if id != f.chainID {
			return fmt.Errorf("%w: %s (following chain %d)", ErrOtherChain, m.Wallet, f.chainID)
		}
		if m.Patient != "" {
			if pid, ok := strings.CutPrefix(m.Patient, "Patient/"); !ok || !fhir.ValidID(pid) {
				return fmt.Errorf("%w: patient reference %q", ErrInvalid, m.Patient)
			}
		}
		addrs[i] = addr
	}
	var b store.Batch
	saved := map[common.Address]string{}
	f.mu.Lock()
	now := f.now().Unix()
	for i, m := range ms {
		addr := addrs[i]
		f.mapWalletLocked(addr, m.Patient)
		delete(f.unknown, addr)
		for k := range f.byPatient[addr] {
			f.reconcileLocked(k, now)
		}
		if len(f.byPatient[addr]) > 0 && f.walSaved[addr] != m.Patient {
			if m.Patient == "" {
				b.Delete(f.ks.wallet(addr))
			} else {
				b.Set(f.ks.wallet(addr), []byte(m.Patient))
			}
			saved[addr] = m.Patient
		}
	}
	f.mu.Unlock()
	f.poke()
	if len(b.Ops) == 0 {
		return nil
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: save wallet mapping: %w", err)
	}
	f.mu.Lock()
	for a, ref := range saved {
		if f.patients[a] == ref {
			if ref == "" {
				delete(f.walSaved, a)
			} else {
				f.walSaved[a] = ref
			}
		}
	}
	f.mu.Unlock()
	return nil
}

// AddGrantees tells the follower the references grants may name
// ("Practitioner/<id>", "Organization/<id>", "client/<id>"): the chain
// holds only their hashes. Grants to a grantee not yet known wait, and
// take effect as soon as it is added. The gateway calls it for every
// Practitioner, Organization and registered client at start and on each
// new one. Preimages of hashes seen on chain are kept in the follower's
// keyspace.
func (f *Follower) AddGrantees(ctx context.Context, refs ...string) error {
	for _, ref := range refs {
		if err := ValidGrantee(ref); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	var b store.Batch
	var saved []common.Hash
	f.mu.Lock()
	now := f.now().Unix()
	for _, ref := range refs {
		h := consentsig.Grantee(ref)
		if f.grantees[h] == ref {
			continue
		}
		f.grantees[h] = ref
		keys := f.byGrantee[h]
		for k := range keys {
			f.reconcileLocked(k, now)
		}
		if len(keys) > 0 && !f.preSaved[h] {
			b.Set(f.ks.preimage(h), []byte(ref))
			saved = append(saved, h)
		}
	}
	f.mu.Unlock()
	f.poke()
	if len(b.Ops) == 0 {
		return nil
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		return fmt.Errorf("consent: save grantees: %w", err)
	}
	f.mu.Lock()
	for _, h := range saved {
		f.preSaved[h] = true
	}
	f.mu.Unlock()
	return nil
}

// KnowsGrantee reports whether the grantee hash's reference is known.
func (f *Follower) KnowsGrantee(h common.Hash) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.grantees[h]
	return ok
}

// KnowsWallet reports whether the wallet is mapped to a patient.
func (f *Follower) KnowsWallet(a common.Address) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.patients[a]
	return ok
}

// PatientOf returns the patient a CAIP-10 wallet is mapped to, or "".
func (f *Follower) PatientOf(wallet string) string {
	id, addr, err := ParseCAIP10(wallet)
	if err != nil || id != f.chainID {
		return ""
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patients[addr]
}

// Wallets lists every wallet mapped to a patient (CAIP-10, for the
// gateway's start to drop mappings its records no longer hold).
func (f *Follower) Wallets() []WalletPatient {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]WalletPatient, 0, len(f.patients))
	for a, p := range f.patients {
		out = append(out, WalletPatient{Wallet: CAIP10(f.chainID, a), Patient: p})
	}
	return out
}

// UnmappedWallets lists the wallets (CAIP-10) that hold grants on chain
// but are mapped to no patient: the gateway may look them up and call
// SetPatient.
func (f *Follower) UnmappedWallets() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for a := range f.byPatient {
		if _, ok := f.patients[a]; !ok {
			out = append(out, CAIP10(f.chainID, a))
		}
	}
	slices.Sort(out)
	return out
}

// resolvePatients asks cfg.Patients about unmapped wallets.
func (f *Follower) resolvePatients(ctx context.Context) {
	if f.cfg.Patients == nil {
		return
	}
	f.mu.Lock()
	now := f.now()
	var todo []common.Address
	for a, at := range f.unknown {
		if !at.After(now) {
			todo = append(todo, a)
			if len(todo) == 100 {
				break
			}
		}
	}
	f.mu.Unlock()
	for _, a := range todo {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ref, err := f.cfg.Patients.PatientByWallet(rctx, CAIP10(f.chainID, a))
		cancel()
		switch {
		case err != nil:
			f.log.WarnContext(ctx, "consent: resolving a wallet to a patient", "err", err)
			f.mu.Lock()
			if _, ok := f.unknown[a]; ok {
				f.unknown[a] = now.Add(30 * time.Second)
			}
			f.mu.Unlock()
		case ref == "":
			f.mu.Lock()
			if _, ok := f.unknown[a]; ok {
				f.unknown[a] = now.Add(5 * time.Minute)
			}
			f.mu.Unlock()
		default:
			if err := f.SetPatient(ctx, CAIP10(f.chainID, a), ref); err != nil {
				f.log.WarnContext(ctx, "consent: resolver returned a bad patient reference", "err", err)
				f.mu.Lock()
				f.unknown[a] = now.Add(5 * time.Minute)
				f.mu.Unlock()
			}
		}
	}
}

// mapWalletLocked maps addr to the patient ref ("": unmaps it), keeping
// the index of each patient's wallets.
func (f *Follower) mapWalletLocked(addr common.Address, ref string) {
	if old, ok := f.patients[addr]; ok {
		if m := f.walletsOf[old]; m != nil {
			delete(m, addr)
			if len(m) == 0 {
				delete(f.walletsOf, old)
			}
		}
	}
	if ref == "" {
		delete(f.patients, addr)
		return
	}
	f.patients[addr] = ref
	m := f.walletsOf[ref]
	if m == nil {
		m = map[common.Address]struct{}{}
		f.walletsOf[ref] = m
	}
	m[addr] = struct{}{}
}

// walletsOfPatient returns the wallets mapped to the patient ref.
func (f *Follower) walletsOfPatient(ref string) []common.Address {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]common.Address, 0, len(f.walletsOf[ref]))
	for a := range f.walletsOf[ref] {
		out = append(out, a)
	}
	return out
}
