package rest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkWrite: a create and an update of the same Patient-sized body
// through the whole handler stack (token, decision, validation, index,
// synced commit, durable AuditEvent), one request at a time. For CPU
// profiles of the write path (-cpuprofile); the load figures are
// fhirbench's.
func BenchmarkWrite(b *testing.B) {
	body := func(id string, i int) []byte {
		idf := ""
		if id != "" {
			idf = `"id":"` + id + `",`
		}
		return []byte(fmt.Sprintf(`{"resourceType":"Patient",%s"identifier":[{"system":"urn:example:mrn","value":"MRN-%d"}],"active":true,"name":[{"family":"Rivera","given":["Alex","J"]}],"telecom":[{"system":"phone","value":"+44 117 496 %04d"},{"system":"email","value":"alex%d@example.org"}],"gender":"female","birthDate":"1986-04-12","address":[{"line":["12 Harbour Street"],"city":"Bristol","postalCode":"BS1 4DJ","country":"UK"}]}`, idf, i, i%10000, i))
	}
	b.Run("create", func(b *testing.B) {
		s, tok := newAuditedServer(b, 0)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if res := serve(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, body("", i)); res.StatusCode() != 201 {
				b.Fatalf("%d %s", res.StatusCode(), res.Body())
			}
		}
	})
	b.Run("update", func(b *testing.B) {
		s, tok := newAuditedServer(b, 0)
		res := serve(s, "POST", "/fhir/Patient", mimeFHIRJSON, tok, body("", 0))
		loc := string(res.Header.Peek(fasthttp.HeaderLocation))
		id := strings.Split(strings.TrimPrefix(loc, "http://test/fhir/Patient/"), "/")[0]
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if res := serve(s, "PUT", "/fhir/Patient/"+id, mimeFHIRJSON, tok, body(id, i)); res.StatusCode() != 200 {
				b.Fatalf("%d %s", res.StatusCode(), res.Body())
			}
		}
	})
}
