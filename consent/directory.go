// Identities learned from the FHIR store that every replica shares: which
// wallets Patients list, and which Practitioners and Organizations exist.

package consent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/store"
)

// Defaults of the directory settings of Config.
const (
	DefaultIdentityPoll   = 200 * time.Millisecond
	DefaultIdentityMaxLag = 3 * time.Second
)

// feedBatch bounds the feed entries read per poll.
const feedBatch = 1000

// granteeRetry is how often a grantee hash seen on chain and unknown here
// is looked up in the store while it is new, and later.
const (
	granteeRetryNew   = 200 * time.Millisecond
	granteeRetryLater = 30 * time.Second
	granteeNewFor     = 30 * time.Second
)

// SeedIdentities reads the directory (Config.Directory): every Patient's
// wallets of this chain are mapped, wallets mapped before that no Patient
// lists any more are unmapped, and every Practitioner and Organization
// becomes a known grantee. The unique-name feed is followed from the
// entry current before the scan, so a change made during it is applied
// again (applying is idempotent). Call it before serving; Run keeps the
// identities current after it.
func (f *Follower) SeedIdentities(ctx context.Context) error {
	dir := f.cfg.Directory
	if dir == nil {
		return fmt.Errorf("%w: SeedIdentities needs Config.Directory", ErrInvalid)
	}
	f.identMu.Lock()
	defer f.identMu.Unlock()
	started := f.now()
	if err := f.resyncWalletsLocked(ctx); err != nil {
		return err
	}
	for _, typ := range []string{"Practitioner", "Organization"} {
		var refs []string
		if err := dir.EachCurrent(ctx, typ, func(v store.Version) error {
			refs = append(refs, typ+"/"+v.ID)
			return nil
		}); err != nil {
			return err
		}
		if err := f.AddGrantees(ctx, refs...); err != nil {
			return err
		}
	}
	f.identAt.Store(started.UnixNano())
	return nil
}

// resyncWalletsLocked maps every wallet the Patients list and unmaps the
// others, and sets the feed position to the entry current before it read.
func (f *Follower) resyncWalletsLocked(ctx context.Context) error {
	dir := f.cfg.Directory
	seq, err := dir.UniqueSeq(ctx)
	if err != nil {
		return fmt.Errorf("consent: reading the wallet feed: %w", err)
	}
	var links []WalletPatient
	err = dir.EachCurrent(ctx, "Patient", func(v store.Version) error {
		links = append(links, f.walletLinks("Patient/"+v.ID, v.Body)...)
		return nil
	})
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, l := range links {
		listed[strings.ToLower(l.Wallet)] = true
	}
	for _, w := range f.Wallets() {
		if !listed[strings.ToLower(w.Wallet)] {
			links = append(links, WalletPatient{Wallet: w.Wallet}) // unmap
		}
	}
	if err := f.SetPatients(ctx, links); err != nil {
		return err
	}
	f.identSeq = seq
	return nil
}

// walletLinks maps the wallets of this chain a Patient body lists to ref.
func (f *Follower) walletLinks(ref string, body []byte) []WalletPatient {
	if body == nil || f.cfg.WalletsOf == nil {
		return nil
	}
	var out []WalletPatient
	for _, w := range f.cfg.WalletsOf(body) {
		if id, _, err := ParseCAIP10(w); err == nil && id == f.chainID {
			out = append(out, WalletPatient{Wallet: w, Patient: ref})
		}
	}
	return out
}

