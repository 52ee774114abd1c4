package store

import (
	"context"
	"errors"
)

// Retry runs fn until it returns anything but ErrConflict (a commit that
// lost a race with another writer: fn reads again and decides afresh), at
// most attempts times, and returns fn's last error. It never retries
// ErrUnknownOutcome: that commit may have applied, and running fn again
// could write twice (a second version, audit event or log leaf). It stops
// early when ctx ends, with ctx's error.
func Retry(ctx context.Context, attempts int, fn func() error) error {
	err := ErrConflict
	for range attempts {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		err = fn()
		if !errors.Is(err, ErrConflict) || errors.Is(err, ErrUnknownOutcome) {
			return err
		}
	}
	return err
}
