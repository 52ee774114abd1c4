package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
)

// maxIDsPerSearch is what one _id search may name (docs/limits.md: 100
// values of one parameter).
const maxIDsPerSearch = 100

// dropUnchanged returns the items the gateway does not hold with the same
// content, counting the others unchanged. Used for a chunk that an
// interrupted run left in flight (its transaction may have been stored):
// without it the rerun would store a second version of each resource. A
// search that fails keeps its items (they are sent: PUT is idempotent).
func (im *importer) dropUnchanged(ctx context.Context, items []item) []item {
	byType := map[string][]int{}
	var order []string
	for i, it := range items {
		if _, ok := byType[it.typ]; !ok {
			order = append(order, it.typ)
		}
		byType[it.typ] = append(byType[it.typ], i)
	}
	same := make([]bool, len(items))
	for _, typ := range order {
		idx := byType[typ]
		for lo := 0; lo < len(idx); lo += maxIDsPerSearch {
			part := idx[lo:min(lo+maxIDsPerSearch, len(idx))]
			ids := make([]string, len(part))
			for k, i := range part {
				ids[k] = items[i].id
			}
			stored := im.stored(ctx, typ, ids)
			for _, i := range part {
				if b, ok := stored[items[i].id]; ok && sameContent(b, items[i].raw) {
					same[i] = true
				}
			}
		}
	}
	var out []item
	for i, it := range items {
		if same[i] {
			im.rep.add(&im.rep.sum.unchanged, 1)
		} else {
			out = append(out, it)
		}
	}
	return out
}

// stored returns the current bodies of typ's ids that the token may read.
func (im *importer) stored(ctx context.Context, typ string, ids []string) map[string]json.RawMessage {
	q := url.Values{"_id": {strings.Join(ids, ",")}, "_count": {"1000"}}
	res, err := im.cl.get(ctx, typ+"?"+q.Encode())
	if err != nil || res.status != 200 {
		return nil
	}
	var page struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if json.Unmarshal(res.body, &page) != nil {
		return nil
	}
	out := map[string]json.RawMessage{}
	for _, e := range page.Entry {
		var h resourceHead
		if json.Unmarshal(e.Resource, &h) == nil && h.ResourceType == typ {
			out[h.ID] = e.Resource
		}
	}
	return out
}

// sameContent compares two resources as JSON values, leaving out what the
// gateway stamps on every version (meta.versionId, meta.lastUpdated).
func sameContent(a, b []byte) bool {
	va, ok1 := decodeUnstamped(a)
	vb, ok2 := decodeUnstamped(b)
	return ok1 && ok2 && reflect.DeepEqual(va, vb)
}

func decodeUnstamped(b []byte) (map[string]any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber() // decimals compare as written
	var m map[string]any
	if d.Decode(&m) != nil {
		return nil, false
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
		if len(meta) == 0 {
			delete(m, "meta")
		}
	}
	return m, true
}
