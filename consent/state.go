package consent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/policy"
)

// The follower's keyspace, under store.ExtensionPrefix(Config.Keyspace):
//
//	'm'                          -> meta (JSON: chain id, genesis, registry, start block)
//	'c'                          -> cursor: last applied block (number, hash, time) and event count
//	'f'                          -> floor: newest block whose undo record was pruned
//	'g' patient grantee scope    -> row: the grant as the chain holds it (84-byte key)
//	'u' number                   -> undo record of an applied block (hash, previous rows)
//	'p' hash                     -> grantee preimage ("Practitioner/123")
//	'w' patient wallet           -> the patient it was last mapped to ("Patient/7")
//	'j' patient grantee scope    -> hash and patient of the last Consent projected
//	'h'                          -> heartbeat: the meta a running follower keeps current, and when
//
// Every replica of a deployment follows the same chain and registry into
// the same keyspace (one follower state, shared): a replica that finds
// state of another chain or registry takes it over only when no follower
// has kept it current lately (the heartbeat), so two deployments or
// misconfigured replicas sharing a store refuse to start rather than wipe
// each other's state (ErrKeyspaceInUse).
//
// Rows, undo records and the cursor of a block change in one Apply, with
// the persisted cursor as its condition: the state on disk is always the
// state after some whole block, and two writers cannot both advance it.
const (
	kMeta      = 'm'
	kCursor    = 'c'
	kFloor     = 'f'
	kRow       = 'g'
	kUndo      = 'u'
	kPreimage  = 'p'
	kProj      = 'j'
	kWallet    = 'w'
	kHeartbeat = 'h'
)

// gkey identifies a grant as the contract does: (patient, grantee, scope).
type gkey struct {
	Patient common.Address
	Grantee common.Hash
	Scope   common.Hash
}

const gkeyLen = common.AddressLength + 2*common.HashLength

func (k gkey) bytes() []byte {
	b := make([]byte, 0, gkeyLen)
	b = append(b, k.Patient[:]...)
	b = append(b, k.Grantee[:]...)
	return append(b, k.Scope[:]...)
}

func gkeyFrom(b []byte) (gkey, bool) {
	if len(b) != gkeyLen {
		return gkey{}, false
	}
	var k gkey
	copy(k.Patient[:], b[:20])
	copy(k.Grantee[:], b[20:52])
	copy(k.Scope[:], b[52:84])
	return k, true
}

// pos locates a log on the chain.
type pos struct {
	Block uint64
	Time  uint64 // block timestamp
	Tx    common.Hash
	Index uint32 // log index in the block
}

// row is a grant as the chain holds it, plus where it last changed.
type row struct {
	Expiry  uint64 // the contract's stored expiry; 0 after a revoke
	Revoked bool   // the last event was ConsentRevoked
	Granted pos    // the latest ConsentGranted
	Changed pos    // the latest event
}

// active reports whether the grant is in force at unix second now, by the
// contract's rule (now < expiry).
func (r *row) active(now int64) bool {
	return r != nil && !r.Revoked && r.Expiry != 0 && expiryAfter(r.Expiry, now)
}

// expiryAfter reports whether expiry (unix seconds) is after now.
func expiryAfter(expiry uint64, now int64) bool {
	return now < 0 || expiry > uint64(now)
}

// expiryTime converts a contract expiry to time; values beyond int64 (the
// contract's type(uint64).max among them) are policy.Forever.
func expiryTime(e uint64) time.Time {
	if e > math.MaxInt64 {
		return policy.Forever
	}
	return time.Unix(int64(e), 0)
}

const rowLen = 1 + 8 + 1 + 2*posLen
const posLen = 8 + 8 + 32 + 4

func (p pos) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, p.Block)
	b = binary.BigEndian.AppendUint64(b, p.Time)
	b = append(b, p.Tx[:]...)
	return binary.BigEndian.AppendUint32(b, p.Index)
}

func readPos(b []byte) pos {
	var p pos
	p.Block = binary.BigEndian.Uint64(b)
	p.Time = binary.BigEndian.Uint64(b[8:])
	copy(p.Tx[:], b[16:48])
	p.Index = binary.BigEndian.Uint32(b[48:])
	return p
}

