package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/fhirgate/fhirgate/fhir"
)

// JSON files hold a Bundle or one resource:
//
//   - transaction and batch Bundles are sent as they are, one request per
//     file (a transaction stays all or nothing), except that a POST entry
//     without ifNoneExist becomes a PUT of a fixed id (the resource's id,
//     else the uuid of its urn:uuid fullUrl, else a hash of the resource),
//     so that a rerun does not create the resources again; references to
//     the entry's fullUrl are still rewritten by the gateway;
//   - collection, searchset and history Bundles are unpacked: their
//     resources are stored as NDJSON lines are (PUT Type/id, several to a
//     transaction), references to another entry's fullUrl rewritten to
//     Type/id first;
//   - document and message Bundles, and any other resource, are stored
//     as one resource.

type bundleHead struct {
	ResourceType string            `json:"resourceType"`
	Type         string            `json:"type"`
	Entry        []json.RawMessage `json:"entry"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *struct {
		Method      string `json:"method"`
		URL         string `json:"url"`
		IfNoneExist string `json:"ifNoneExist"`
	} `json:"request"`
}

type resourceHead struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

// readJSON turns a JSON file into chunks.
func readJSON(src *source, url string, size int, out chan<- *chunk, stop <-chan struct{}) error {
	r, err := src.open()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", src.name, err)
	}
	emit := func(ch *chunk) bool {
		if ch == nil {
			return true
		}
		select {
		case out <- ch:
			return true
		case <-stop:
			return false
		}
	}
	whole := func() *chunk { // the file as one resource
		c := &chunker{src: src, url: url, size: 1, label: func(int) string { return "" }}
		c.add(b)
		return c.finish()
	}
	var head bundleHead
	if json.Unmarshal(b, &head) != nil || head.ResourceType != "Bundle" {
		emit(whole())
		return nil
	}
	switch head.Type {
	case "transaction", "batch":
		emit(sendAsIs(src, url, b, &head))
	case "document", "message":
		emit(whole())
	case "transaction-response", "batch-response":
		ch := &chunk{src: src, key: stateKey{url: url, file: src.path, n: 1, sum: sumOf(b)}}
		ch.errs = []lineError{{typ: "Bundle", msg: "a " + head.Type + " holds answers, not resources to import"}}
		emit(ch)
	default:
		unpack(src, url, size, b, &head, emit)
	}
	return nil
}

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:12])
}

// sendAsIs prepares a transaction or batch Bundle file, its POSTs made
// idempotent.
func sendAsIs(src *source, url string, b []byte, head *bundleHead) *chunk {
	ch := &chunk{src: src, bundleTyp: head.Type, key: stateKey{url: url, file: src.path, n: len(head.Entry), sum: sumOf(b)}}
	entries := make([]json.RawMessage, len(head.Entry))
	for i, raw := range head.Entry {
		entries[i] = raw
		var e bundleEntry
		var rh resourceHead
		if json.Unmarshal(raw, &e) != nil || e.Request == nil || len(e.Resource) == 0 || json.Unmarshal(e.Resource, &rh) != nil {
			ch.items = append(ch.items, item{at: entryAt(i)})
			continue // the gateway says what is wrong with it
		}
		it := item{at: entryAt(i), typ: rh.ResourceType, id: rh.ID, cond: e.Request.IfNoneExist != ""}
		path, _, _ := strings.Cut(strings.TrimPrefix(e.Request.URL, "/"), "?")
		if e.Request.Method == "POST" && e.Request.IfNoneExist == "" && path == rh.ResourceType {
			res := e.Resource
			switch uuid, isUUID := strings.CutPrefix(e.FullURL, "urn:uuid:"); {
			case rh.ID != "":
			case isUUID && fhir.ValidID(uuid):
				it.id = uuid
			default:
				it.id = derivedID(e.Resource)
			}
			if fhir.ValidID(it.id) {
				if rh.ID == "" {
					res = withID(bytes.TrimSpace(e.Resource), it.id)
				}
				var m map[string]json.RawMessage
				json.Unmarshal(raw, &m)
				var req map[string]json.RawMessage
				json.Unmarshal(m["request"], &req)
				req["method"], _ = json.Marshal("PUT")
				req["url"], _ = json.Marshal(rh.ResourceType + "/" + it.id)
				m["request"], _ = json.Marshal(req)
				m["resource"] = res
				entries[i], _ = json.Marshal(m)
			}
		}
		ch.items = append(ch.items, it)
	}
	var m map[string]json.RawMessage
	json.Unmarshal(b, &m)
	m["entry"], _ = json.Marshal(entries)
	ch.body, _ = json.Marshal(m)
	return ch
}

func entryAt(i int) string { return fmt.Sprintf("entry[%d]", i) }

// referenceRE finds the references of a resource (and their values).
var referenceRE = regexp.MustCompile(`"reference"\s*:\s*"([^"\\]*)"`)

// unpack stores a collection's resources, references between its entries
// (by fullUrl) rewritten to Type/id.
func unpack(src *source, url string, size int, b []byte, head *bundleHead, emit func(*chunk) bool) {
	type res struct {
		at  int
		raw []byte
	}
	var list []res
	names := map[string]string{} // fullUrl -> Type/id
	for i, raw := range head.Entry {
		var e bundleEntry
		if json.Unmarshal(raw, &e) != nil || len(e.Resource) == 0 {
			continue
		}
		r := bytes.TrimSpace(e.Resource)
		var rh resourceHead
		if json.Unmarshal(r, &rh) == nil && rh.ResourceType != "" && e.FullURL != "" {
			id := rh.ID
			if id == "" {
				if uuid, ok := strings.CutPrefix(e.FullURL, "urn:uuid:"); ok && fhir.ValidID(uuid) {
					id = uuid
				} else {
					id = derivedID(r)
				}
				r = withID(r, id)
			}
			names[e.FullURL] = rh.ResourceType + "/" + id
		}
		list = append(list, res{i, r})
	}
	c := &chunker{src: src, url: url, size: size, label: func(line int) string { return entryAt(line - 1) }}
	for _, r := range list {
		raw := r.raw
		if len(names) > 0 {
			raw = referenceRE.ReplaceAllFunc(raw, func(m []byte) []byte {
				v := referenceRE.FindSubmatch(m)[1]
				if to, ok := names[string(v)]; ok {
					return []byte(`"reference":"` + to + `"`)
				}
				return m
			})
		}
		// The chunker counts lines: entry i is its line i+1.
		for c.line < r.at {
			c.add(nil)
		}
		full := c.add(raw)
		if !emit(full) {
			return
		}
	}
	emit(c.finish())
}