// SyncIdentities applies the wallet links and unlinks the store's
// unique-name feed holds beyond those already applied: one read of the
// feed's sequence when nothing changed. Run calls it every IdentityPoll;
// Noticed calls it after this process's own writes.
func (f *Follower) SyncIdentities(ctx context.Context) error {
	if f.cfg.Directory == nil {
		return nil
	}
	f.identMu.Lock()
	defer f.identMu.Unlock()
	started := f.now()
	for {
		seq, err := f.cfg.Directory.UniqueSeq(ctx)
		if err != nil {
			return fmt.Errorf("consent: reading the wallet feed: %w", err)
		}
		if seq == f.identSeq {
			break
		}
		if seq < f.identSeq {
			// The store was replaced or restored from an older copy.
			f.log.Warn("consent: the wallet feed went back; reading every Patient's wallets again")
			if err := f.resyncWalletsLocked(ctx); err != nil {
				return err
			}
			break
		}
		es, err := f.cfg.Directory.UniqueChanges(ctx, f.identSeq, feedBatch)
		if err != nil {
			return fmt.Errorf("consent: reading the wallet feed: %w", err)
		}
		if len(es) == 0 || es[0].Seq != f.identSeq+1 {
			f.log.Warn("consent: wallet feed entries were dropped before they were read; reading every Patient's wallets again")
			if err := f.resyncWalletsLocked(ctx); err != nil {
				return err
			}
			break
		}
		for _, e := range es {
			for _, c := range e.Changes {
				if err := f.relink(ctx, c); err != nil {
					return err
				}
			}
			f.identSeq = e.Seq
		}
	}
	f.identAt.Store(started.UnixNano())
	return nil
}

// relink makes the wallets mapped to a Patient a feed change names agree
// with its record's current version: those it lists (on this chain) speak
// for it; the others mapped to it speak for nobody.
func (f *Follower) relink(ctx context.Context, c store.UniqueChange) error {
	typ, id, _ := strings.Cut(c.Ref, "/")
	if typ != "Patient" {
		return nil // a wallet a Patient released is in that Patient's change
	}
	var body []byte
	// Current and Version read the engine (never a process's cache).
	cur, err := f.cfg.Directory.Current(ctx, typ, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return err
	case !cur.Deleted:
		v, err := f.cfg.Directory.Version(ctx, typ, id, cur.VID)
		if err != nil {
			return err
		}
		body = v.Body
	}
	links := f.walletLinks(c.Ref, body)
	keep := map[common.Address]bool{}
	for _, l := range links {
		_, a, _ := ParseCAIP10(l.Wallet)
		keep[a] = true
	}
	// Every wallet mapped to the patient that its record does not list
	// is unmapped: those the change names, and any other (a record
	// altered, or written before wallets were held as unique names).
	for _, a := range f.walletsOfPatient(c.Ref) {
		if !keep[a] {
			links = append(links, WalletPatient{Wallet: CAIP10(f.chainID, a)}) // unmap
			keep[a] = true
		}
	}
	return f.SetPatients(ctx, links)
}

// Noticed is told of every version this process commits (rest.Config's
// OnWrite). A wallet change is then read back from the store's feed at
// once, so this replica's own writes take effect before their response;
// other replicas read the same feed within IdentityPoll. A new
// Practitioner or Organization becomes a known grantee, and its hash's
// preimage is kept in the store for the other replicas.
//
// A Patient write that cannot have taken or released a wallet's unique
// name (store.Write.MayChangeUnique: it links none, and its previous
// version linked none) changed no link, and reads nothing: the feed has
// no entry for it, and reading the feed's sequence on every such update,
// one at a time, made concurrent updates of Patients queue behind each
// other (BENCHMARKS.md §8).
func (f *Follower) Noticed(w *store.Write) {
	ctx := context.Background()
	v := &w.New
	switch v.Type {
	case "Patient":
		if !w.MayChangeUnique() {
			return
		}
		if err := f.SyncIdentities(ctx); err != nil {
			f.log.Warn("consent: reading wallet links", "err", err)
		}
	case "Practitioner", "Organization":
		if v.Deleted {
			return
		}
		ref := v.Type + "/" + v.ID
		if err := f.AddGrantees(ctx, ref); err != nil {
			f.log.Warn("consent: cannot add a grantee", "err", err)
			return
		}
		if v.VID == 1 {
			f.mu.Lock()
			f.prePending[consentsig.Grantee(ref)] = ref
			f.mu.Unlock()
			f.pokeIdent()
		}
	}
}

