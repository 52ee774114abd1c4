package rest

import (
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/store"
)

// bundle builds a response Bundle; stored resource bytes are spliced in
// verbatim, never re-marshalled.
type bundle struct {
	typ     string
	total   int // -1: omitted
	links   []fhirjson.Value
	entries []fhirjson.Value
}

func newBundle(typ string) *bundle { return &bundle{typ: typ, total: -1} }

func (b *bundle) link(rel, url string) {
	b.links = append(b.links, fhirjson.Obj(fhirjson.KV("relation", fhirjson.Str(rel)), fhirjson.KV("url", fhirjson.Str(url))))
}

func (b *bundle) add(e fhirjson.Value) { b.entries = append(b.entries, e) }

func (b *bundle) value(now string) *fhirjson.Value {
	v := fhirjson.Obj(
		fhirjson.KV("resourceType", fhirjson.Str("Bundle")),
		fhirjson.KV("id", fhirjson.Str(uuid.NewString())),
		fhirjson.KV("meta", fhirjson.Obj(fhirjson.KV("lastUpdated", fhirjson.Str(now)))),
		fhirjson.KV("type", fhirjson.Str(b.typ)),
	)
	if b.total >= 0 {
		v.Set("total", fhirjson.Int(b.total))
	}
	if len(b.links) > 0 {
		v.Set("link", fhirjson.Arr(b.links...))
	}
	if len(b.entries) > 0 {
		v.Set("entry", fhirjson.Arr(b.entries...))
	}
	return &v
}

func (s *Server) sendBundle(c *fiber.Ctx, status int, b *bundle) error {
	c.Set(fiber.HeaderContentType, s.contentType(c))
	// Encode into the response's body buffer, which fasthttp pools across
	// requests: a search result splices kilobytes of stored resources, and
	// a fresh buffer for each was a seventh of a search's allocations.
	resp := c.Response()
	buf := resp.SwapBody(nil)
	resp.SwapBody(fhirjson.AppendCanonical(buf[:0], b.value(fhir.FormatInstant(s.clock()))))
	c.Status(status)
	return nil
}

// historyEntry is one version in a history bundle (http.html#history):
// the resource (absent for deletes), the request that made it and the
// response it got.
func (s *Server) historyEntry(c *fiber.Ctx, v *store.Version) fhirjson.Value {
	base := s.base(c)
	e := fhirjson.Obj(fhirjson.KV("fullUrl", fhirjson.Str(base+"/"+v.Type+"/"+v.ID)))
	url := v.Type + "/" + v.ID
	status := "200 OK"
	switch {
	case v.Method == store.MethodCreate:
		url, status = v.Type, "201 Created"
	case v.Method == store.MethodDelete:
		status = "204 No Content"
	case v.VID == 1:
		status = "201 Created"
	}
	e.Set("request", fhirjson.Obj(fhirjson.KV("method", fhirjson.Str(v.Method.HTTP())), fhirjson.KV("url", fhirjson.Str(url))))
	e.Set("response", fhirjson.Obj(
		fhirjson.KV("status", fhirjson.Str(status)),
		fhirjson.KV("etag", fhirjson.Str(etag(v.VID))),
		fhirjson.KV("lastModified", fhirjson.Str(fhir.FormatInstant(v.LastUpdated))),
	))
	if !v.Deleted {
		e.Set("resource", fhirjson.RawJSON(v.Body))
	}
	return e
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
