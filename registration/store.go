package registration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/store"
)

// The requests live in the store's engine, under
// store.ExtensionPrefix("registration"):
//
//	'r' id                          -> the request (JSON: stored)
//	'p' wallet                      -> id of the wallet's pending request
//	'n' wallet                      -> how many requests the wallet made (decimal)
//	'w' wallet 0 submitted(8) id    -> "" (the wallet's requests)
//	's' status 0 kind 0 submitted(8) id -> "" (the queue, by status and kind)
//	'l' record                      -> id of the request that created or linked it
//	'e' record 0 at(8) seq(8)       -> Entry (JSON: what was done to the record since)
//
// wallet is the lower-case address of the CAIP-10 account id (a wallet is
// the same person on every chain, as the gateway's wallet uniqueness has
// it). A submission requires the wallet's 'p' key absent and its 'n' key
// as read: of two replicas submitting for one wallet at once, one
// commits. Every change of a request requires its 'r' key as read.

var prefix = store.ExtensionPrefix("registration")

func key(tag byte, parts ...[]byte) []byte {
	k := append(bytes.Clone(prefix), tag)
	for i, p := range parts {
		if i > 0 {
			k = append(k, 0)
		}
		k = append(k, p...)
	}
	return k
}

func ts(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixMicro())) }

func reqKey(id string) []byte         { return key('r', []byte(id)) }
func pendingKey(wallet string) []byte { return key('p', []byte(WalletKey(wallet))) }
func countKey(wallet string) []byte   { return key('n', []byte(WalletKey(wallet))) }
func walletKey(r *Request) []byte {
	return key('w', []byte(WalletKey(r.Wallet)), append(ts(r.Submitted), r.ID...))
}
func statusKey(r *Request) []byte {
	return key('s', []byte(r.Status), []byte(r.Kind), append(ts(r.Submitted), r.ID...))
}
func linkKey(record string) []byte { return key('l', []byte(record)) }

// WalletKey is the name of a wallet in the store: the lower-case address
// of a CAIP-10 account id ("eip155:<chainId>:<address>").
func WalletKey(wallet string) string {
	v := strings.ToLower(strings.TrimSpace(wallet))
	if rest, ok := strings.CutPrefix(v, "eip155:"); ok {
		if _, addr, ok := strings.Cut(rest, ":"); ok {
			v = addr
		}
	}
	return v
}

// Errors of the store's operations.
var (
	ErrNotFound = errors.New("no such registration request")
	// ErrPending: the wallet has a request waiting already.
	ErrPending = errors.New("you already have a registration request waiting; withdraw it first if you want to change it")
	// ErrQueueFull: MaxPending requests wait already (new wallets cost
	// nothing to make: without a bound on the whole queue, one person
	// could fill the store and bury the clinic's real requests).
	ErrQueueFull = fmt.Errorf("the clinic has too many registration requests waiting to be checked; please try again later or contact the clinic")
	// ErrTooMany: the wallet made MaxPerWallet requests.
	ErrTooMany = fmt.Errorf("this wallet has made %d registration requests, the most one wallet may make; ask the clinic to register you", MaxPerWallet)
	// ErrBusy: the request kept changing under a transition (retry).
	ErrBusy = errors.New("the registration request is being changed by someone else; try again")
)

// Store keeps registration requests in an engine.
type Store struct {
	e   store.Engine
	now func() time.Time
}

// New returns the requests kept in e; now is the clock (nil: time.Now).
func New(e store.Engine, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{e: e, now: now}
}

