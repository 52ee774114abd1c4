package main

import (
	"context"
	"log/slog"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/chain/outbox"
	"github.com/fhirgate/fhirgate/store"
)

// keepSendLease takes part in the election of the one replica that sends
// the gateway's Ethereum transactions and anchors the audit log: the
// holder of the store lease "sender" (taken over within seconds when its
// holder dies). The Sender sends only through the lease (chain/outbox),
// so the anchorer's and the relay's transactions never share a nonce,
// on any replica. stop releases the lease (another replica takes it at
// once).
func keepSendLease(e store.Engine, sender *chain.Sender, log *slog.Logger) (lease *store.Lease, stop func()) {
	lease = store.NewLease(e, "sender", store.NewHolderID("gateway-"), store.LeaseOptions{Sole: !store.IsShared(e)})
	sender.SetGate(outbox.New(e, lease, sender.Address()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var last string
	go func() {
		defer close(done)
		lease.Keep(ctx, func(err error) {
			if err.Error() != last {
				log.Warn("the sending lease cannot be renewed", "err", err)
			}
			last = err.Error()
		})
	}()
	// Campaign once now, so that a sole process anchors at once.
	lease.Acquire(ctx)
	return lease, func() { cancel(); <-done }
}
