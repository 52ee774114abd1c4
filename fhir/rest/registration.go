package rest

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/audit"
	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/registration"
	"github.com/fhirgate/fhirgate/store"
)

// The registration routes (docs/integrator-guide.md, "Registration
// requests"): a wallet linked to no record (the applicant role) asks to be
// registered; an administrator, or for patients an EHR system registered
// for identity linking, verifies or rejects the request. They are not
// FHIR interactions and the access table does not decide them: the table
// gives an administrator no create on a patient's data, and must not (an
// administrator must not create clinical records through the FHIR API).
// These routes authorize by role and scope themselves, and write the
// records a verification makes through the write path's pieces (validated,
// indexed, logged, wallet uniqueness held) as registrationAuthor.

// registrationAuthor authors the records a verification creates, on the
// decision of the administrator the AuditEvent names. It is not
// audit.Author: what the gateway authors is read-only to clients
// (errGatewayRecord), and a registered person's record must stay
// editable by those the access table lets edit it. No principal has it as
// subject, so no one gains an author's rights over the record.
const registrationAuthor = "fhirgate/registration"

var registrationPrincipal = &policy.Principal{Subject: registrationAuthor, Role: policy.RoleSystem}

// unfinished: how long a verification whose AuditEvent is not yet named
// is left to the replica that made it before a retry finishes it (the
// replica may have died between the two).
const unfinished = 30 * time.Second

func (s *Server) registrationRoutes() {
	if s.cfg.Registration == nil {
		return
	}
	g := s.app.Group("/registration", noStore, s.authenticate)
	g.Post("/", s.regSubmit)
	g.Get("/", s.regList)
	g.Get("/mine", s.regMine)
	g.Get("/practitioners", s.regPractitioners)
	g.Post("/deactivate", func(c *fiber.Ctx) error { return s.regActive(c, false) })
	g.Post("/reactivate", func(c *fiber.Ctx) error { return s.regActive(c, true) })
	g.Post("/:id/withdraw", s.regWithdraw)
	g.Post("/:id/verify", s.regVerify)
	g.Post("/:id/reject", s.regReject)
}

func noStore(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Next()
}

// Refusals, in words the person reads in the portal.
var (
	errRegLinked = errorf(fiber.StatusForbidden, "forbidden",
		"this wallet is already linked to a record: sign in again to use it, or ask the clinic if you think this is wrong")
	errRegNotApplicant = errorf(fiber.StatusForbidden, "forbidden",
		"only a person signed in with a wallet that is linked to no record can ask to be registered")
	errRegNoWallet = errorf(fiber.StatusForbidden, "forbidden",
		"registration requests belong to a wallet: sign in with your wallet to see yours")
	errRegNotAdmin = errorf(fiber.StatusForbidden, "forbidden",
		"only an administrator (or, for patients, a system registered for identity linking) decides registration requests")
	errRegAdminOnly = errorf(fiber.StatusForbidden, "forbidden",
		"only an administrator can do this")
	errRegLinkerKind = errorf(fiber.StatusForbidden, "forbidden",
		"a system registered for identity linking decides patients' registration requests only")
	errRegNotFound = errorf(fiber.StatusNotFound, "not-found", "there is no such registration request")
	errRegNoMatch  = errorf(fiber.StatusUnprocessableEntity, "business-rule",
		"no single record with that number and birth date: check the number in the clinic's own files")
	errRegOtherWallet = errorAt(fiber.StatusConflict, "conflict", "replaceWallet",
		"this record is already linked to another wallet; if that wallet was lost, verify again with replaceWallet set to replace it")
	errRegWalletTaken = errorf(fiber.StatusConflict, "duplicate",
		"this wallet is already linked to another record: a wallet speaks for one person only")
	errRegNoRecord = errorAt(fiber.StatusUnprocessableEntity, "business-rule", "record", "there is no such Practitioner record")
)

func errRegFinal(st registration.Status, what string) error {
	return errorf(fiber.StatusConflict, "conflict", "this request was "+string(st)+" already; it cannot be "+what+" now")
}

