package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Serving replicas and offline maintenance (gateway reindex) exclude each
// other through the store, so that the rule "reindex with the gateway
// stopped" holds with several replicas on one Redis and not only where a
// directory lock enforces it (Pebble).
//
// Each side first writes its own key, then looks for the other's. Since
// every commit is linearizable, of a replica and a reindex starting at the
// same time at least one sees the other's key and backs off: they can never
// both go on.
//
//	'r' id -> expiry (unix ms)   a serving replica, renewed while it serves
//	'm'    -> expiry (unix ms) id  the maintenance in progress

var presencePrefix = ExtensionPrefix("presence")

// PresenceTTL is how long a replica's key outlives its last renewal: a
// replica killed with SIGKILL holds off maintenance that long.
const PresenceTTL = 15 * time.Second

// ErrMaintenance: maintenance (gateway reindex) holds the store.
var ErrMaintenance = errors.New("store maintenance in progress")

// ErrServing: replicas are serving from the store.
var ErrServing = errors.New("replicas are serving from this store")

func presenceKey(kind byte, id string) []byte {
	return append(append(append([]byte(nil), presencePrefix...), kind), id...)
}

func expiryValue(now time.Time, rest string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(now.Add(PresenceTTL).UnixMilli())), rest...)
}

// live reports whether a presence value is unexpired at now.
func live(v []byte, now time.Time) bool {
	return len(v) >= 8 && int64(binary.BigEndian.Uint64(v)) > now.UnixMilli()
}

// Serve announces a serving replica (id unique per process) and keeps the
// announcement fresh until ctx ends; it fails with ErrMaintenance while
// maintenance holds the store. The returned function withdraws it.
func Serve(ctx context.Context, e Engine, id string) (leave func(), err error) {
	key := presenceKey('r', id)
	put := func(ctx context.Context) error {
		var b Batch
		b.Ops = append(b.Ops, Op{Key: key, Value: expiryValue(time.Now(), ""), TTL: PresenceTTL})
		return e.Apply(ctx, &b)
	}
	if err := put(ctx); err != nil {
		return nil, err
	}
	withdraw := func() {
		var b Batch
		b.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		e.Apply(ctx, &b)
	}
	if m, err := e.Get(ctx, presenceKey('m', "")); err == nil && live(m, time.Now()) {
		withdraw()
		return nil, fmt.Errorf("%w (by %s): wait for it to finish", ErrMaintenance, m[8:])
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		withdraw()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(PresenceTTL / 5)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				put(ctx) // a failure is retried at the next tick; expiry is far
			}
		}
	}()
	return func() { cancel(); <-done; withdraw() }, nil
}

// Maintain takes the store for maintenance by id, refusing with ErrServing
// (naming the replicas) while any replica serves. The returned function
// ends the maintenance; while it runs no replica starts. Maintenance that
// lasts longer than PresenceTTL must call renew.
func Maintain(ctx context.Context, e Engine, id string) (renew func(context.Context) error, end func(), err error) {
	key := presenceKey('m', "")
	absent := []byte{} // marker: require the key to be absent
	put := func(ctx context.Context, cond []byte) error {
		var b Batch
		switch {
		case cond == nil:
		case len(cond) == 0:
			b.Require(key, nil)
		default:
			b.Require(key, cond)
		}
		b.Ops = append(b.Ops, Op{Key: key, Value: expiryValue(time.Now(), id), TTL: PresenceTTL})
		return e.Apply(ctx, &b)
	}
	// Take the key from nobody, or from an expired holder; of two
	// maintenances starting at once the conditional commit admits one.
	cur, err := e.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		err = put(ctx, absent)
	case err != nil:
	case live(cur, time.Now()):
		err = fmt.Errorf("%w (by %s)", ErrMaintenance, cur[8:])
	default:
		err = put(ctx, cur)
	}
	if errors.Is(err, ErrConflict) {
		err = fmt.Errorf("%w (started by another process just now)", ErrMaintenance)
	}
	if err != nil {
		return nil, nil, err
	}
	end = func() {
		var b Batch
		b.Delete(key)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		e.Apply(ctx, &b)
	}
	var serving []string
	now := time.Now()
	pfx := presenceKey('r', "")
	if err := e.Scan(ctx, PrefixRange(pfx), func(k, v []byte) bool {
		if live(v, now) {
			serving = append(serving, string(k[len(pfx):]))
		}
		return len(serving) < 20
	}); err != nil {
		end()
		return nil, nil, err
	}
	if len(serving) > 0 {
		end()
		return nil, nil, fmt.Errorf("%w: %s (a replica killed without stopping counts for %s after its last sign of life)", ErrServing, strings.Join(serving, ", "), PresenceTTL)
	}
	renew = func(ctx context.Context) error { return put(ctx, nil) }
	return renew, end, nil
}