func (s *Store) clock() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Submit stores a new pending request of wallet.
func (s *Store) Submit(ctx context.Context, wallet string, kind Kind, a Asserted) (*Request, error) {
	for range maxAttempts {
		var b store.Batch
		b.Require(pendingKey(wallet), nil)
		if _, err := s.e.Get(ctx, pendingKey(wallet)); err == nil {
			return nil, ErrPending
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		n := 0
		raw, err := s.e.Get(ctx, countKey(wallet))
		switch {
		case errors.Is(err, store.ErrNotFound):
			b.Require(countKey(wallet), nil)
		case err != nil:
			return nil, err
		default:
			if n, err = strconv.Atoi(string(raw)); err != nil {
				return nil, fmt.Errorf("registration: bad request count %q", raw)
			}
			b.Require(countKey(wallet), raw)
		}
		if n >= MaxPerWallet {
			return nil, ErrTooMany
		}
		if full, err := s.queueFull(ctx); err != nil {
			return nil, err
		} else if full {
			return nil, ErrQueueFull
		}
		now := s.clock()
		r := &Request{ID: uuid.Must(uuid.NewV7()).String(), Kind: kind, Status: Pending, Wallet: wallet,
			Submitted: now, Asserted: a, History: []Entry{{At: now, Action: ActSubmitted, By: ByYou}}}
		b.Require(reqKey(r.ID), nil)
		b.Set(reqKey(r.ID), mustJSON(&stored{Request: *r}))
		b.Set(pendingKey(wallet), []byte(r.ID))
		b.Set(countKey(wallet), []byte(strconv.Itoa(n+1)))
		b.Set(walletKey(r), nil)
		b.Set(statusKey(r), nil)
		switch err := s.e.Apply(ctx, &b); {
		case errors.Is(err, store.ErrConflict):
			continue // another submission of this wallet: look again
		case err != nil:
			return nil, err
		}
		return r, nil
	}
	return nil, ErrBusy
}

const maxAttempts = 16

// MaxPending bounds the requests waiting in the queue (both kinds).
const MaxPending = 1000

// queueFull reports whether MaxPending requests wait: a scan of at most
// MaxPending keys per kind, no shared counter for every submission to
// contend on. Two submissions at the same moment may both see room for
// one: the bound is soft by the number of concurrent submissions.
func (s *Store) queueFull(ctx context.Context) (bool, error) {
	n := 0
	for _, k := range []Kind{Patient, Practitioner} {
		r := store.PrefixRange(key('s', []byte(Pending), []byte(k), nil))
		r.Limit = MaxPending - n
		if r.Limit <= 0 {
			break
		}
		if err := s.e.Scan(ctx, r, func(_, _ []byte) bool { n++; return true }); err != nil {
			return false, err
		}
	}
	return n >= MaxPending, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data
	}
	return b
}

// get reads a request and its stored bytes.
func (s *Store) get(ctx context.Context, id string) (*stored, []byte, error) {
	if id == "" || len(id) > 64 {
		return nil, nil, ErrNotFound
	}
	raw, err := s.e.Get(ctx, reqKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	var st stored
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, nil, fmt.Errorf("registration: request %s: %w", id, err)
	}
	return &st, raw, nil
}

// Get returns a request and how its verification links it (nil unless
// verified).
func (s *Store) Get(ctx context.Context, id string) (*Request, *Link, error) {
	st, _, err := s.get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return &st.Request, st.Link, nil
}

// Change is a transition: it changes the request (and its link) read
// fresh from the store, or returns an error to change nothing.
type Change func(r *Request, link **Link) error

// Update applies change to the current request id in one conditional
// commit, reading again and retrying when another writer changed it in
// between: the change always sees the state it replaces, so of two
// replicas making the same transition one makes it and the other sees it
// made. The status index, the wallet's pending key and the record's link
// follow the request.
func (s *Store) Update(ctx context.Context, id string, change Change) (*Request, *Link, error) {
	for range maxAttempts {
		old, raw, err := s.get(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		next := stored{Request: old.Request, Link: old.Link}
		next.History = slices.Clone(old.History)
		if next.Link != nil {
			l := *next.Link
			next.Link = &l
		}
		if err := change(&next.Request, &next.Link); err != nil {
			return nil, nil, err
		}
		var b store.Batch
		b.Require(reqKey(id), raw)
		b.Set(reqKey(id), mustJSON(&next))
		if old.Status != next.Status {
			b.Delete(statusKey(&old.Request))
			b.Set(statusKey(&next.Request), nil)
			if old.Status == Pending {
				b.Require(pendingKey(old.Wallet), []byte(id))
				b.Delete(pendingKey(old.Wallet))
			}
		}
		if next.Record != old.Record {
			if old.Record != "" {
				// Undone: the record no longer names this request (if a
				// later one took it over, that link stays).
				lk := linkKey(old.Record)
				cur, err := s.e.Get(ctx, lk)
				switch {
				case err == nil && string(cur) == id:
					b.Require(lk, cur)
					b.Delete(lk)
				case err != nil && !errors.Is(err, store.ErrNotFound):
					return nil, nil, err
				}
			}
			if next.Record != "" {
				b.Set(linkKey(next.Record), []byte(id))
			}
		}
		switch err := s.e.Apply(ctx, &b); {
		case errors.Is(err, store.ErrConflict):
			continue
		case err != nil:
			return nil, nil, err
		}
		return &next.Request, next.Link, nil
	}
	return nil, nil, ErrBusy
}

// ByWallet returns the wallet's requests, newest first (at most
// MaxPerWallet).
func (s *Store) ByWallet(ctx context.Context, wallet string) ([]*Request, error) {
	var ids []string
	p := key('w', []byte(WalletKey(wallet)), nil)
	r := store.PrefixRange(p)
	r.Reverse, r.Limit = true, MaxPerWallet
	if err := s.e.Scan(ctx, r, func(k, _ []byte) bool {
		if len(k) > len(p)+8 {
			ids = append(ids, string(k[len(p)+8:]))
		}
		return true
	}); err != nil {
		return nil, err
	}
	return s.many(ctx, ids)
}

func (s *Store) many(ctx context.Context, ids []string) ([]*Request, error) {
	out := make([]*Request, 0, len(ids))
	for _, id := range ids {
		st, _, err := s.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &st.Request)
	}
	return out, nil
}