// regDecider says who may decide a request: an administrator with the
// registration scope, or a system client registered for identity linking
// (patients' requests only: checked by the caller).
func regDecider(p *policy.Principal) (string, error) {
	switch {
	case p.Role == policy.RoleAdmin && slices.Contains(p.Scopes.Other, policy.ScopeRegistrationAdmin):
		return registration.ByAdmin, nil
	case p.Role == policy.RoleSystem && slices.Contains(p.Scopes.Other, policy.ScopeIdentityLinking):
		return registration.ByLinking, nil
	}
	return "", errRegNotAdmin
}

func regAdmin(p *policy.Principal) error {
	if p.Role == policy.RoleAdmin && slices.Contains(p.Scopes.Other, policy.ScopeRegistrationAdmin) {
		return nil
	}
	return errRegAdminOnly
}

// regBody is the JSON body of a registration route, bounded by the
// server's body limit (inflate).
func regBody(c *fiber.Ctx) ([]byte, error) {
	b := c.Body()
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil, nil
	}
	if err := requireBody(c, mimeJSON, mimeFHIRJSON); err != nil {
		return nil, err
	}
	return b, nil
}

// regErr maps the registration package's errors.
func regErr(err error) error {
	var fe *registration.FieldError
	switch {
	case errors.As(err, &fe):
		if fe.Field == "" {
			return errorf(fiber.StatusBadRequest, "invalid", fe.Msg)
		}
		return errorAt(fiber.StatusBadRequest, "invalid", fe.Field, fe.Error())
	case errors.Is(err, registration.ErrNotFound):
		return errRegNotFound
	case errors.Is(err, registration.ErrPending):
		return errorf(fiber.StatusConflict, "duplicate",
			"You already have a registration request waiting. Withdraw it first if you want to change it.")
	case errors.Is(err, registration.ErrQueueFull):
		return errorf(fiber.StatusTooManyRequests, "throttled",
			"The clinic has too many registration requests waiting to be checked. Please try again later, or contact the clinic.")
	case errors.Is(err, registration.ErrTooMany):
		return errorf(fiber.StatusTooManyRequests, "throttled", "This wallet has made "+strconv.Itoa(registration.MaxPerWallet)+
			" registration requests, the most one wallet may make. Please ask the clinic to register you.")
	case errors.Is(err, registration.ErrBusy):
		return errorf(fiber.StatusConflict, "conflict", err.Error())
	case errors.Is(err, registration.ErrBadCursor):
		return errorAt(fiber.StatusBadRequest, "invalid", "cursor", "invalid paging cursor")
	case errors.Is(err, registration.ErrOtherWallet):
		return errRegOtherWallet
	}
	return err
}

// POST /registration: an applicant asks to be registered.
func (s *Server) regSubmit(c *fiber.Ctx) error {
	p := principal(c)
	switch {
	case p.Role == policy.RolePatient || p.Role == policy.RolePractitioner:
		return errRegLinked
	case p.Role != policy.RoleApplicant || p.Wallet == "" || !slices.Contains(p.Scopes.Other, policy.ScopeRegistration):
		return errRegNotApplicant
	}
	// The token may predate a link made since: a linked wallet asks for
	// nothing more.
	holder, err := s.store.UniqueHolder(c.UserContext(), walletName(p.Wallet))
	if err != nil {
		return err
	}
	if holder != "" {
		return errRegLinked
	}
	body, err := regBody(c)
	if err != nil {
		return err
	}
	if body == nil {
		return errorf(fiber.StatusBadRequest, "required", `send the request as JSON: {"kind":"practitioner"|"patient", ...}`)
	}
	kind, a, err := registration.ParseRequest(body, s.now())
	if err != nil {
		return regErr(err)
	}
	r, err := s.cfg.Registration.Submit(c.UserContext(), p.Wallet, kind, a)
	if err != nil {
		return regErr(err)
	}
	return c.Status(fiber.StatusCreated).JSON(r)
}

