package rest

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// Allocation budgets of the read path (issue 18): machine-independent
// guards that a change adding per-request garbage to an audited read
// fails here, not weeks later in a benchmark. The budgets are the counts
// measured when they were set plus a little room; lower them when the
// path gets cheaper.

// readAllocs runs one audited read of a Patient through the whole handler
// stack (token verification, the decision, the store, the AuditEvent
// durable before the answer) and returns the allocations per request.
func readAllocs(t *testing.T, accept string) float64 {
	s, tok := newAuditedServer(t, 0)
	res := serve(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, []byte(`{"resourceType":"Patient","name":[{"family":"Budget","given":["Alloc"]}],"birthDate":"1970-01-01"}`))
	if res.StatusCode() != 201 {
		t.Fatalf("create: %d %s", res.StatusCode(), res.Body())
	}
	loc := string(res.Header.Peek("Location"))
	var req fasthttp.Request
	req.Header.SetMethod("GET")
	req.SetRequestURI(loc[len("http://test") : len(loc)-len("/_history/1")])
	req.Header.SetHost("test")
	req.Header.Set("Authorization", "Bearer "+tok)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	var ctx fasthttp.RequestCtx
	h := s.app.Handler()
	one := func() {
		ctx.Init(&req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("read: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for range 50 { // warm the token cache, the store's caches, the pools
		one()
	}
	return testing.AllocsPerRun(300, one)
}

func TestReadAllocationBudget(t *testing.T) {
	for _, tc := range []struct {
		name, accept string
		budget       float64
	}{
		{"no Accept", "", 52},
		{"Accept fhir+json", "application/fhir+json", 52},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := readAllocs(t, tc.accept)
			t.Logf("an audited read allocates %.0f times (budget %.0f)", n, tc.budget)
			if n > tc.budget {
				t.Errorf("an audited read allocates %.0f times, budget %.0f", n, tc.budget)
			}
		})
	}
}