// ForRecord returns the request that created or last linked record
// ("Type/id"), or nil.
func (s *Store) ForRecord(ctx context.Context, record string) (*Request, error) {
	id, err := s.e.Get(ctx, linkKey(record))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	st, _, err := s.get(ctx, string(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &st.Request, nil
}

// Page limits of List.
const (
	DefaultPage = 50
	MaxPage     = 100
)

// List returns up to count requests with status and kind (kind "" for
// both), oldest first, after cursor (from a previous page's next), and
// the cursor of the next page ("" on the last).
func (s *Store) List(ctx context.Context, status Status, kind Kind, count int, cursor string) ([]*Request, string, error) {
	if count <= 0 {
		count = DefaultPage
	}
	count = min(count, MaxPage)
	kinds := []Kind{Patient, Practitioner}
	if kind != "" {
		kinds = []Kind{kind}
	}
	var after []byte // submitted(8) id of the last request of the previous page
	if cursor != "" {
		c, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(c) < 9 || len(c) > 8+64 {
			return nil, "", ErrBadCursor
		}
		after = c
	}
	// One scan per kind, merged by time: the queue is short, and a page
	// reads at most count+1 keys of each.
	type row struct{ pos []byte }
	var rows []row
	for _, k := range kinds {
		p := key('s', []byte(status), []byte(k), nil)
		r := store.PrefixRange(p)
		if after != nil {
			r.Start = append(bytes.Clone(p), after...)
			r.Start = append(r.Start, 0) // strictly after
		}
		r.Limit = count + 1
		if err := s.e.Scan(ctx, r, func(k, _ []byte) bool {
			rows = append(rows, row{bytes.Clone(k[len(p):])})
			return true
		}); err != nil {
			return nil, "", err
		}
	}
	slices.SortFunc(rows, func(a, b row) int { return bytes.Compare(a.pos, b.pos) })
	next := ""
	if len(rows) > count {
		rows = rows[:count]
		next = base64.RawURLEncoding.EncodeToString(rows[count-1].pos)
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = string(r.pos[8:])
	}
	out, err := s.many(ctx, ids)
	return out, next, err
}

// ErrBadCursor: a cursor this store did not make.
var ErrBadCursor = errors.New("invalid paging cursor")

// AccountEntry records what was done to a record after its registration
// (deactivated, reactivated, wallet replaced), for the person it concerns.
func (s *Store) AccountEntry(ctx context.Context, record string, e Entry) error {
	var seq [8]byte
	copy(seq[:], uuid.Must(uuid.NewRandom()).NodeID()) // distinct entries at the same microsecond
	var b store.Batch
	b.Set(key('e', []byte(record), append(ts(e.At), seq[:]...)), mustJSON(&e))
	return s.e.Apply(ctx, &b)
}

// MaxAccountEntries bounds what AccountEntries returns (the newest).
const MaxAccountEntries = 100

// AccountEntries returns what was done to record, oldest first.
func (s *Store) AccountEntries(ctx context.Context, record string) ([]Entry, error) {
	var out []Entry
	r := store.PrefixRange(key('e', []byte(record), nil))
	r.Reverse, r.Limit = true, MaxAccountEntries
	var derr error
	err := s.e.Scan(ctx, r, func(_, v []byte) bool {
		var e Entry
		if derr = json.Unmarshal(v, &e); derr != nil {
			return false
		}
		out = append(out, e)
		return true
	})
	if err == nil {
		err = derr
	}
	slices.Reverse(out)
	return out, err
}