// GET /registration/mine: the requests of the token's wallet, and what
// was done since to the record the token is bound to.
func (s *Server) regMine(c *fiber.Ctx) error {
	p := principal(c)
	switch p.Role {
	case policy.RoleApplicant, policy.RolePatient, policy.RolePractitioner:
	default:
		return errRegNoWallet
	}
	if p.Wallet == "" && p.Resource == "" {
		return errRegNoWallet
	}
	ctx := c.UserContext()
	var reqs []*registration.Request
	var err error
	if p.Wallet != "" {
		if reqs, err = s.cfg.Registration.ByWallet(ctx, p.Wallet); err != nil {
			return err
		}
	}
	if p.Resource != "" {
		linked, err := s.cfg.Registration.ForRecord(ctx, p.Resource)
		if err != nil {
			return err
		}
		// Only a request that names the record (verified): its
		// history is the record's.
		if linked != nil && linked.Record == p.Resource && !slices.ContainsFunc(reqs, func(r *registration.Request) bool { return r.ID == linked.ID }) {
			reqs = append(reqs, linked)
		}
		events, err := s.cfg.Registration.AccountEntries(ctx, p.Resource)
		if err != nil {
			return err
		}
		if len(events) > 0 {
			i := slices.IndexFunc(reqs, func(r *registration.Request) bool { return r.Record == p.Resource })
			if i < 0 {
				// Registered before these routes existed: the events
				// alone, under the record.
				kind, _, _ := strings.Cut(p.Resource, "/")
				reqs = append(reqs, &registration.Request{Kind: registration.Kind(strings.ToLower(kind)),
					Status: registration.Verified, Record: p.Resource, Wallet: p.Wallet, Submitted: events[0].At})
				i = len(reqs) - 1
			}
			r := *reqs[i]
			r.History = append(slices.Clone(r.History), events...)
			slices.SortStableFunc(r.History, func(a, b registration.Entry) int { return a.At.Compare(b.At) })
			reqs[i] = &r
		}
	}
	slices.SortStableFunc(reqs, func(a, b *registration.Request) int { return b.Submitted.Compare(a.Submitted) })
	if reqs == nil {
		reqs = []*registration.Request{}
	}
	return c.JSON(fiber.Map{"requests": reqs})
}

// GET /registration?status=&kind=&_count=&cursor=: the queue.
func (s *Server) regList(c *fiber.Ctx) error {
	p := principal(c)
	by, err := regDecider(p)
	if err != nil {
		return err
	}
	status := registration.Status(c.Query("status", string(registration.Pending)))
	switch status {
	case registration.Pending, registration.Verified, registration.Rejected, registration.Withdrawn:
	default:
		return errorAt(fiber.StatusBadRequest, "invalid", "status", "status must be pending, verified, rejected or withdrawn")
	}
	kind := registration.Kind(c.Query("kind"))
	switch kind {
	case "", registration.Patient, registration.Practitioner:
	default:
		return errorAt(fiber.StatusBadRequest, "invalid", "kind", "kind must be practitioner or patient")
	}
	if by == registration.ByLinking {
		if kind == registration.Practitioner {
			return errRegLinkerKind
		}
		kind = registration.Patient
	}
	count, err := pageCount(c)
	if err != nil {
		return err
	}
	reqs, next, err := s.cfg.Registration.List(c.UserContext(), status, kind, count, c.Query("cursor"))
	if err != nil {
		return regErr(err)
	}
	out := fiber.Map{"requests": reqs}
	if next != "" {
		out["next"] = next
	}
	return c.JSON(out)
}

func pageCount(c *fiber.Ctx) (int, error) {
	v := c.Query("_count")
	if v == "" {
		return registration.DefaultPage, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errorAt(fiber.StatusBadRequest, "invalid", "_count", "_count must be a number from 1 to "+strconv.Itoa(registration.MaxPage))
	}
	return min(n, registration.MaxPage), nil
}

