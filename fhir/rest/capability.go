package rest

import (
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/fhir/fhirjson"
	"github.com/fhirgate/fhirgate/fhir/search"
)

// capabilities serves the CapabilityStatement: exactly what this server
// implements (http.html#capabilities).
func (s *Server) capabilities(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, s.contentType(c))
	base := s.base(c)
	if b, ok := s.capCache.Load(base); ok {
		return c.Send(b.([]byte))
	}
	b := fhirjson.Canonical(s.capabilityStatement(c))
	s.capCache.Store(strings.Clone(base), b)
	return c.Send(b)
}

var (
	str   = fhirjson.Str
	kv    = fhirjson.KV
	true_ = fhirjson.Value{Kind: fhirjson.Bool, Str: "true"}
)

func codes(names ...string) fhirjson.Value {
	a := fhirjson.Arr()
	for _, n := range names {
		a.Items = append(a.Items, fhirjson.Obj(kv("code", str(n))))
	}
	return a
}

// resourceCapabilities are the per-type entries; they depend only on the
// compiled-in tables, so they are built once.
var resourceCapabilities = sync.OnceValue(func() fhirjson.Value {
	var resources []fhirjson.Value
	for _, t := range fhir.ResourceTypes() {
		r := fhirjson.Obj(
			kv("type", str(t)),
			kv("interaction", codes("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type")),
			kv("versioning", str("versioned-update")),
			kv("readHistory", true_),
			kv("updateCreate", true_),
			kv("conditionalCreate", true_),
			kv("conditionalRead", str("full-support")),
			kv("conditionalUpdate", true_),
			kv("conditionalDelete", str("single")),
			kv("referencePolicy", fhirjson.Arr(str("literal"), str("logical"))),
		)
		if t == "AuditEvent" { // recorded (create), never changed (auditrepo.go)
			r = fhirjson.Obj(
				kv("type", str(t)),
				kv("interaction", codes("read", "vread", "history-instance", "history-type", "create", "search-type")),
				kv("versioning", str("versioned")),
				kv("readHistory", true_),
				kv("conditionalRead", str("full-support")),
				kv("referencePolicy", fhirjson.Arr(str("literal"), str("logical"))),
			)
		}
		var params, includes, revs []fhirjson.Value
		for _, p := range search.Params(t) {
			if search.Indexed(t, p.Code) != nil && p.Code != "_id" {
				continue // listed only when it can be searched
			}
			params = append(params, fhirjson.Obj(kv("name", str(p.Code)), kv("definition", str(p.URL)), kv("type", str(p.Type.String()))))
			if p.Type == search.TypeReference {
				includes = append(includes, str(t+":"+p.Code))
			}
		}
		for _, other := range fhir.ResourceTypes() {
			for _, p := range search.Params(other) {
				if p.Type == search.TypeReference && targets(p.Targets, t) && search.Indexed(other, p.Code) == nil {
					revs = append(revs, str(other+":"+p.Code))
				}
			}
		}
		if len(params) > 0 {
			r.Set("searchParam", fhirjson.Arr(params...))
		}
		if len(includes) > 0 {
			r.Set("searchInclude", fhirjson.Arr(includes...))
		}
		if len(revs) > 0 {
			r.Set("searchRevInclude", fhirjson.Arr(revs...))
		}
		if t == "Patient" {
			r.Set("operation", fhirjson.Arr(fhirjson.Obj(kv("name", str("everything")),
				kv("definition", str("http://hl7.org/fhir/OperationDefinition/Patient-everything")))))
		}
		resources = append(resources, r)
	}
	return fhirjson.Arr(resources...)
})

func targets(ts []string, t string) bool {
	for _, x := range ts {
		if x == t || x == "Any" {
			return true
		}
	}
	return false
}

