package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client talks to the gateway's REST API.
type client struct {
	base  string // FHIR base, no trailing slash
	token string
	hc    *http.Client
	gzip  atomic.Bool
	pool  sync.Pool // *gzip.Writer
	// retries of an unavailable gateway, and the first wait.
	retries int
	backoff time.Duration
}

// errUnauthorized ends an import: no request will pass.
var errUnauthorized = errors.New("the gateway refused the token")

// isLoopback says whether base names this machine: there compressing
// bodies costs more CPU than it saves.
func isLoopback(base string) bool {
	u, err := url.Parse(base)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// response is a gateway's answer.
type response struct {
	status int
	body   []byte
}

// post sends a Bundle to the base, retrying while the gateway is
// unavailable (network errors, 429, 502, 503, 504: every request the
// import sends is idempotent, so a retry cannot store anything twice).
func (c *client) post(ctx context.Context, body []byte) (response, error) {
	return c.do(ctx, http.MethodPost, c.base, body)
}

func (c *client) get(ctx context.Context, path string) (response, error) {
	return c.do(ctx, http.MethodGet, c.base+"/"+path, nil)
}

func (c *client) do(ctx context.Context, method, u string, body []byte) (response, error) {
	wait := c.backoff
	for attempt := 0; ; attempt++ {
		res, err := c.once(ctx, method, u, body)
		retry := err != nil || res.status == 429 || res.status == 502 || res.status == 503 || res.status == 504
		if !retry || attempt >= c.retries || ctx.Err() != nil {
			if err == nil && res.status == http.StatusUnauthorized {
				return res, fmt.Errorf("%w: %s", errUnauthorized, diagnostics(res.body))
			}
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

func (c *client) once(ctx context.Context, method, u string, body []byte) (response, error) {
	zipped := body != nil && c.gzip.Load()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
		if zipped {
			rd = bytes.NewReader(c.compress(body))
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
		if zipped {
			req.Header.Set("Content-Encoding", "gzip")
		}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	if zipped && res.StatusCode == http.StatusUnsupportedMediaType && !strings.Contains(strings.ToLower(res.Header.Get("Accept-Encoding")), "gzip") {
		// The gateway does not take gzip: send plain from now on.
		c.gzip.Store(false)
		return c.once(ctx, method, u, body)
	}
	return response{status: res.StatusCode, body: b}, nil
}

func (c *client) compress(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b) / 4)
	zw, _ := c.pool.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	} else {
		zw.Reset(&buf)
	}
	zw.Write(b)
	zw.Close()
	c.pool.Put(zw)
	return buf.Bytes()
}

// outcome is the part of an OperationOutcome the import reports.
type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
	} `json:"issue"`
}

func parseOutcome(b []byte) outcome {
	var o outcome
	json.Unmarshal(b, &o)
	return o
}

// first is the first error issue: code, diagnostics, expression.
func (o outcome) first() (code, diag string, expr []string) {
	for _, is := range o.Issue {
		if is.Severity == "error" || is.Severity == "fatal" {
			return is.Code, is.Diagnostics, is.Expression
		}
	}
	if len(o.Issue) > 0 {
		return o.Issue[0].Code, o.Issue[0].Diagnostics, o.Issue[0].Expression
	}
	return "", "", nil
}

func diagnostics(b []byte) string {
	if _, d, _ := parseOutcome(b).first(); d != "" {
		return d
	}
	return strings.TrimSpace(truncate(string(b), 200))
}

var entryRE = regexp.MustCompile(`^Bundle\.entry\[(\d+)\]`)

// entryOf is the entry a transaction's refusal names (-1: none).
func (o outcome) entryOf() int {
	_, _, expr := o.first()
	for _, e := range expr {
		if m := entryRE.FindStringSubmatch(e); m != nil {
			i, _ := strconv.Atoi(m[1])
			return i
		}
	}
	return -1
}

// bundleResponse is a transaction- or batch-response.
type bundleResponse struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Response struct {
			Status  string          `json:"status"`
			Outcome json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func statusCode(s string) int {
	code, _, _ := strings.Cut(s, " ")
	n, _ := strconv.Atoi(code)
	return n
}

// bundleOf writes a transaction or batch of PUTs.
func bundleOf(typ string, items []item) []byte {
	n := 64
	for _, it := range items {
		n += len(it.raw) + len(it.typ) + len(it.id) + 64
	}
	b := make([]byte, 0, n)
	b = append(b, `{"resourceType":"Bundle","type":"`...)
	b = append(b, typ...)
	b = append(b, `","entry":[`...)
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"request":{"method":"PUT","url":"`...)
		b = append(b, it.typ...)
		b = append(b, '/')
		b = append(b, it.id...)
		b = append(b, `"},"resource":`...)
		b = append(b, it.raw...)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
