package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/fhirgate/fhirgate/store"
)

func TestRetry(t *testing.T) {
	errOther := errors.New("other")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		results []error // fn's answers, in turn; the last repeats
		calls   int
		want    error
	}{
		{"first try", context.Background(), []error{nil}, 1, nil},
		{"after conflicts", context.Background(), []error{store.ErrConflict, fmt.Errorf("commit: %w", store.ErrConflict), nil}, 3, nil},
		{"gives up", context.Background(), []error{store.ErrConflict}, 5, store.ErrConflict},
		{"other error", context.Background(), []error{store.ErrConflict, errOther}, 2, errOther},
		{"unknown outcome not retried", context.Background(), []error{store.ErrUnknownOutcome}, 1, store.ErrUnknownOutcome},
		{"unknown outcome of a conflict not retried", context.Background(),
			[]error{fmt.Errorf("%w: %w", store.ErrUnknownOutcome, store.ErrConflict)}, 1, store.ErrUnknownOutcome},
		{"unavailable not retried", context.Background(), []error{store.ErrUnavailable}, 1, store.ErrUnavailable},
		{"context ended", canceled, []error{nil}, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := store.Retry(tc.ctx, 5, func() error {
				r := tc.results[min(calls, len(tc.results)-1)]
				calls++
				return r
			})
			if calls != tc.calls {
				t.Errorf("fn ran %d times, want %d", calls, tc.calls)
			}
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