func (s *Server) capabilityStatement(c *fiber.Ctx) *fhirjson.Value {
	rest := fhirjson.Obj(
		kv("mode", str("server")),
		kv("security", fhirjson.Obj(
			// SMART's oauth-uris: where clients that read the
			// CapabilityStatement rather than .well-known (fhirclient
			// falls back to it) find the token endpoint.
			kv("extension", fhirjson.Arr(fhirjson.Obj(
				kv("url", str("http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris")),
				kv("extension", fhirjson.Arr(fhirjson.Obj(kv("url", str("token")), kv("valueUri", str(s.tokenURL(c)))))),
			))),
			kv("service", fhirjson.Arr(fhirjson.Obj(kv("coding", fhirjson.Arr(fhirjson.Obj(
				kv("system", str("http://terminology.hl7.org/CodeSystem/restful-security-service")),
				kv("code", str("SMART-on-FHIR")),
				kv("display", str("SMART-on-FHIR")))),
			)))),
			kv("description", str(s.securityDescription())),
		)),
		kv("resource", s.resourceCapabilities()),
		kv("interaction", codes("transaction", "batch", "history-system")),
		kv("searchParam", fhirjson.Arr(
			fhirjson.Obj(kv("name", str("_count")), kv("type", str("number"))),
			fhirjson.Obj(kv("name", str("_sort")), kv("type", str("string"))),
			fhirjson.Obj(kv("name", str("_total")), kv("type", str("token"))),
			fhirjson.Obj(kv("name", str("_summary")), kv("type", str("token"))),
			fhirjson.Obj(kv("name", str("_elements")), kv("type", str("string"))),
			fhirjson.Obj(kv("name", str("_include")), kv("type", str("string"))),
			fhirjson.Obj(kv("name", str("_revinclude")), kv("type", str("string"))),
		)),
	)
	if s.cfg.Export != nil {
		rest.Set("operation", fhirjson.Arr(fhirjson.Obj(kv("name", str("export")), kv("definition", str(bulkDataIG+"/OperationDefinition/export")))))
	}
	cs := fhirjson.Obj(
		kv("resourceType", str("CapabilityStatement")),
		kv("status", str("active")),
		kv("date", str("2026-11-21")),
		kv("kind", str("instance")),
		kv("software", fhirjson.Obj(kv("name", str("fhirgate")))),
		kv("implementation", fhirjson.Obj(kv("description", str("fhirgate FHIR R4 gateway")), kv("url", str(s.base(c))))),
		kv("fhirVersion", str("4.0.1")),
		kv("format", fhirjson.Arr(str("application/fhir+json"), str("json"))),
		kv("patchFormat", fhirjson.Arr(str("application/json-patch+json"))),
		kv("rest", fhirjson.Arr(rest)),
	)
	if s.cfg.Export != nil {
		cs.Set("instantiates", fhirjson.Arr(str(bulkDataIG+"/CapabilityStatement/bulk-data")))
	}
	return &cs
}

// bulkDataIG is the canonical base of the Bulk Data Access IG, whose
// export operations the server offers when it has an exporter.
const bulkDataIG = "http://hl7.org/fhir/uv/bulkdata"

// resourceCapabilities are the per-type entries, with the Bulk Data
// export operations of Patient and Group when the exporter is configured.
func (s *Server) resourceCapabilities() fhirjson.Value {
	all := resourceCapabilities()
	if s.cfg.Export == nil {
		return all
	}
	all = all.Clone()
	for i := range all.Items {
		r := &all.Items[i]
		def := ""
		switch r.GetString("type") {
		case "Patient":
			def = "patient-export"
		case "Group":
			def = "group-export"
		default:
			continue
		}
		op := fhirjson.Obj(kv("name", str("export")), kv("definition", str(bulkDataIG+"/OperationDefinition/"+def)))
		if ops := r.Get("operation"); ops != nil {
			ops.Items = append(ops.Items, op)
		} else {
			r.Set("operation", fhirjson.Arr(op))
		}
	}
	return all
}

func (s *Server) securityDescription() string {
	d := "OAuth2 bearer tokens with SMART v2 scopes (system/Type.cruds); v1 scopes (read/write) are accepted. " +
		"Discovery: [base]/.well-known/smart-configuration."
	if s.cfg.SMART != nil {
		d += " EHR systems: SMART Backend Services (client_credentials with a private_key_jwt assertion) at the token endpoint."
	} else {
		d += " SMART Backend Services are not offered (no client registry)."
	}
	if s.cfg.SIWE != nil {
		d += " People: Sign-In With Ethereum (EIP-4361) at /auth/siwe (see sign_in_with_ethereum in the discovery document)."
	}
	return d
}
