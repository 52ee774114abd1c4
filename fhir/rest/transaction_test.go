package rest

import (
	"fmt"
	"strings"
	"testing"
)

// TestTransactionCap: a transaction holds 1,000 entries, or one per 512
// bytes of its body, up to 10,000; one past its cap is refused whole,
// before anything is validated or stored.
func TestTransactionCap(t *testing.T) {
	for _, tt := range []struct{ size, want int }{
		{0, 1000}, {200 << 10, 1000}, {512 * 1000, 1000}, {1 << 20, 2048}, {3 << 20, 6144}, {5 << 20, 10000}, {16 << 20, 10000},
	} {
		if got := transactionCap(tt.size); got != tt.want {
			t.Errorf("transactionCap(%d) = %d, want %d", tt.size, got, tt.want)
		}
	}
	s, tok := newTestServer(t)
	bundleOf := func(n, pad int) []byte {
		var b strings.Builder
		b.WriteString(`{"resourceType":"Bundle","type":"transaction","entry":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"resource":{"resourceType":"Basic","code":{"text":"t%05d%s"}},"request":{"method":"POST","url":"Basic"}}`, i, strings.Repeat("x", pad))
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	for _, tt := range []struct {
		name   string
		body   []byte
		status int
	}{
		{"1,001 small entries", bundleOf(1001, 0), 400},
		{"1,200 entries of 600 bytes", bundleOf(1200, 500), 200},
		{"2,500 small entries in 1 MB", bundleOf(2500, 300), 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := serve(s, "POST", "/fhir", mimeFHIRJSON, tok, tt.body)
			if res.StatusCode() != tt.status {
				t.Fatalf("%d KB: HTTP %d %.300s, want %d", len(tt.body)>>10, res.StatusCode(), res.Body(), tt.status)
			}
			if tt.status == 400 && !strings.Contains(string(res.Body()), "too-costly") {
				t.Errorf("%s", res.Body())
			}
		})
	}
}
