package rest

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"

	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/store"
)

// Batch and transaction (http.html#transaction): POST [base] with a
// Bundle. A transaction is all or nothing: every write lands in one
// durable store commit, or none does. Batch entries succeed or fail one
// by one.

// Entry caps (docs/limits.md). A batch's entries run one by one, each a
// request of its own: its cap is the array limit of every request body. A
// transaction holds all its entries in memory until its one commit, and
// what an entry costs there is mostly fixed (its index keys and store
// records): a 1 MB transaction of 7,000 small Patients raised the
// gateway's peak memory by 124 to 129 MB, one of 2,000 by 29 to 46 MB,
// one of 1,000 by about 20 (the bar: 64 MB for any 1 MB request). So a
// transaction may hold one entry per transactionEntryBytes of its body:
// at least minTransactionEntries, at most maxTransactionEntries. Synthea
// patient bundles (1,000 to 6,000 entries of about 1.3 KB) fit: 2,404
// entries in 3 MB raised the peak by 112 MB, 5,751 in 7 MB by 231 MB.
const (
	maxBatchEntries       = fhir.MaxItems
	minTransactionEntries = 1000
	maxTransactionEntries = fhir.MaxItems
	transactionEntryBytes = 512
)

// transactionCap is the most entries a transaction of size bytes holds.
func transactionCap(size int) int {
	return min(maxTransactionEntries, max(minTransactionEntries, size/transactionEntryBytes))
}

func errTransactionEntries(size int) error {
	return errorAt(fiber.StatusBadRequest, "too-costly", "Bundle.entry", "a transaction of "+strconv.Itoa(size>>10)+
		" KiB holds at most "+strconv.Itoa(transactionCap(size))+" entries ("+strconv.Itoa(minTransactionEntries)+", or one per "+strconv.Itoa(transactionEntryBytes)+
		" bytes of the body, up to "+strconv.Itoa(maxTransactionEntries)+"); split it")
}

// txEntry is one entry of a batch or transaction and what it resolved to.
type txEntry struct {
	index                                              int
	fullURL                                            string
	method                                             string
	url                                                string // request.url, relative to the base
	res                                                *fhir.Resource
	resVal                                             *fhirjson.Value // the entry's resource, inside the Bundle tree
	ifMatch, ifNoneMatch, ifNoneExist, ifModifiedSince string

	typ, id string
	newID   string // the id a POST creates, kept across retries
	prev    *store.Version
	claim   *store.Claim
	patch   *fhirjson.Value
	write   *store.Write

	status   int
	existing *store.Version // the match of a conditional create
	// GET entries: the sub-request's answer.
	body []byte
	hdr  http.Header
}

// bundleRequest is POST [base]: a batch or transaction, within the time
// budget.
func (s *Server) bundleRequest(c *fiber.Ctx) error {
	return s.withBudget(c, func() error { return s.processBundle(c) })
}

func (s *Server) processBundle(c *fiber.Ctx) error {
	if err := requireBody(c, mimeFHIRJSON, mimeJSON); err != nil {
		return err
	}
	root, err := fhirjson.Parse(c.Body(), fhir.RequestLimits)
	if err != nil {
		_, err = fhir.Parse(c.Body()) // the same failure, explained
		return err
	}
	if root.GetString("resourceType") != "Bundle" {
		return errorAt(fiber.StatusBadRequest, "invalid", "resourceType", "POST to the base needs a Bundle of type batch or transaction")
	}
	if list := root.Get("entry"); root.GetString("type") == "transaction" && list != nil && len(list.Items) > transactionCap(len(c.Body())) {
		// Refused before its entries are validated.
		return errTransactionEntries(len(c.Body()))
	}
	var res *fhir.Resource
	if root.GetString("type") == "batch" {
		// Batch entries succeed or fail one by one: validate the Bundle
		// without its resources here, each resource in its own request.
		shell := root.Clone()
		if list := shell.Get("entry"); list != nil {
			for i := range list.Items {
				list.Items[i].Delete("resource")
			}
		}
		if _, err := fhir.Parse(fhirjson.Canonical(&shell)); err != nil {
			return err
		}
		res = &fhir.Resource{Type: "Bundle", Root: root}
	} else if res, err = fhir.FromTree(root, c.Body()); err != nil {
		return err
	}
	entries, err := readEntries(res, s.base(c))
	if err != nil {
		return err
	}
	switch res.Root.GetString("type") {
	case "transaction":
		return s.transaction(c, entries)
	case "batch":
		return s.batch(c, entries)
	}
	return errorAt(fiber.StatusBadRequest, "invalid", "Bundle.type", "the Bundle must be of type batch or transaction")
}