// POST /registration/{id}/withdraw: the requester takes a pending
// request back.
func (s *Server) regWithdraw(c *fiber.Ctx) error {
	p := principal(c)
	if p.Wallet == "" {
		return errRegNoWallet
	}
	ctx := c.UserContext()
	id := c.Params("id")
	r, _, err := s.cfg.Registration.Get(ctx, id)
	if err != nil {
		return regErr(err)
	}
	// Another wallet's request is absent to this one.
	if registration.WalletKey(r.Wallet) != registration.WalletKey(p.Wallet) {
		return errRegNotFound
	}
	r, _, err = s.cfg.Registration.Update(ctx, id, func(r *registration.Request, _ **registration.Link) error {
		if r.Status != registration.Pending {
			return errRegFinal(r.Status, "withdrawn")
		}
		r.Status = registration.Withdrawn
		r.History = append(r.History, registration.Entry{At: s.clock(), Action: registration.ActWithdrawn, By: registration.ByYou})
		return nil
	})
	if err != nil {
		return regErr(err)
	}
	r, err = s.regEvent(c, r, registration.ActWithdrawn, audit.Event{Interaction: "operation",
		Reason: "registration request " + r.ID + " withdrawn by its requester"})
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// POST /registration/{id}/reject {"reason":"..."}.
func (s *Server) regReject(c *fiber.Ctx) error {
	by, r, _, err := s.regToDecide(c)
	if err != nil {
		return err
	}
	ctx, id := c.UserContext(), r.ID
	body, err := regBody(c)
	if err != nil {
		return err
	}
	reason, err := registration.ParseReject(body)
	if err != nil {
		return regErr(err)
	}
	r, _, err = s.cfg.Registration.Update(ctx, id, func(r *registration.Request, _ **registration.Link) error {
		if r.Status != registration.Pending {
			return errRegFinal(r.Status, "rejected")
		}
		r.Status, r.Reason = registration.Rejected, reason
		r.History = append(r.History, registration.Entry{At: s.clock(), Action: registration.ActRejected, By: by, Reason: reason})
		return nil
	})
	if err != nil {
		return regErr(err)
	}
	// The reason is the requester's to read, not the trail's: it may
	// name them.
	r, err = s.regEvent(c, r, registration.ActRejected, audit.Event{Interaction: "operation",
		Reason: "registration request " + r.ID + " rejected"})
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// regToDecide is the request of the route's id, for a principal who may
// decide it (regDecider; an identity-linking system, patients' requests
// only), with who decides and its planned link.
func (s *Server) regToDecide(c *fiber.Ctx) (string, *registration.Request, *registration.Link, error) {
	by, err := regDecider(principal(c))
	if err != nil {
		return "", nil, nil, err
	}
	r, link, err := s.cfg.Registration.Get(c.UserContext(), c.Params("id"))
	if err != nil {
		return "", nil, nil, regErr(err)
	}
	if by == registration.ByLinking && r.Kind != registration.Patient {
		return "", nil, nil, errRegLinkerKind
	}
	return by, r, link, nil
}

// regEvent records ev as done by the request's principal and names it in
// the last history entry of action that names no event yet.
func (s *Server) regEvent(c *fiber.Ctx, r *registration.Request, action string, ev audit.Event) (*registration.Request, error) {
	if s.cfg.Audit == nil {
		return r, nil
	}
	var id string
	ev.Time, ev.Principal, ev.Outcome, ev.Source, ev.Assigned = s.now(), principal(c), audit.Success, c.IP(), &id
	if err := s.record(c, ev); err != nil {
		return nil, errAuditUnavailable
	}
	ref := "AuditEvent/" + id
	next, _, err := s.cfg.Registration.Update(c.UserContext(), r.ID, func(r *registration.Request, _ **registration.Link) error {
		for i := len(r.History) - 1; i >= 0; i-- {
			if h := &r.History[i]; h.Action == action && h.AuditEvent == "" {
				h.AuditEvent = ref
				return nil
			}
		}
		return errNothingToName
	})
	if errors.Is(err, errNothingToName) {
		return r, nil
	}
	return next, err
}

var errNothingToName = errors.New("no history entry to name the event in")

// POST /registration/{id}/verify.
func (s *Server) regVerify(c *fiber.Ctx) error {
	by, r, link, err := s.regToDecide(c)
	if err != nil {
		return err
	}
	ctx, id := c.UserContext(), r.ID
	switch r.Status {
	case registration.Verified:
		return s.regFinish(c, r, link, false) // a retry: finish, create nothing new
	case registration.Pending:
	default:
		return errRegFinal(r.Status, "verified")
	}
	body, err := regBody(c)
	if err != nil {
		return err
	}
	vb, err := registration.ParseVerify(body, r.Kind)
	if err != nil {
		return regErr(err)
	}
	plan, err := s.regPlan(c, r, vb)
	if err != nil {
		return err
	}
	r, link, err = s.cfg.Registration.Update(ctx, id, func(r *registration.Request, l **registration.Link) error {
		switch r.Status {
		case registration.Verified:
			return errVerifiedMeanwhile
		case registration.Pending:
		default:
			return errRegFinal(r.Status, "verified")
		}
		p := plan
		r.Status, r.Record, *l = registration.Verified, plan.Record, &p
		r.History = append(r.History, registration.Entry{At: s.clock(), Action: registration.ActVerified, By: by})
		return nil
	})
	if errors.Is(err, errVerifiedMeanwhile) {
		// Another replica or request verified it: finish its work, as
		// it planned it.
		if r, link, err = s.cfg.Registration.Get(ctx, id); err != nil {
			return regErr(err)
		}
		return s.regFinish(c, r, link, false)
	}
	if err != nil {
		return regErr(err)
	}
	return s.regFinish(c, r, link, true)
}

var errVerifiedMeanwhile = errors.New("verified meanwhile")

// regPlan decides how a pending request's verification links its wallet:
// to a record it creates, or to the one existing record vb names.
func (s *Server) regPlan(c *fiber.Ctx, r *registration.Request, vb registration.VerifyBody) (registration.Link, error) {
	ctx := c.UserContext()
	typ := "Practitioner"
	if r.Kind == registration.Patient {
		typ = "Patient"
	}
	var plan registration.Link
	switch {
	case vb.Record != "":
		v, err := s.store.Read(ctx, typ, strings.TrimPrefix(vb.Record, typ+"/"))
		if errors.Is(err, store.ErrNotFound) || err == nil && v.Deleted {
			return plan, errRegNoRecord
		}
		if err != nil {
			return plan, err
		}
		plan = registration.Link{Record: vb.Record, ReplaceWallet: vb.ReplaceWallet}
	case vb.ClinicNumber != "":
		rec, err := s.regMatchPatient(ctx, vb.ClinicSystem, vb.ClinicNumber, r.Asserted.BirthDate)
		if err != nil {
			return plan, err
		}
		plan = registration.Link{Record: rec, ReplaceWallet: vb.ReplaceWallet}
	default:
		plan = registration.Link{Record: typ + "/" + newID(), Create: true}
	}
	// Refused before the request changes: a wallet linked elsewhere, a
	// record linked to another wallet. (The write checks both again.)
	holder, err := s.store.UniqueHolder(ctx, walletName(r.Wallet))
	if err != nil {
		return plan, err
	}
	if holder != "" && holder != plan.Record {
		return plan, errRegWalletTaken
	}
	if !plan.Create && !plan.ReplaceWallet {
		typ, id, _ := strings.Cut(plan.Record, "/")
		v, err := s.store.Read(ctx, typ, id)
		if err != nil {
			return plan, err
		}
		for _, w := range WalletIdentifiers(v.Body) {
			if walletName(w) != walletName(r.Wallet) {
				return plan, errRegOtherWallet
			}
		}
	}
	return plan, nil
}

// regMatchPatient finds the one Patient with identifier value number (of
// system, if given) born on birthDate. No match and several matches, of
// the number or of the birth date, are one answer: the administrator
// learns nothing about which part failed.
func (s *Server) regMatchPatient(ctx context.Context, system, number, birthDate string) (string, error) {
	pred := store.Pred{Op: store.OpTokenCode, Param: "identifier", Code: number}
	if system != "" {
		pred = store.Pred{Op: store.OpTokenSystemCode, Param: "identifier", System: system, Code: number}
	}
	page, err := s.store.Search(ctx, &store.Query{Type: "Patient", Clauses: []store.Clause{{Preds: []store.Pred{pred}}}, Count: 10})
	if err != nil {
		return "", err
	}
	var found []string
	for _, id := range page.IDs {
		v, err := s.store.Read(ctx, "Patient", id)
		if err != nil || v.Deleted {
			continue
		}
		root, err := fhirjson.Parse(v.Body, fhir.Limits)
		if err != nil {
			continue
		}
		if root.GetString("birthDate") == birthDate {
			found = append(found, "Patient/"+id)
		}
	}
	if len(found) != 1 || len(page.Next) > 0 {
		return "", errRegNoMatch
	}
	return found[0], nil
}

// regFinish makes the record of a verified request as its link says (a
// retry, or another replica, finds it made), records the AuditEvent and
// answers the request. won says this request made the transition.
func (s *Server) regFinish(c *fiber.Ctx, r *registration.Request, link *registration.Link, won bool) error {
	ctx := c.UserContext()
	if link == nil {
		return errorf(fiber.StatusConflict, "conflict", "this request was verified in another way; reload it")
	}
	i := slices.IndexFunc(r.History, func(h registration.Entry) bool { return h.Action == registration.ActVerified })
	if i >= 0 && r.History[i].AuditEvent != "" {
		// Finished: a retry changes nothing (the record may have moved on
		// since: a later request replaced the wallet, which a replay of
		// this link must not take back).
		return c.JSON(r)
	}
	written, replaced, err := s.regApply(ctx, r, link)
	if err != nil {
		if !errors.Is(err, store.ErrTaken) && !errors.Is(err, registration.ErrOtherWallet) {
			return err
		}
		// The record cannot take the wallet (linked elsewhere since the
		// plan was made): the verification is undone, not left half
		// done.
		s.regUndo(ctx, r.ID, link)
		if errors.Is(err, store.ErrTaken) {
			return errRegWalletTaken
		}
		return errRegOtherWallet
	}
	if i >= 0 && (won || s.now().Sub(r.History[i].At) > unfinished) {
		ev := audit.Event{Interaction: "update", Reason: "registration request " + r.ID + " verified: wallet linked to the record"}
		if link.Create {
			ev.Interaction, ev.Reason = "create", "registration request "+r.ID+" verified: record created"
		} else if replaced {
			ev.Reason += "; the record's previous wallet was removed"
		}
		for _, v := range written {
			ev.Entities = append(ev.Entities, v.Type+"/"+v.ID+"/_history/"+itoa(v.VID))
		}
		if len(written) == 0 {
			ev.Entities = []string{link.Record}
		}
		if strings.HasPrefix(link.Record, "Patient/") {
			ev.Patients = []string{link.Record}
		}
		if r, err = s.regEvent(c, r, registration.ActVerified, ev); err != nil {
			return err
		}
		if replaced {
			e := registration.Entry{At: s.clock(), Action: registration.ActWalletReplace, By: r.History[i].By}
			if j := slices.IndexFunc(r.History, func(h registration.Entry) bool { return h.Action == registration.ActVerified }); j >= 0 {
				e.AuditEvent = r.History[j].AuditEvent
			}
			if err := s.cfg.Registration.AccountEntry(ctx, link.Record, e); err != nil {
				return err
			}
		}
	}
	return c.JSON(r)
}

// regUndo turns a verified request whose record could not be written back
// to pending.
func (s *Server) regUndo(ctx context.Context, id string, link *registration.Link) {
	_, _, err := s.cfg.Registration.Update(ctx, id, func(r *registration.Request, l **registration.Link) error {
		if r.Status != registration.Verified || *l == nil || (*l).Record != link.Record {
			return errNothingToName
		}
		i := slices.IndexFunc(r.History, func(h registration.Entry) bool { return h.Action == registration.ActVerified })
		if i < 0 || r.History[i].AuditEvent != "" {
			return errNothingToName
		}
		r.History = r.History[:i]
		r.Status, r.Record, *l = registration.Pending, "", nil
		return nil
	})
	if err != nil && !errors.Is(err, errNothingToName) {
		s.log.ErrorContext(ctx, "could not undo a registration verification", "request", id, "err", err)
	}
}

// regApply writes what link says, unless it is written already: it
// returns the versions it wrote (none on a retry that finds them) and
// whether another wallet was removed from the record.
func (s *Server) regApply(ctx context.Context, r *registration.Request, link *registration.Link) ([]store.Version, bool, error) {
	typ, id, _ := strings.Cut(link.Record, "/")
	var written []store.Version
	replaced := false
	err := store.Retry(ctx, maxCommitAttempts, func() error {
		written, replaced = nil, false
		var ws []store.Write
		if link.Create {
			claim := normalizeCriteria(registration.Criteria(r.ID))
			owner, err := s.store.ClaimOwner(ctx, typ, claim)
			if err != nil {
				return err
			}
			if owner != "" {
				return nil // made by the first attempt
			}
			body := r.PatientResource()
			if typ == "Practitioner" {
				body = r.PractitionerResource()
			}
			w, err := s.regVersion(registrationPrincipal, typ, id, body, nil, store.MethodCreate)
			if err != nil {
				return err
			}
			w.Claim = &store.Claim{Name: claim}
			ws = append(ws, w)
			if role := r.RoleResource(link.Record); role != nil {
				w, err := s.regVersion(registrationPrincipal, "PractitionerRole", newID(), role, nil, store.MethodCreate)
				if err != nil {
					return err
				}
				w.Claim = &store.Claim{Name: claim}
				ws = append(ws, w)
			}
		} else {
			cur, err := s.store.Read(ctx, typ, id)
			if err != nil {
				return err
			}
			if cur.Deleted {
				return errRegNoRecord
			}
			body, rep, err := registration.LinkWallet(cur.Body, r.Wallet, link.ReplaceWallet)
			if err != nil || body == nil {
				return err // linked already: nothing to write
			}
			prev := cur
			prev.Body = nil
			w, err := s.regVersion(registrationPrincipal, typ, id, body, &prev, store.MethodUpdate)
			if err != nil {
				return err
			}
			ws, replaced = append(ws, w), rep
		}
		if err := s.store.Commit(ctx, ws); err != nil {
			return err
		}
		s.afterCommit(ws)
		for _, w := range ws {
			written = append(written, w.New)
		}
		return nil
	})
	return written, replaced, err
}

// regVersion validates body as typ and stamps it as the version of id
// after prev, authored by the registration service.
func (s *Server) regVersion(p *policy.Principal, typ, id string, body []byte, prev *store.Version, m store.Method) (store.Write, error) {
	res, err := fhir.Parse(body)
	if err != nil {
		return store.Write{}, err
	}
	if res.Type != typ {
		return store.Write{}, errors.New("registration: built a " + res.Type + " for a " + typ)
	}
	return s.newVersion(p, res, id, prev, m)
}

// POST /registration/deactivate and /reactivate {"record":"Practitioner/<id>","reason":"..."}:
// an identity-only change of the practitioner's active flag.
func (s *Server) regActive(c *fiber.Ctx, active bool) error {
	if err := regAdmin(principal(c)); err != nil {
		return err
	}
	ctx := c.UserContext()
	body, err := regBody(c)
	if err != nil {
		return err
	}
	rb, err := registration.ParseRecordBody(body, !active)
	if err != nil {
		return regErr(err)
	}
	id := strings.TrimPrefix(rb.Record, "Practitioner/")
	var written *store.Version
	err = store.Retry(ctx, maxCommitAttempts, func() error {
		written = nil
		cur, err := s.store.Read(ctx, "Practitioner", id)
		if errors.Is(err, store.ErrNotFound) || err == nil && cur.Deleted {
			return errRegNoRecord
		}
		if err != nil {
			return err
		}
		next, err := registration.SetActive(cur.Body, active)
		if err != nil || next == nil {
			return err // already so: nothing to write
		}
		prev := cur
		prev.Body = nil
		w, err := s.regVersion(principal(c), "Practitioner", id, next, &prev, store.MethodUpdate)
		if err != nil {
			return err
		}
		if err := s.store.Commit(ctx, []store.Write{w}); err != nil {
			return err
		}
		s.afterCommit([]store.Write{w})
		written = &w.New
		return nil
	})
	if err != nil {
		return err
	}
	action, word := registration.ActReactivated, "reactivated"
	if !active {
		action, word = registration.ActDeactivated, "deactivated"
	}
	out := fiber.Map{"record": rb.Record, "active": active}
	if written == nil {
		out["changed"] = false
		return c.JSON(out)
	}
	entry := registration.Entry{At: written.LastUpdated, Action: action, By: registration.ByAdmin, Reason: rb.Reason}
	if s.cfg.Audit != nil {
		var evID string
		ev := audit.Event{Time: s.now(), Principal: principal(c), Interaction: "update", Outcome: audit.Success,
			Reason:   "practitioner " + word + " by an administrator",
			Entities: []string{written.Type + "/" + written.ID + "/_history/" + itoa(written.VID)}, Source: c.IP(), Assigned: &evID}
		if err := s.record(c, ev); err != nil {
			return errAuditUnavailable
		}
		entry.AuditEvent = "AuditEvent/" + evID
		out["auditEvent"] = entry.AuditEvent
	}
	if err := s.cfg.Registration.AccountEntry(ctx, rb.Record, entry); err != nil {
		return err
	}
	out["changed"] = true
	return c.JSON(out)
}

// practitionerRow is one line of the administrators' practitioner list.
type practitionerRow struct {
	Record string `json:"record"`
	Name   string `json:"name"`
	Active bool   `json:"active"`
	Wallet string `json:"wallet"`
}

// GET /registration/practitioners?_count=&cursor=: the practitioners, for
// the administrators' page.
func (s *Server) regPractitioners(c *fiber.Ctx) error {
	if err := regAdmin(principal(c)); err != nil {
		return err
	}
	count, err := pageCount(c)
	if err != nil {
		return err
	}
	q := store.Query{Type: "Practitioner", Count: count}
	if cur := c.Query("cursor"); cur != "" {
		if q.Cursor, err = base64.RawURLEncoding.DecodeString(cur); err != nil {
			return regErr(registration.ErrBadCursor)
		}
	}
	ctx := c.UserContext()
	page, err := s.store.Search(ctx, &q)
	if errors.Is(err, store.ErrBadCursor) {
		return regErr(registration.ErrBadCursor)
	}
	if err != nil {
		return err
	}
	vs, err := s.store.ReadMany(ctx, "Practitioner", page.IDs)
	if err != nil {
		return err
	}
	rows := make([]practitionerRow, 0, len(vs))
	for _, v := range vs {
		if v.Deleted {
			continue
		}
		root, err := fhirjson.Parse(v.Body, fhir.Limits)
		if err != nil {
			continue
		}
		row := practitionerRow{Record: "Practitioner/" + v.ID, Name: nameText(&root), Active: identityOf(&root).active}
		if ws := WalletIdentifiers(v.Body); len(ws) > 0 {
			row.Wallet = ws[0]
		}
		rows = append(rows, row)
	}
	out := fiber.Map{"practitioners": rows}
	if len(page.Next) > 0 {
		out["next"] = base64.RawURLEncoding.EncodeToString(page.Next)
	}
	return c.JSON(out)
}

// nameText is a resource's first name as one line.
func nameText(root *fhirjson.Value) string {
	names := root.Get("name")
	if names == nil || names.Kind != fhirjson.Array || len(names.Items) == 0 {
		return ""
	}
	n := &names.Items[0]
	if t := n.GetString("text"); t != "" {
		return t
	}
	var parts []string
	for _, f := range []string{"prefix", "given"} {
		if a := n.Get(f); a != nil && a.Kind == fhirjson.Array {
			for i := range a.Items {
				parts = append(parts, a.Items[i].Str)
			}
		}
	}
	if f := n.GetString("family"); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}
