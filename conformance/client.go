// Package conformance is a black-box test suite of the FHIR R4 RESTful
// API rules fhirgate implements. It runs against any server:
//
//	go test ./conformance -args -base-url http://127.0.0.1:8080/fhir -token "$(gateway token --scope 'system/*.cruds')"
//
// and, without -base-url, against an in-process gateway. Each check names
// the section of the specification it enforces.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client talks to a FHIR server.
type Client struct {
	Base  string // FHIR base URL without a trailing slash
	Token string
	HTTP  *http.Client
}

// NewClient returns a client for base with bearer token tok.
func NewClient(base, tok string) *Client {
	return &Client{Base: strings.TrimSuffix(base, "/"), Token: tok, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Response is a decoded HTTP response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map (nil if it is not a JSON object).
func (r *Response) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

// Do sends a request. path is relative to the base ("Patient/1") or, when
// it starts with http, absolute. Headers are given as name, value pairs.
func (c *Client) Do(method, path string, body []byte, headers ...string) (*Response, error) {
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.Base + "/" + strings.TrimPrefix(path, "/")
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// OutcomeIssue returns the first issue of an OperationOutcome body, or an
// error saying why the body is not one.
func (r *Response) OutcomeIssue() (map[string]any, error) {
	m := r.JSON()
	if m == nil || m["resourceType"] != "OperationOutcome" {
		return nil, fmt.Errorf("status %d: body is not an OperationOutcome: %.200s", r.Status, r.Body)
	}
	issues, _ := m["issue"].([]any)
	if len(issues) == 0 {
		return nil, fmt.Errorf("OperationOutcome without issues")
	}
	is, _ := issues[0].(map[string]any)
	if is["severity"] == nil || is["code"] == nil {
		return nil, fmt.Errorf("issue without severity or code: %v", is)
	}
	return is, nil
}