func entryPath(i int, rest string) string {
	p := "Bundle.entry[" + strconv.Itoa(i) + "]"
	if rest != "" {
		p += "." + rest
	}
	return p
}

func readEntries(b *fhir.Resource, base string) ([]*txEntry, error) {
	list := b.Root.Get("entry")
	if list == nil {
		return nil, nil
	}
	if len(list.Items) > maxBatchEntries {
		return nil, errorAt(fiber.StatusBadRequest, "too-costly", "Bundle.entry",
			"a batch has at most "+strconv.Itoa(maxBatchEntries)+" entries; split it")
	}
	entries := make([]*txEntry, len(list.Items))
	fullURLs := make(map[string]int, len(list.Items))
	for i := range list.Items {
		v := &list.Items[i]
		req := v.Get("request")
		e := &txEntry{index: i, fullURL: v.GetString("fullUrl")}
		if req == nil {
			return nil, errorAt(fiber.StatusBadRequest, "required", entryPath(i, "request"), "every entry needs a request")
		}
		if e.fullURL != "" {
			// A fullUrl names one entry: references to it, and its
			// answer, must not be ambiguous (bdl-7).
			if j, dup := fullURLs[e.fullURL]; dup {
				return nil, errorAt(fiber.StatusBadRequest, "invalid", entryPath(i, "fullUrl"),
					"the fullUrl of entry "+strconv.Itoa(j)+" again: each entry of a batch or transaction has its own")
			}
			fullURLs[e.fullURL] = i
		}
		e.method, e.url = req.GetString("method"), req.GetString("url")
		e.ifMatch, e.ifNoneMatch = req.GetString("ifMatch"), req.GetString("ifNoneMatch")
		e.ifNoneExist, e.ifModifiedSince = req.GetString("ifNoneExist"), req.GetString("ifModifiedSince")
		if rv := v.Get("resource"); rv != nil {
			e.resVal = rv
			e.res = &fhir.Resource{Type: rv.GetString("resourceType"), ID: rv.GetString("id"), Root: *rv}
			if t := rv.GetString("type"); e.res.Type == "Bundle" && (t == "batch" || t == "transaction") {
				return nil, errorAt(fiber.StatusBadRequest, "not-supported", entryPath(i, "resource"),
					"a batch or transaction cannot carry another one: they do not nest")
			}
		}
		switch e.method {
		case "GET", "HEAD", "DELETE":
		case "POST", "PUT", "PATCH":
			if e.res == nil {
				return nil, errorAt(fiber.StatusBadRequest, "required", entryPath(i, "resource"), e.method+" entries need a resource")
			}
		default:
			return nil, errorAt(fiber.StatusBadRequest, "invalid", entryPath(i, "request.method"), "unsupported method '"+e.method+"'")
		}
		e.url = strings.TrimPrefix(e.url, "/")
		if path, _, _ := strings.Cut(e.url, "?"); path == "" || path == base || path == base+"/" {
			// POST [base] would run a batch or transaction inside this
			// one (each level a sub-request, to JSON depth 100).
			return nil, errorAt(fiber.StatusBadRequest, "not-supported", entryPath(i, "request.url"),
				"an entry cannot address the base: batches and transactions do not nest")
		}
		entries[i] = e
	}
	return entries, nil
}

// methodRank is the transaction processing order: DELETE, POST, PUT and
// PATCH, then reads (http.html#trules).
func methodRank(m string) int {
	switch m {
	case "DELETE":
		return 0
	case "POST":
		return 1
	case "PUT", "PATCH":
		return 2
	}
	return 3
}

// txError is the failure of one transaction entry; the whole transaction
// fails with its status and an issue pointing at the entry.
func txError(e *txEntry, err error) error {
	status, issues, _ := statusOf(err)
	entry := e.method + " " + e.url
	if e.fullURL != "" {
		entry += " (fullUrl " + truncate(e.fullURL, 200) + ")"
	}
	for i := range issues {
		issues[i].Expression = []string{entryPath(e.index, strings.Join(issues[i].Expression, ","))}
		issues[i].Diagnostics = entry + ": " + issues[i].Diagnostics
	}
	return &httpError{status: status, issue: issues[0]}
}

