package rest

import (
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/anchor"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// The tamper-evident log over REST (docs/audit.md): proofs of versions,
// verification of a resource's versions against the log and the chain,
// and the anchored checkpoints.

func (s *Server) proofRoutes(f fiber.Router) {
	if s.cfg.Anchor == nil {
		return
	}
	f.Get("/:type/:id/_history/:vid/$proof", s.proof)
	f.Get("/:type/:id/$verify", s.verify)
}

// mayProve lets a principal prove a version it may read, and regulators
// prove any version (a proof carries hashes, never content).
func (s *Server) mayProve(c *fiber.Ctx, v *store.Version) error {
	if principal(c).Role == policy.RoleRegulator {
		noteOf(c).touch(v)
		return nil
	}
	if err := s.reveal(c, policy.VRead, targetOf(v)); err != nil {
		return err
	}
	noteOf(c).touch(v)
	return nil
}

// proof is GET [type]/[id]/_history/[vid]/$proof: the version's leaf,
// inclusion path and anchored checkpoint; 202 with Retry-After until the
// version's checkpoint is anchored.
func (s *Server) proof(c *fiber.Ctx) error {
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = "operation"
	vid, err := strconv.ParseUint(c.Params("vid"), 10, 64)
	if err != nil || vid == 0 {
		return errorf(fiber.StatusNotFound, "not-found", "no such version")
	}
	v, err := s.store.Version(c.UserContext(), typ, id, vid)
	if err != nil {
		return err
	}
	if err := s.mayProve(c, &v); err != nil {
		return err
	}
	p, err := s.cfg.Anchor.ProofFor(c.UserContext(), typ, id, vid)
	if errors.Is(err, anchor.ErrNotAnchored) {
		if herr := s.cfg.Anchor.Health(); herr != nil {
			// Not "retry in a few seconds": the checkpoint will not be
			// anchored until an operator acts (issue 14: 202 forever).
			c.Set(fiber.HeaderRetryAfter, "60")
			c.Set(fiber.HeaderContentType, s.contentType(c))
			return c.Status(fiber.StatusServiceUnavailable).Send(fhir.OperationOutcome(issue("error", "transient",
				"the version is in the log, but the gateway cannot anchor checkpoints now ("+herr.Error()+"); its operator has been told (/readyz)")))
		}
		after, _ := anchor.RetryAfter(err)
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(after.Seconds()+0.999))))
		c.Set(fiber.HeaderContentType, s.contentType(c))
		return c.Status(fiber.StatusAccepted).Send(fhir.OperationOutcome(issue("information", "informational",
			"the version is in the log but its checkpoint is not anchored yet; retry")))
	}
	if errors.Is(err, anchor.ErrAnchoringDisabled) {
		return errorf(fiber.StatusServiceUnavailable, "not-supported", "anchoring is off on this gateway")
	}
	if err != nil {
		return err
	}
	if !s.decide(c, policy.VRead, targetOf(&v)).Allow {
		p = redactForRegulator(p)
	}
	return c.JSON(p)
}

// redactForRegulator is the proof for a principal who may prove a version
// but not read it (a regulator, for clinical records): without the leaf's
// salt and the body's SHA-256, with which a guess of the content could be
// tested (issue 14: 8,499 guesses recovered a report's conclusion). The
// leaf hash, its inclusion path and the anchored checkpoint still prove
// that the entry is in the log (format v2, docs/audit.md). Those who may
// read the version get the full proof and can recompute the leaf.
func redactForRegulator(p anchor.Proof) anchor.Proof { return p.WithholdContent() }

// verify is GET [type]/[id]/$verify: every stored version re-hashed and
// checked against the log and the chain; mismatches are error issues in a
// 200 OperationOutcome.
func (s *Server) verify(c *fiber.Ctx) error {
	typ, id, err := instanceParams(c)
	if err != nil {
		return err
	}
	noteOf(c).interaction = "operation"
	cur, err := s.store.Current(c.UserContext(), typ, id)
	if err != nil {
		return err
	}
	if err := s.mayProve(c, &cur); err != nil {
		return err
	}
	checks, err := s.cfg.Anchor.VerifyResource(c.UserContext(), typ, id)
	if err != nil {
		return err
	}
	var issues []fhir.Issue
	for _, ck := range checks {
		code := "informational"
		if ck.Severity() == "error" {
			code = "integrity"
		}
		issues = append(issues, fhir.Issue{Severity: ck.Severity(), Code: code, Diagnostics: ck.Message(),
			Expression: []string{typ + "/" + id + "/_history/" + strconv.FormatUint(ck.VersionID, 10)}})
	}
	c.Set(fiber.HeaderContentType, s.contentType(c))
	return c.Send(fhir.OperationOutcome(issues...))
}

// checkpoints is GET /anchor/checkpoints: the anchored checkpoints, with
// their transactions (public: roots only).
func (s *Server) checkpoints(c *fiber.Ctx) error {
	after, _ := strconv.ParseUint(c.Query("after"), 10, 64)
	limit, _ := strconv.Atoi(c.Query("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := anchor.CheckpointQuery{After: after, Limit: limit}
	switch b := c.Query("before"); b {
	case "":
	case "latest":
		q.Before = ^uint64(0)
	default:
		var err error
		if q.Before, err = strconv.ParseUint(b, 10, 64); err != nil || q.Before == 0 {
			return errorf(fiber.StatusBadRequest, "invalid", "before is a tree size, or latest")
		}
	}
	cps, err := s.cfg.Anchor.Checkpoints(c.UserContext(), q)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"chain": s.cfg.Anchor.Chain(), "checkpoints": cps})
}

// consistency is GET /anchor/consistency?from=N&to=M (public: hashes only).
func (s *Server) consistency(c *fiber.Ctx) error {
	from, err1 := strconv.ParseUint(c.Query("from"), 10, 64)
	to, err2 := strconv.ParseUint(c.Query("to"), 10, 64)
	if err1 != nil || err2 != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "from and to are tree sizes")
	}
	p, err := s.cfg.Anchor.Consistency(c.UserContext(), from, to)
	if errors.Is(err, anchor.ErrBadRange) || errors.Is(err, anchor.ErrBeyondLog) {
		return errorf(fiber.StatusBadRequest, "invalid", err.Error())
	}
	if err != nil {
		return err
	}
	return c.JSON(p)
}