// savePreimages writes the preimages of grantees created here, for the
// other replicas (lookupGrantees).
func (f *Follower) savePreimages(ctx context.Context) error {
	f.mu.Lock()
	if len(f.prePending) == 0 {
		f.mu.Unlock()
		return nil
	}
	var b store.Batch
	var hs []common.Hash
	for h, ref := range f.prePending {
		if !f.preSaved[h] {
			b.Set(f.ks.preimage(h), []byte(ref))
			hs = append(hs, h)
		}
	}
	clear(f.prePending)
	f.mu.Unlock()
	if len(b.Ops) == 0 {
		return nil
	}
	if err := f.cfg.Engine.Apply(ctx, &b); err != nil {
		f.mu.Lock()
		for i, h := range hs {
			f.prePending[h] = string(b.Ops[i].Value) // again at the next poll
		}
		f.mu.Unlock()
		return fmt.Errorf("consent: save grantees: %w", err)
	}
	f.mu.Lock()
	for _, h := range hs {
		f.preSaved[h] = true
	}
	f.mu.Unlock()
	return nil
}

// lookupGrantees asks the store for the preimages of grantee hashes that
// live grants name and this process does not know (a Practitioner
// created through another replica): often while they are new, then
// seldom.
func (f *Follower) lookupGrantees(ctx context.Context) {
	f.mu.Lock()
	now := f.now()
	var todo []common.Hash
	for h := range f.byGrantee {
		if _, ok := f.grantees[h]; ok {
			delete(f.unknownG, h)
			continue
		}
		u, seen := f.unknownG[h]
		if !seen {
			u = unknownGrantee{first: now}
		}
		if u.next.After(now) {
			continue
		}
		wait := granteeRetryNew
		if now.Sub(u.first) > granteeNewFor {
			wait = granteeRetryLater
		}
		u.next = now.Add(wait)
		f.unknownG[h] = u
		if todo = append(todo, h); len(todo) == 100 {
			break
		}
	}
	f.mu.Unlock()
	var refs []string
	for _, h := range todo {
		b, err := f.cfg.Engine.Get(ctx, f.ks.preimage(h))
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				f.log.Warn("consent: looking up a grantee", "err", err)
			}
			continue
		}
		if ref := string(b); consentsig.Grantee(ref) == h && ValidGrantee(ref) == nil {
			refs = append(refs, ref)
		}
	}
	if len(refs) > 0 {
		if err := f.AddGrantees(ctx, refs...); err != nil {
			f.log.Warn("consent: adding grantees from the store", "err", err)
		}
	}
}

type unknownGrantee struct{ first, next time.Time }

func (f *Follower) pokeIdent() {
	select {
	case f.identWake <- struct{}{}:
	default:
	}
}

// followDirectory keeps the identities current until ctx ends.
func (f *Follower) followDirectory(ctx context.Context) {
	t := time.NewTicker(f.cfg.IdentityPoll)
	defer t.Stop()
	var lastLogged time.Time
	for {
		err := f.SyncIdentities(ctx)
		err = errors.Join(err, f.savePreimages(ctx))
		f.lookupGrantees(ctx)
		if err != nil && ctx.Err() == nil && time.Since(lastLogged) > 10*time.Second {
			f.log.Warn("consent: following the directory", "err", err)
			lastLogged = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.identWake:
		}
	}
}

// identityHealth fails when the wallet links were last read from the
// store longer than IdentityMaxLag ago: an unlink made through another
// replica might not be known here.
func (f *Follower) identityHealth() error {
	if f.cfg.Directory == nil {
		return nil
	}
	at := f.identAt.Load()
	if at == 0 {
		return fmt.Errorf("%w: the wallet links have not been read from the store yet", ErrBehind)
	}
	if lag := f.now().Sub(time.Unix(0, at)); lag > f.cfg.IdentityMaxLag {
		return fmt.Errorf("%w: the wallet links were last read from the store %s ago (limit %s)",
			ErrBehind, lag.Round(time.Millisecond), f.cfg.IdentityMaxLag)
	}
	return nil
}
