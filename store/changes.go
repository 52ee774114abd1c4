package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// The unique-name feed. Every commit that changes the unique names a
// resource holds (a wallet linked to a Patient or unlinked from it) also
// appends one entry to this feed, in the same atomic commit, numbered 1, 2,
// ... without gaps. Processes sharing the engine (gateway replicas on one
// Redis) poll the feed's sequence key, one Get, and read the entries after
// the last one they saw: a wallet unlinked through one replica is known
// to every replica at its next poll, learned from the store and not from
// the memory of the process that wrote it.
//
// Keys, in the claim table under pseudo-types no resource type can have:
//
//	'u' "#changeseq"    -> number of the newest entry (8 bytes big-endian)
//	'u' "#changes" n    -> entry n (JSON list of UniqueChange)
//
// The sequence key is a condition of the commit, so two commits that
// change unique names at the same time race for it; Commit retries the
// loser with the next number (only when the sequence moved, so a conflict
// on the records themselves still reaches the caller).

// UniqueFeedKeep is how many entries the feed keeps: the writer of entry
// n deletes entry n-UniqueFeedKeep in the same commit. A reader further
// behind finds a gap and must resynchronise from the records.
const UniqueFeedKeep = 100_000

// uniqueFeedRetries bounds Commit's retries of a lost race for the feed's
// sequence number.
const uniqueFeedRetries = 16

// UniqueChange is a resource whose unique names changed: Names are the
// names it took or released in the commit.
type UniqueChange struct {
	Ref   string   `json:"ref"` // "Type/id"
	Names []string `json:"names"`
}

// UniqueEntry is one entry of the unique-name feed: the changes of one
// commit.
type UniqueEntry struct {
	Seq     uint64
	Changes []UniqueChange
}

func uniqueSeqKey() []byte { return newKey(tagClaim, 16).str("#changeseq") }

func uniqueFeedPrefix() keyBuf { return newKey(tagClaim, 24).str("#changes").frozen() }

func uniqueFeedKey(n uint64) []byte { return uniqueFeedPrefix().u64(n) }

// UniqueSeq returns the number of the newest entry of the unique-name
// feed (0: none yet).
func (s *Store) UniqueSeq(ctx context.Context) (uint64, error) {
	n, _, err := s.uniqueSeq(ctx)
	return n, err
}

func (s *Store) uniqueSeq(ctx context.Context) (uint64, []byte, error) {
	b, err := s.e.Get(ctx, uniqueSeqKey())
	if errors.Is(err, ErrNotFound) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, err
	}
	if len(b) != 8 {
		return 0, nil, errCorrupt
	}
	return binary.BigEndian.Uint64(b), b, nil
}

// UniqueChanges returns up to limit entries of the unique-name feed after
// entry after, oldest first. When the entry after+1 is gone (the feed
// keeps the newest UniqueFeedKeep), the first entry returned has a higher
// number: the caller missed changes and must resynchronise from the
// records.
func (s *Store) UniqueChanges(ctx context.Context, after uint64, limit int) ([]UniqueEntry, error) {
	p := uniqueFeedPrefix()
	var out []UniqueEntry
	var derr error
	err := s.e.Scan(ctx, Range{Start: p.u64(after + 1), End: PrefixEnd(p), Limit: limit}, func(k, v []byte) bool {
		n, _, ok := readU64(k[len(p):])
		var cs []UniqueChange
		if !ok || json.Unmarshal(v, &cs) != nil {
			derr = fmt.Errorf("%w: unique-name feed entry", errCorrupt)
			return false
		}
		out = append(out, UniqueEntry{Seq: n, Changes: cs})
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// noteUnique records in feed that ref took or released names.
func noteUnique(feed *[]UniqueChange, ref string, names []string) {
	if feed == nil || len(names) == 0 {
		return
	}
	slices.Sort(names)
	*feed = append(*feed, UniqueChange{Ref: ref, Names: slices.Compact(names)})
}

// apply commits b, and with it an entry of the unique-name feed holding
// feed (when not empty). A lost race for the feed's number alone is
// retried with the next one.
func (s *Store) apply(ctx context.Context, b *Batch, feed []UniqueChange) error {
	if len(feed) == 0 {
		return s.e.Apply(ctx, b)
	}
	entry, err := json.Marshal(feed)
	if err != nil {
		return err
	}
	nc, no := len(b.Conds), len(b.Ops)
	for attempt := 0; ; attempt++ {
		seq, raw, err := s.uniqueSeq(ctx)
		if err != nil {
			return err
		}
		b.Conds, b.Ops = b.Conds[:nc], b.Ops[:no]
		b.Conds = append(b.Conds, Cond{Key: uniqueSeqKey(), Value: raw, Absent: raw == nil})
		n := seq + 1
		b.Set(uniqueSeqKey(), binary.BigEndian.AppendUint64(nil, n))
		b.Set(uniqueFeedKey(n), entry)
		if n > UniqueFeedKeep {
			b.Delete(uniqueFeedKey(n - UniqueFeedKeep))
		}
		err = s.e.Apply(ctx, b)
		if !errors.Is(err, ErrConflict) || attempt == uniqueFeedRetries {
			return err
		}
		if now, _, serr := s.uniqueSeq(ctx); serr != nil || now == seq {
			return err // the conflict is elsewhere: the caller's to handle
		}
	}
}