func (s *Server) transaction(c *fiber.Ctx, entries []*txEntry) error {
	p := principal(c)
	order := slices.Clone(entries)
	slices.SortStableFunc(order, func(a, b *txEntry) int { return methodRank(a.method) - methodRank(b.method) })
	var rw rewrites
	// A conflict means another writer got in between: resolve everything
	// again. The budget is checked before each commit, not by Retry: once
	// begun, a commit completes.
	err := store.Retry(context.WithoutCancel(c.UserContext()), maxCommitAttempts, func() error {
		rw.undo() // a retry resolves references afresh
		if err := s.prepareTransaction(c, p, order, &rw); err != nil {
			return err
		}
		var writes []store.Write
		for _, e := range order {
			if e.write != nil {
				writes = append(writes, *e.write)
			}
		}
		if overBudget(c.UserContext()) {
			return s.errTooCostly() // nothing written
		}
		if err := s.store.Commit(context.WithoutCancel(c.UserContext()), writes); err != nil {
			return err
		}
		s.afterCommit(writes)
		for i := range writes {
			noteOf(c).touch(&writes[i].New)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range order {
		if e.method == "GET" || e.method == "HEAD" {
			e.status, e.hdr, e.body = s.dispatchWithin(c, e)
		}
	}
	b := newBundle("transaction-response")
	for _, e := range entries {
		b.add(s.responseEntry(c, e))
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}

// prepareTransaction resolves every entry in processing order: targets of
// conditional URLs, new ids, rewritten references, preconditions, and the
// versions to write.
func (s *Server) prepareTransaction(c *fiber.Ctx, p *policy.Principal, order []*txEntry, rw *rewrites) error {
	ids := map[string]string{} // fullUrl -> Type/id
	targets := map[string]int{}
	for _, e := range order {
		e.prev, e.write, e.existing, e.claim, e.status = nil, nil, nil, nil, 0
		if err := s.resolveEntry(c, p, e, ids); err != nil {
			return txError(e, err)
		}
		if e.typ != "" && e.id != "" && e.method != "GET" && e.method != "HEAD" {
			k := e.typ + "/" + e.id
			if j, dup := targets[k]; dup {
				return errorAt(fiber.StatusBadRequest, "invalid", entryPath(e.index, ""), "the transaction changes "+k+" twice (also entry "+strconv.Itoa(j)+")")
			}
			targets[k] = e.index
		}
	}
	// References between entries point at the resolved ids, conditional
	// references at the resources they match (txrefs.go).
	refs := s.newRefResolver(c, ids, order, rw)
	for _, e := range order {
		if (e.method == "POST" || e.method == "PUT") && e.existing == nil {
			if err := refs.rewrite(&e.res.Root); err != nil {
				return txError(e, err)
			}
		}
	}
	for _, e := range order {
		if err := s.buildWrite(c, p, e); err != nil {
			return txError(e, err)
		}
	}
	return nil
}

// splitURL splits request.url ("Patient/1", "Patient?x=y") into type, id
// and query.
func splitURL(raw string) (typ, id, query string, err error) {
	path, query, _ := strings.Cut(raw, "?")
	parts := strings.Split(strings.TrimSuffix(path, "/"), "/")
	typ = parts[0]
	if !fhir.IsResourceType(typ) {
		return "", "", "", errorf(fiber.StatusNotFound, "not-supported", "unknown resource type in '"+truncate(raw, 80)+"'")
	}
	switch {
	case len(parts) == 2 && strings.HasPrefix(parts[1], "$"), len(parts) == 3 && strings.HasPrefix(parts[2], "$"):
		return "", "", "", errorf(fiber.StatusBadRequest, "not-supported", "operations are not supported in a transaction")
	case len(parts) == 2:
		id = parts[1]
		if !fhir.ValidID(id) {
			return "", "", "", errorf(fiber.StatusBadRequest, "invalid", "invalid resource id")
		}
	case len(parts) > 2 && parts[2] != "_history":
		return "", "", "", errorf(fiber.StatusBadRequest, "invalid", "cannot process the URL '"+truncate(raw, 80)+"'")
	}
	return typ, id, query, nil
}

func (s *Server) resolveEntry(c *fiber.Ctx, p *policy.Principal, e *txEntry, ids map[string]string) error {
	if e.method == "GET" || e.method == "HEAD" {
		return nil // read after the writes, as a sub-request
	}
	typ, id, query, err := splitURL(e.url)
	if err != nil {
		return err
	}
	e.typ, e.id = typ, id
	if e.res != nil && e.method != "PATCH" && e.res.Type != typ {
		return errorAt(fiber.StatusBadRequest, "invalid", "resource.resourceType", "the resource is a "+e.res.Type+", but the URL is for "+typ)
	}
	inter := map[string]policy.Interaction{"POST": policy.Create, "PUT": policy.Update, "PATCH": policy.Patch, "DELETE": policy.Delete}[e.method]
	if err := policy.CheckScope(p, inter, typ); err != nil {
		return err
	}
	conditional := query != "" || (e.method == "POST" && e.ifNoneExist != "")
	if conditional {
		if err := policy.CheckScope(p, policy.SearchType, typ); err != nil {
			return err
		}
	}
	switch e.method {
	case "POST":
		if id != "" || query != "" {
			return errorf(fiber.StatusBadRequest, "invalid", "POST entries create: the URL is the resource type")
		}
		if e.newID == "" {
			e.newID = newID()
		}
		e.id = e.newID
		if e.ifNoneExist != "" {
			found, claim, err := s.matchForCreate(c, typ, strings.TrimPrefix(e.ifNoneExist, typ+"?"))
			if err != nil {
				return err
			}
			switch len(found) {
			case 0:
				e.claim = claim
			case 1:
				v, err := s.store.Read(c.UserContext(), typ, found[0])
				if err != nil {
					return err
				}
				e.id, e.existing = found[0], &v
			default:
				return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "ifNoneExist matched more than one resource")
			}
		}
	case "PUT", "PATCH", "DELETE":
		if query != "" {
			found, err := s.match(c, typ, query)
			if err != nil {
				return err
			}
			switch len(found) {
			case 0:
				if e.method == "DELETE" {
					e.status = fiber.StatusNoContent
					return nil
				}
				if e.method == "PATCH" {
					return errorf(fiber.StatusNotFound, "not-found", "no resource matched the criteria")
				}
				e.id = e.res.ID
				if e.id == "" {
					e.id = newID()
				}
			case 1:
				e.id = found[0]
			default:
				return errorf(fiber.StatusPreconditionFailed, "multiple-matches", "the criteria matched more than one resource")
			}
		} else if id == "" {
			return errorf(fiber.StatusBadRequest, "invalid", e.method+" entries need Type/id or Type?criteria")
		}
		if e.method == "PUT" && e.res.ID != "" && e.res.ID != e.id {
			return errorAt(fiber.StatusBadRequest, "invalid", "resource.id", "the resource id does not match the URL")
		}
		if e.method == "PUT" && e.res.ID == "" && query == "" {
			return errorAt(fiber.StatusBadRequest, "required", "resource.id", "PUT needs the resource id")
		}
	}
	if e.fullURL != "" {
		ids[e.fullURL] = typ + "/" + e.id
	}
	return nil
}

// rewrites remembers rewritten references so that a retried transaction
// starts again from the references as the client sent them.
type rewrites []struct {
	at  *string
	old string
}

func (r *rewrites) set(at *string, to string) {
	*r = append(*r, struct {
		at  *string
		old string
	}{at, *at})
	*at = to
}

func (r *rewrites) undo() {
	for i := len(*r) - 1; i >= 0; i-- {
		*(*r)[i].at = (*r)[i].old
	}
	*r = (*r)[:0]
}

// buildWrite checks an entry's preconditions and prepares its version.
func (s *Server) buildWrite(c *fiber.Ctx, p *policy.Principal, e *txEntry) error {
	if e.method == "GET" || e.method == "HEAD" || e.status != 0 || e.existing != nil {
		if e.existing != nil {
			e.status = fiber.StatusOK
		}
		return nil
	}
	if e.method != "POST" {
		prev, err := s.current(c, e.typ, e.id)
		if err != nil {
			return err
		}
		e.prev = prev
		// A record the client may not know of is absent to it, as on the
		// REST routes: a delete deletes nothing, a patch finds nothing,
		// ifMatch sees no current version; an update is refused in
		// permitWrite as one creating the record would be.
		if prev != nil && !s.identityWriter(c, e.typ) {
			in := map[string]policy.Interaction{"PUT": policy.Update, "PATCH": policy.Patch, "DELETE": policy.Delete}[e.method]
			switch err := s.reveal(c, in, targetOf(prev)); {
			case errors.Is(err, errHidden):
				if e.method != "PUT" {
					e.prev = nil
				} else if e.ifMatch != "" {
					want, _ := parseETag(e.ifMatch)
					return versionMismatch(want, nil)
				}
			case err != nil:
				return err
			}
		}
	}
	if e.ifMatch != "" {
		want, ok := parseETag(e.ifMatch)
		if !ok {
			return errorf(fiber.StatusBadRequest, "invalid", "ifMatch must be a version ETag")
		}
		if e.prev == nil || e.prev.VID != want {
			return versionMismatch(want, e.prev)
		}
	}
	if e.ifNoneMatch == "*" && e.prev != nil && !e.prev.Deleted {
		return errorf(fiber.StatusPreconditionFailed, "duplicate", "ifNoneMatch * requires that the resource does not exist")
	}
	switch e.method {
	case "DELETE":
		if e.prev == nil || e.prev.Deleted {
			e.status = fiber.StatusNoContent
			return nil
		}
		w := s.tombstone(p, e.typ, e.id, e.prev)
		if err := s.permitWrite(c, policy.Delete, e.prev, &w); err != nil {
			return err
		}
		e.write, e.status = &w, fiber.StatusNoContent
		return nil
	case "PATCH":
		return s.buildPatch(c, p, e)
	}
	creating := e.prev == nil || e.prev.Deleted
	if e.method == "PUT" && creating {
		if err := policy.CheckScope(p, policy.Create, e.typ); err != nil {
			return err
		}
	}
	m := store.MethodUpdate
	if e.method == "POST" {
		m = store.MethodCreate
	}
	w, err := s.newVersion(p, e.res, e.id, e.prev, m)
	if err != nil {
		return err
	}
	if err := s.permitWrite(c, interactionOf(m), e.prev, &w); err != nil {
		return err
	}
	w.Claim = e.claim
	e.write = &w
	e.status = fiber.StatusOK
	if creating {
		e.status = fiber.StatusCreated
	}
	return nil
}

// buildPatch applies a JSON Patch carried as a Binary resource
// (contentType application/json-patch+json, base64 data).
func (s *Server) buildPatch(c *fiber.Ctx, p *policy.Principal, e *txEntry) error {
	if e.res.Type != "Binary" || e.resVal.GetString("contentType") != mimeJSONPatch {
		return errorf(fiber.StatusUnsupportedMediaType, "not-supported", "a PATCH entry carries a Binary of contentType application/json-patch+json")
	}
	raw, err := base64.StdEncoding.DecodeString(e.resVal.GetString("data"))
	if err != nil {
		return errorf(fiber.StatusBadRequest, "invalid", "the patch Binary has invalid base64 data")
	}
	ops, err := fhirjson.Parse(raw, fhir.RequestLimits)
	if err != nil {
		return errorf(fiber.StatusBadRequest, "structure", "the patch is not valid JSON")
	}
	if e.prev == nil {
		return errorf(fiber.StatusNotFound, "not-found", "resource not found")
	}
	if e.prev.Deleted {
		return gone(*e.prev)
	}
	cur, err := s.store.Version(c.UserContext(), e.typ, e.id, e.prev.VID)
	if err != nil {
		return err
	}
	res, err := s.patched(cur, &ops)
	if err != nil {
		return err
	}
	w, err := s.newVersion(p, res, e.id, e.prev, store.MethodPatch)
	if err != nil {
		return err
	}
	if err := s.permitWrite(c, policy.Patch, e.prev, &w); err != nil {
		return err
	}
	e.write, e.status = &w, fiber.StatusOK
	return nil
}

// responseEntry is the transaction-response entry of e.
func (s *Server) responseEntry(c *fiber.Ctx, e *txEntry) fhirjson.Value {
	resp := fhirjson.Obj(fhirjson.KV("status", fhirjson.Str(statusLine(e.status))))
	entry := fhirjson.Value{Kind: fhirjson.Object}
	var v *store.Version
	switch {
	case e.write != nil:
		v = &e.write.New
	case e.existing != nil:
		v = e.existing
	}
	if v != nil {
		resp.Set("etag", fhirjson.Str(etag(v.VID)))
		resp.Set("lastModified", fhirjson.Str(fhir.FormatInstant(v.LastUpdated)))
		if !v.Deleted {
			resp.Set("location", fhirjson.Str(v.Type+"/"+v.ID+"/_history/"+itoa(v.VID)))
			entry.Set("fullUrl", fhirjson.Str(s.base(c)+"/"+v.Type+"/"+v.ID))
			if prefer(c, "return") == "representation" {
				entry.Set("resource", fhirjson.RawJSON(v.Body))
			}
		}
	}
	if e.body != nil {
		if et := e.hdr.Get("ETag"); et != "" {
			resp.Set("etag", fhirjson.Str(et))
		}
		if len(e.body) > 0 && e.body[0] == '{' {
			if e.status >= 400 {
				resp.Set("outcome", fhirjson.RawJSON(e.body))
			} else {
				entry.Set("resource", fhirjson.RawJSON(e.body))
			}
		}
		if loc := e.hdr.Get("Location"); loc != "" {
			resp.Set("location", fhirjson.Str(strings.TrimPrefix(loc, s.base(c)+"/")))
		}
	}
	entry.Set("response", resp)
	return entry
}

func statusLine(code int) string {
	return strconv.Itoa(code) + " " + http.StatusText(code)
}

// batch processes entries one by one, each as its own interaction; a
// failing entry answers with its OperationOutcome and the others go on.
func (s *Server) batch(c *fiber.Ctx, entries []*txEntry) error {
	b := newBundle("batch-response")
	var rw rewrites
	for _, e := range entries {
		// An entry's conditional references resolve before it runs, each
		// entry on its own: one that matches nothing fails that entry.
		if err := s.batchReferences(c, e, &rw); err != nil {
			status, issues, _ := statusOf(txError(e, err))
			e.status, e.hdr, e.body = status, http.Header{}, fhir.OperationOutcome(issues...)
		} else {
			e.status, e.hdr, e.body = s.dispatchWithin(c, e)
		}
		b.add(s.responseEntry(c, e))
	}
	return s.sendBundle(c, fiber.StatusOK, b)
}

// batchReferences resolves the conditional references of a batch entry
// that writes a resource; the entry runs with the literal references.
func (s *Server) batchReferences(c *fiber.Ctx, e *txEntry, rw *rewrites) error {
	if (e.method != "POST" && e.method != "PUT") || e.resVal == nil {
		return nil
	}
	if overBudget(c.UserContext()) {
		return nil // dispatchWithin answers too-costly
	}
	return s.newRefResolver(c, nil, nil, rw).rewrite(e.resVal)
}

// dispatchWithin dispatches e unless the batch's time budget is spent:
// then e is answered too-costly, not run (the entries before it keep their
// answers, and what they wrote stays written).
func (s *Server) dispatchWithin(c *fiber.Ctx, e *txEntry) (int, http.Header, []byte) {
	if overBudget(c.UserContext()) {
		he := s.errTooCostly()
		return he.status, http.Header{}, fhir.OperationOutcome(he.issue)
	}
	return s.dispatch(c, e)
}

// dispatch runs one entry as an in-process request through the whole
// stack (authentication, policy, metrics), with the caller's credentials.
func (s *Server) dispatch(c *fiber.Ctx, e *txEntry) (int, http.Header, []byte) {
	var req fasthttp.Request
	req.Header.SetMethod(e.method)
	u := e.url
	if abs, ok := strings.CutPrefix(u, s.base(c)+"/"); ok {
		u = abs
	}
	req.SetRequestURI("/fhir/" + u)
	req.Header.SetHost(string(c.Request().Host()))
	req.Header.Set(fiber.HeaderAuthorization, c.Get(fiber.HeaderAuthorization))
	req.Header.Set(fiber.HeaderAccept, mimeFHIRJSON)
	req.Header.Set(HeaderRequestID, RequestID(c.UserContext())) // the entry logs under its batch's id
	for _, h := range []string{"Prefer", HeaderBreakGlass} {
		if v := c.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	for name, val := range map[string]string{fiber.HeaderIfMatch: e.ifMatch, fiber.HeaderIfNoneMatch: e.ifNoneMatch,
		"If-None-Exist": e.ifNoneExist, fiber.HeaderIfModifiedSince: e.ifModifiedSince} {
		if val != "" {
			req.Header.Set(name, val)
		}
	}
	if e.res != nil {
		if e.method == "PATCH" && e.res.Type == "Binary" {
			raw, err := base64.StdEncoding.DecodeString(e.resVal.GetString("data"))
			if err != nil {
				return fiber.StatusBadRequest, http.Header{}, fhir.OperationOutcome(issue("error", "invalid", "the patch Binary has invalid base64 data"))
			}
			req.SetBody(raw)
			req.Header.SetContentType(e.resVal.GetString("contentType"))
		} else {
			req.SetBody(fhirjson.Canonical(e.resVal))
			req.Header.SetContentType(mimeFHIRJSON)
		}
	}
	var fctx fasthttp.RequestCtx
	fctx.Init(&req, c.Context().RemoteAddr(), nil)
	// The entry's own budget ends no later than the batch's.
	fctx.SetUserValue(budgetKey{}, c.UserContext())
	s.app.Handler()(&fctx)
	res := &fctx.Response
	hdr := http.Header{}
	for _, name := range []string{"Location", "ETag", "Last-Modified", "Content-Location"} {
		if v := res.Header.Peek(name); len(v) > 0 {
			hdr.Set(name, string(v))
		}
	}
	return res.StatusCode(), hdr, append([]byte{}, res.Body()...)
}

// maxPatchGrowth bounds how much one JSON Patch may add to a resource
// (docs/limits.md): copy operations can double a document each, and a
// larger change is a PUT, which the body limit bounds.
const maxPatchGrowth = 1 << 20

// patched applies a JSON Patch to a stored version and validates the
// result (422 when the patch leaves an invalid resource), the result held
// to the server's body limit.
func (s *Server) patched(cur store.Version, ops *fhirjson.Value) (*fhir.Resource, error) {
	return patchedWithin(cur, ops, s.cfg.BodyLimit)
}

func patchedWithin(cur store.Version, ops *fhirjson.Value, bodyLimit int) (*fhir.Resource, error) {
	doc, err := fhirjson.Parse(cur.Body, fhir.Limits)
	if err != nil {
		return nil, err
	}
	lim := fhirjson.PatchLimits{MaxOps: fhirjson.DefaultPatchOps, MaxSize: bodyLimit, MaxGrowth: maxPatchGrowth}
	if err := fhirjson.ApplyPatch(&doc, ops, lim); err != nil {
		var pe *fhirjson.PatchError
		switch {
		case errors.As(err, &pe) && pe.TooLarge && pe.Bad:
			return nil, errorf(fiber.StatusBadRequest, "too-costly", err.Error())
		case errors.As(err, &pe) && pe.TooLarge:
			return nil, errorf(fiber.StatusUnprocessableEntity, "too-long", err.Error())
		case errors.As(err, &pe) && pe.Bad:
			return nil, errorf(fiber.StatusBadRequest, "invalid", err.Error())
		}
		return nil, errorf(fiber.StatusUnprocessableEntity, "processing", err.Error())
	}
	if doc.GetString("resourceType") != cur.Type || doc.GetString("id") != cur.ID {
		return nil, errorf(fiber.StatusUnprocessableEntity, "business-rule", "a patch may not change the resource type or id")
	}
	body := fhirjson.Canonical(&doc)
	if len(body) > bodyLimit {
		return nil, errorf(fiber.StatusUnprocessableEntity, "too-long",
			"the patched resource would exceed "+strconv.Itoa(bodyLimit)+" bytes (the request body limit)")
	}
	res, err := fhir.Parse(body)
	if err != nil {
		var fe *fhir.Error
		if errors.As(err, &fe) {
			return nil, &fhir.Error{Kind: fhir.ErrBusinessRule, Issues: fe.Issues}
		}
		return nil, err
	}
	return res, nil
}
