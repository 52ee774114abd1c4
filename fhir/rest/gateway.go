package rest

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// gatewayPrincipal writes the records the gateway itself keeps (projected
// Consents); what it authors is read-only to clients.
var gatewayPrincipal = &policy.Principal{Subject: audit.Author, Role: policy.RoleSystem}

// errGatewayRecord refuses client writes to records the gateway keeps.
var errGatewayRecord = errorf(fiber.StatusForbidden, "forbidden",
	"this record is kept by the gateway (an audit event, or a consent projected from the chain): it cannot be changed through the API")

// WriteAsGateway creates, replaces (body) or deletes (nil body) typ/id as
// the gateway itself, with the same versioning, indexing and log leaf as
// any write. It is idempotent: writing the current content again makes no
// new version.
func (s *Server) WriteAsGateway(ctx context.Context, typ, id string, body []byte) error {
	return store.Retry(ctx, maxCommitAttempts, func() error {
		cur, err := s.store.Read(ctx, typ, id)
		var prev *store.Version
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			prev = &cur
		}
		var w store.Write
		if body == nil {
			if prev == nil || prev.Deleted {
				return nil
			}
			w = s.tombstone(gatewayPrincipal, typ, id, prev)
		} else {
			root, err := fhirjson.Parse(body, fhir.Limits)
			if err != nil {
				return err
			}
			if prev != nil && !prev.Deleted && sameContent(prev.Body, root) {
				return nil
			}
			res := &fhir.Resource{Type: typ, ID: id, Root: root}
			m := store.MethodUpdate
			if w, err = s.newVersion(gatewayPrincipal, res, id, prev, m); err != nil {
				return err
			}
		}
		if err := s.store.Commit(ctx, []store.Write{w}); err != nil {
			return err
		}
		s.afterCommit([]store.Write{w})
		return nil
	})
}

// sameContent compares a stored body with new content, ignoring meta.
func sameContent(stored []byte, next fhirjson.Value) bool {
	old, err := fhirjson.Parse(stored, fhir.Limits)
	if err != nil {
		return false
	}
	old.Delete("meta")
	next = next.Clone()
	next.Delete("meta")
	return fhirjson.Equal(&old, &next)
}

// afterCommit tells the gateway's other parts about committed versions
// (the consent follower learns wallets and grantees from them).
func (s *Server) afterCommit(ws []store.Write) {
	s.sessions.forgetWritten(ws) // sessions end at once on this replica
	if s.cfg.OnWrite == nil {
		return
	}
	for i := range ws {
		s.cfg.OnWrite(&ws[i])
	}
}