func (r *row) encode() []byte {
	b := make([]byte, 0, rowLen)
	b = append(b, 1) // format version
	b = binary.BigEndian.AppendUint64(b, r.Expiry)
	if r.Revoked {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = r.Granted.append(b)
	return r.Changed.append(b)
}

var errCorrupt = errors.New("consent: corrupt follower state")

func decodeRow(b []byte) (*row, error) {
	if len(b) != rowLen || b[0] != 1 {
		return nil, fmt.Errorf("%w: row of %d bytes", errCorrupt, len(b))
	}
	r := &row{Expiry: binary.BigEndian.Uint64(b[1:]), Revoked: b[9] == 1}
	r.Granted = readPos(b[10:])
	r.Changed = readPos(b[10+posLen:])
	return r, nil
}

// blockRef is a block by number and hash.
type blockRef struct {
	Number uint64
	Hash   common.Hash
	Time   uint64
}

// cursor is the last block whose events are applied, and how many events
// have been applied on the canonical chain up to it.
type cursor struct {
	blockRef
	Events uint64
}

func (c cursor) encode() []byte {
	b := make([]byte, 0, 8+32+8+8)
	b = binary.BigEndian.AppendUint64(b, c.Number)
	b = append(b, c.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, c.Time)
	return binary.BigEndian.AppendUint64(b, c.Events)
}

func decodeCursor(b []byte) (cursor, error) {
	if len(b) != 56 {
		return cursor{}, fmt.Errorf("%w: cursor of %d bytes", errCorrupt, len(b))
	}
	var c cursor
	c.Number = binary.BigEndian.Uint64(b)
	copy(c.Hash[:], b[8:40])
	c.Time = binary.BigEndian.Uint64(b[40:])
	c.Events = binary.BigEndian.Uint64(b[48:])
	return c, nil
}

func (r blockRef) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, r.Number)
	b = append(b, r.Hash[:]...)
	return binary.BigEndian.AppendUint64(b, r.Time)
}

func decodeBlockRef(b []byte) (blockRef, error) {
	if len(b) != 48 {
		return blockRef{}, fmt.Errorf("%w: block ref of %d bytes", errCorrupt, len(b))
	}
	var r blockRef
	r.Number = binary.BigEndian.Uint64(b)
	copy(r.Hash[:], b[8:40])
	r.Time = binary.BigEndian.Uint64(b[40:])
	return r, nil
}

// undoRec restores the rows a block changed: prev holds each row as it
// was before the block (nil: absent).
type undoRec struct {
	blockRef
	Events uint32 // events the block applied
	Keys   []gkey
	Prev   []*row
}

func (u *undoRec) encode() []byte {
	b := u.blockRef.encode()
	b = binary.BigEndian.AppendUint32(b, u.Events)
	b = binary.BigEndian.AppendUint32(b, uint32(len(u.Keys)))
	for i, k := range u.Keys {
		b = append(b, k.bytes()...)
		if u.Prev[i] == nil {
			b = append(b, 0)
		} else {
			b = append(b, 1)
			b = append(b, u.Prev[i].encode()...)
		}
	}
	return b
}

func decodeUndo(b []byte) (*undoRec, error) {
	if len(b) < 56 {
		return nil, fmt.Errorf("%w: undo record of %d bytes", errCorrupt, len(b))
	}
	ref, err := decodeBlockRef(b[:48])
	if err != nil {
		return nil, err
	}
	u := &undoRec{blockRef: ref, Events: binary.BigEndian.Uint32(b[48:])}
	n := int(binary.BigEndian.Uint32(b[52:]))
	b = b[56:]
	for i := 0; i < n; i++ {
		if len(b) < gkeyLen+1 {
			return nil, fmt.Errorf("%w: short undo record", errCorrupt)
		}
		k, _ := gkeyFrom(b[:gkeyLen])
		b = b[gkeyLen:]
		var prev *row
		if b[0] == 1 {
			if len(b) < 1+rowLen {
				return nil, fmt.Errorf("%w: short undo record", errCorrupt)
			}
			if prev, err = decodeRow(b[1 : 1+rowLen]); err != nil {
				return nil, err
			}
			b = b[1+rowLen:]
		} else {
			b = b[1:]
		}
		u.Keys = append(u.Keys, k)
		u.Prev = append(u.Prev, prev)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: undo record has trailing bytes", errCorrupt)
	}
	return u, nil
}

// meta binds the keyspace to one chain and registry.
type meta struct {
	ChainID    uint64         `json:"chainId"`
	Genesis    common.Hash    `json:"genesis"`
	Registry   common.Address `json:"registry"`
	StartBlock uint64         `json:"startBlock"`
}

// keys of the keyspace under prefix pfx.
type keyspace struct{ pfx []byte }

func (ks keyspace) key(tag byte, parts ...[]byte) []byte {
	n := len(ks.pfx) + 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, ks.pfx...)
	k = append(k, tag)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func (ks keyspace) meta() []byte       { return ks.key(kMeta) }
func (ks keyspace) heartbeat() []byte  { return ks.key(kHeartbeat) }
func (ks keyspace) cursor() []byte     { return ks.key(kCursor) }
func (ks keyspace) floor() []byte      { return ks.key(kFloor) }
func (ks keyspace) row(k gkey) []byte  { return ks.key(kRow, k.bytes()) }
func (ks keyspace) proj(k gkey) []byte { return ks.key(kProj, k.bytes()) }
func (ks keyspace) preimage(h common.Hash) []byte {
	return ks.key(kPreimage, h[:])
}
func (ks keyspace) wallet(a common.Address) []byte { return ks.key(kWallet, a[:]) }
func (ks keyspace) undo(n uint64) []byte {
	return ks.key(kUndo, binary.BigEndian.AppendUint64(nil, n))
}
func (ks keyspace) tagPrefix(tag byte) []byte { return ks.key(tag) }
