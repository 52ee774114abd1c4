package main

// The practitioner read phase: reads that go through every layer a
// clinician's read goes through (a wallet sign-in token, the consent
// check against grants that came from the chain, the audit trail),
// against K patients who each granted one practitioner access by an
// EIP-712 signature the gateway relayed gas-free.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/auth/siwe"
	"github.com/fhirgate/fhirgate/chain/ethsig"
	"github.com/fhirgate/fhirgate/contracts/consentsig"
	"github.com/fhirgate/fhirgate/internal/synth"
)

// Defaults of the practitioner read phases.
const (
	defaultPractitionerPatients = 64
	defaultPractitionerScope    = "Patient.rs"
)

// practitionerConfig configures the setup and the practitioner read
// phases.
type practitionerConfig struct {
	base, token string // FHIR base URL; a system token (system/*.cruds)
	patients    int    // K granted patients
	scope       string // the consent scope each patient grants, e.g. "Patient.rs"
	clients     int
	warmup      time.Duration
	duration    time.Duration
	seed        int64
	serverPID   int
	// systemSame also reads the same K patients with the system token
	// (the like-for-like comparison).
	systemSame bool
	// grantWait bounds the wait for the grants to take effect.
	grantWait time.Duration
	// hook, if set, is called before (begin) and after each phase.
	hook func(phase string, begin bool)
}

// practitionerSetup is what the setup made.
type practitionerSetup struct {
	practitioner string   // "Practitioner/<id>"
	token        string   // the practitioner's access token, from SIWE
	patients     []string // ids of the K patients who granted access
	control      string   // id of a patient with a wallet and no grant
	chainID      uint64
	registry     common.Address
	scope        string
	took         time.Duration // the whole setup
	effective    time.Duration // from the first relay to the last grant in force
}

// gatewayInfo is what GET /.well-known/fhirgate says.
type gatewayInfo struct {
	ChainID     uint64            `json:"chainId"`
	Contracts   map[string]string `json:"contracts"`
	FHIRBaseURL string            `json:"fhirBaseUrl"`
	RPC         string            `json:"rpc"` // the chain's JSON-RPC for wallets ("" when not served)
}

// setupHTTP is the plain client of the setup (not measured).
var setupHTTP = &http.Client{Timeout: 30 * time.Second}

// httpJSON sends method url with body (JSON or FHIR JSON) and returns
// the status, the body and the Location header.
func httpJSON(ctx context.Context, method, u, token, contentType string, body []byte) (int, []byte, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/fhir+json, application/json")
	res, err := setupHTTP.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, out, res.Header.Get("Location"), err
}

// parallel runs f(0..n-1) from at most workers goroutines and returns
// the first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for range min(n, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// wallet is a freshly generated account.
type wallet struct {
	key  *ecdsa.PrivateKey
	addr common.Address
}

func newWallet() (wallet, error) {
	k, err := crypto.GenerateKey()
	if err != nil {
		return wallet{}, err
	}
	return wallet{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)}, nil
}

// caip10 is the wallet's FHIR identifier value on chainID.
func (w wallet) caip10(chainID uint64) string { return siwe.AccountID(chainID, w.addr.Hex()) }

// walletIdentifier is the identifier that links a record to the wallet.
func (w wallet) walletIdentifier(chainID uint64) string {
	return `{"system":"` + siwe.CAIP10System + `","value":"` + w.caip10(chainID) + `"}`
}

// siweClient signs wallets in to one gateway.
type siweClient struct {
	root    string // scheme://host of the server (nonce and sign-in routes)
	domain  string // the authority sign-in messages must name
	origin  string // scheme://authority of the gateway's configured base
	chainID uint64
}

func newSIWEClient(root string, info gatewayInfo) (*siweClient, error) {
	baseURL := info.FHIRBaseURL
	if baseURL == "" {
		baseURL = root
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the gateway's fhirBaseUrl %q is not a URL", info.FHIRBaseURL)
	}
	return &siweClient{root: root, domain: u.Host, origin: u.Scheme + "://" + u.Host, chainID: info.ChainID}, nil
}

// signIn signs w in with Sign-In With Ethereum as the portal does (a
// nonce, an EIP-4361 message, a personal_sign signature) and returns the
// token and the linked resource ("Patient/x" or "Practitioner/y").
func (c *siweClient) signIn(ctx context.Context, w wallet) (token, linked string, err error) {
	status, body, _, err := httpJSON(ctx, "GET", c.root+"/auth/siwe/nonce", "", "", nil)
	if err != nil {
		return "", "", fmt.Errorf("sign-in nonce: %w", err)
	}
	var n struct{ Nonce string }
	if status != 200 || json.Unmarshal(body, &n) != nil || n.Nonce == "" {
		return "", "", fmt.Errorf("sign-in nonce: HTTP %d: %s", status, truncate(string(body), 300))
	}
	now := time.Now().UTC()
	statement := "Sign in to fhirgate (fhirbench practitioner-read)."
	m := siwe.Message{
		Domain: c.domain, Address: w.addr.Hex(), Statement: &statement, URI: c.origin, Version: "1",
		ChainID: c.chainID, Nonce: n.Nonce, IssuedAt: now.Format(time.RFC3339),
		ExpirationTime: now.Add(time.Hour).Format(time.RFC3339),
	}
	text := m.String()
	if _, err := siwe.Parse(text); err != nil {
		return "", "", fmt.Errorf("sign-in message: %w", err)
	}
	// personal_sign: EIP-191 digest, v = 27/28 as wallets return it.
	sig, err := consentsig.Sign(common.Hash(ethsig.PersonalHash([]byte(text))), w.key)
	if err != nil {
		return "", "", err
	}
	req, _ := json.Marshal(map[string]string{"message": text, "signature": "0x" + common.Bytes2Hex(sig)})
	status, body, _, err = httpJSON(ctx, "POST", c.root+"/auth/siwe", "", "application/json", req)
	if err != nil {
		return "", "", fmt.Errorf("sign-in: %w", err)
	}
	var r siwe.TokenResponse
	if status != 200 || json.Unmarshal(body, &r) != nil || r.AccessToken == "" {
		return "", "", fmt.Errorf("sign-in of %s: HTTP %d: %s", w.addr.Hex(), status, truncate(string(body), 300))
	}
	linked = r.Patient
	if r.Practitioner != "" {
		linked = r.Practitioner
	}
	return r.AccessToken, linked, nil
}

// serverRoot returns scheme://host of a FHIR base URL.
func serverRoot(base string) (string, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("base URL %q: want http(s)://host:port/path", base)
	}
	return u.Scheme + "://" + u.Host, nil
}

// createResource POSTs body to base/typ and returns the new id.
func createResource(ctx context.Context, base, token, typ string, body []byte) (string, error) {
	status, out, loc, err := httpJSON(ctx, "POST", strings.TrimSuffix(base, "/")+"/"+typ, token, "application/fhir+json", body)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", typ, err)
	}
	if status != 201 {
		return "", fmt.Errorf("create %s: HTTP %d: %s", typ, status, truncate(string(out), 300))
	}
	return idFromLocation([]byte(loc), typ)
}

// readStatus is the status of GET base/typ/id with token.
func readStatus(ctx context.Context, base, token, typ, id string) (int, []byte, error) {
	status, body, _, err := httpJSON(ctx, "GET", strings.TrimSuffix(base, "/")+"/"+typ+"/"+id, token, "", nil)
	return status, body, err
}

// benchPatient is synthetic patient i (the same shape as the crud
// phases' Patients) with a wallet identifier added.
func benchPatient(g *synth.Generator, i int, wallet string) ([]byte, error) {
	body := g.Patient(i, synth.Ref{})
	const anchor = `}],"active":true,`
	k := bytes.Index(body, []byte(anchor))
	if k < 0 {
		return nil, errors.New("synthetic Patient without an identifier list")
	}
	out := make([]byte, 0, len(body)+len(wallet)+2)
	out = append(out, body[:k+1]...)
	out = append(out, ',')
	out = append(out, wallet...)
	out = append(out, body[k+1:]...)
	return out, nil
}

// relayGrant has the patient (signed in with patientToken) sign a Grant
// of scope to grantee and hands it to POST /consent/relay; it returns
// the transaction hash. The wallet is fresh, so its registry nonce is 0.
func relayGrant(ctx context.Context, root, patientToken string, d consentsig.Domain, w wallet, grantee, scope string, nonce int64) (string, error) {
	g := consentsig.Grant{
		Patient: w.addr, Grantee: consentsig.Grantee(grantee), Scope: consentsig.Scope(scope),
		Expiry: uint64(time.Now().Add(24 * time.Hour).Unix()), Nonce: big.NewInt(nonce),
		Deadline: big.NewInt(time.Now().Add(10 * time.Minute).Unix()),
	}
	digest, err := g.Digest(d)
	if err != nil {
		return "", err
	}
	sig, err := consentsig.Sign(digest, w.key)
	if err != nil {
		return "", err
	}
	var req map[string]any
	td, err := json.Marshal(g.TypedData(d))
	if err != nil {
		return "", err
	}
	if err := json.Unmarshal(td, &req); err != nil {
		return "", err
	}
	req["signature"] = "0x" + common.Bytes2Hex(sig)
	body, _ := json.Marshal(req)
	// 429 (the patient's transactions in flight) and 503 (chain not
	// answering) are worth a retry; anything else is a refusal.
	for attempt := 0; ; attempt++ {
		status, out, _, err := httpJSON(ctx, "POST", root+"/consent/relay", patientToken, "application/json", body)
		if err != nil {
			return "", fmt.Errorf("relay: %w", err)
		}
		if status == 202 {
			var r struct{ TxHash string }
			if err := json.Unmarshal(out, &r); err != nil || r.TxHash == "" {
				return "", fmt.Errorf("relay: 202 without a transaction hash: %s", truncate(string(out), 300))
			}
			return r.TxHash, nil
		}
		if (status == 429 || status == 503) && attempt < 20 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		return "", fmt.Errorf("relay of %s's grant: HTTP %d: %s", w.addr.Hex(), status, truncate(string(out), 300))
	}
}

// relayState is GET /consent/relay/{tx}: pending, mined, confirmed or
// failed (with the reason).
func relayState(ctx context.Context, root, token, tx string) (string, string, error) {
	status, out, _, err := httpJSON(ctx, "GET", root+"/consent/relay/"+tx, token, "", nil)
	if err != nil {
		return "", "", err
	}
	var st struct{ State, Error string }
	if status != 200 || json.Unmarshal(out, &st) != nil {
		return "", "", fmt.Errorf("relay status of %s: HTTP %d: %s", tx, status, truncate(string(out), 300))
	}
	return st.State, st.Error, nil
}

// poll calls f every 50 ms until it reports done, fails, or the context
// ends.
func poll(ctx context.Context, f func() (bool, error)) error {
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// setupPractitioner makes, on a running gateway, one verified
// Practitioner linked to a fresh wallet and cfg.patients Patients linked
// to fresh wallets (created with the system token); each patient signs
// in with their wallet and grants the practitioner cfg.scope by an
// EIP-712 signature relayed gas-free; the setup waits until the
// practitioner, signed in with their wallet, reads every one of them,
// and checks that a patient without a grant is refused.
func setupPractitioner(ctx context.Context, cfg practitionerConfig, log io.Writer) (*practitionerSetup, error) {
	start := time.Now()
	if cfg.patients < 1 {
		return nil, errors.New("practitioner setup: at least one patient")
	}
	root, err := serverRoot(cfg.base)
	if err != nil {
		return nil, err
	}
	status, body, _, err := httpJSON(ctx, "GET", root+"/.well-known/fhirgate", "", "", nil)
	if err != nil {
		return nil, fmt.Errorf("practitioner setup: %w", err)
	}
	var info gatewayInfo
	if status != 200 || json.Unmarshal(body, &info) != nil || info.ChainID == 0 {
		return nil, fmt.Errorf("practitioner setup: GET /.well-known/fhirgate: HTTP %d: %s", status, truncate(string(body), 300))
	}
	reg := info.Contracts["ConsentRegistry"]
	if !common.IsHexAddress(reg) {
		return nil, fmt.Errorf("practitioner setup: the gateway names no ConsentRegistry (%q)", reg)
	}
	sc, err := newSIWEClient(root, info)
	if err != nil {
		return nil, err
	}
	s := &practitionerSetup{chainID: info.ChainID, registry: common.HexToAddress(reg), scope: cfg.scope}
	domain := consentsig.Domain{ChainID: new(big.Int).SetUint64(info.ChainID), Registry: s.registry}

	// The practitioner: active (verified), linked to a fresh wallet.
	doctor, err := newWallet()
	if err != nil {
		return nil, err
	}
	pid, err := createResource(ctx, cfg.base, cfg.token, "Practitioner", []byte(`{"resourceType":"Practitioner","active":true,"identifier":[`+
		doctor.walletIdentifier(info.ChainID)+`],"name":[{"prefix":["Dr."],"family":"Bench","given":["Fhir"]}]}`))
	if err != nil {
		return nil, fmt.Errorf("practitioner setup: %w", err)
	}
	s.practitioner = "Practitioner/" + pid

	// K patients and one control patient (no grant), each with a wallet.
	g := synth.New(cfg.seed)
	wallets := make([]wallet, cfg.patients+1)
	ids := make([]string, cfg.patients+1)
	if err := parallel(len(ids), 8, func(i int) error {
		w, err := newWallet()
		if err != nil {
			return err
		}
		b, err := benchPatient(g, 2_000_000+i, w.walletIdentifier(info.ChainID))
		if err != nil {
			return err
		}
		id, err := createResource(ctx, cfg.base, cfg.token, "Patient", b)
		wallets[i], ids[i] = w, id
		return err
	}); err != nil {
		return nil, fmt.Errorf("practitioner setup: %w", err)
	}
	s.patients, s.control = ids[:cfg.patients], ids[cfg.patients]
	fmt.Fprintf(log, "practitioner-read: %s and %d patients (+1 without a grant) created on chain %d\n", s.practitioner, cfg.patients, info.ChainID)

	// The practitioner signs in with the wallet: the real path.
	s.token, err = func() (string, error) {
		tok, linked, err := sc.signIn(ctx, doctor)
		if err == nil && linked != s.practitioner {
			err = fmt.Errorf("the practitioner's wallet signed in as %q, want %s", linked, s.practitioner)
		}
		return tok, err
	}()
	if err != nil {
		return nil, fmt.Errorf("practitioner setup: %w", err)
	}
	// Before any grant, the practitioner is refused.
	if st, out, err := readStatus(ctx, cfg.base, s.token, "Patient", s.patients[0]); err != nil || st != 404 {
		return nil, fmt.Errorf("practitioner setup: before any grant, the practitioner's read of Patient/%s answered %d (want 404, as if absent): %v %s", s.patients[0], st, err, truncate(string(out), 300))
	}

	// Each patient signs in with the wallet and relays a signed grant.
	relayStart := time.Now()
	patientTokens := make([]string, cfg.patients)
	txs := make([]string, cfg.patients)
	if err := parallel(cfg.patients, 8, func(i int) error {
		tok, linked, err := sc.signIn(ctx, wallets[i])
		if err != nil {
			return err
		}
		if linked != "Patient/"+ids[i] {
			return fmt.Errorf("patient %d's wallet signed in as %q, want Patient/%s", i, linked, ids[i])
		}
		patientTokens[i] = tok
		txs[i], err = relayGrant(ctx, root, tok, domain, wallets[i], s.practitioner, cfg.scope, 0)
		return err
	}); err != nil {
		return nil, fmt.Errorf("practitioner setup: %w", err)
	}

	// The relay says when each grant's block has its confirmations (or
	// why it failed); then every grant must be in force in the policy.
	wait := cfg.grantWait
	if wait <= 0 {
		wait = time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for i, tx := range txs {
		last := ""
		err := poll(wctx, func() (bool, error) {
			state, why, err := relayState(wctx, root, patientTokens[i], tx)
			if err != nil {
				return false, err
			}
			if state == "failed" {
				return false, fmt.Errorf("relayed grant %s failed: %s", tx, why)
			}
			last = state
			return state == "confirmed", nil
		})
		if err != nil {
			return nil, fmt.Errorf("practitioner setup: relayed grant of Patient/%s (%s, last state %q): %w", ids[i], tx, last, err)
		}
	}
	for _, id := range s.patients {
		last := 0
		err := poll(wctx, func() (bool, error) {
			st, _, err := readStatus(wctx, cfg.base, s.token, "Patient", id)
			last = st
			return st == 200, err
		})
		if err != nil {
			return nil, fmt.Errorf("practitioner setup: the grant of Patient/%s not in force after %s (last answer %d): %w", id, wait, last, err)
		}
	}
	s.effective = time.Since(relayStart)
	// A patient who granted nothing stays closed to the practitioner: the
	// phase measures consent-checked reads, not refusals nor an open door.
	if st, out, err := readStatus(ctx, cfg.base, s.token, "Patient", s.control); err != nil || st != 404 {
		return nil, fmt.Errorf("practitioner setup: the practitioner's read of Patient/%s, who granted nothing, answered %d (want 404, as if absent): %v %s", s.control, st, err, truncate(string(out), 300))
	}
	s.took = time.Since(start)
	fmt.Fprintf(log, "practitioner-read: %d grants of %s to %s relayed and in force %s after the first relay; patient without a grant refused (404); setup took %s\n",
		cfg.patients, cfg.scope, s.practitioner, s.effective.Round(time.Millisecond), s.took.Round(time.Millisecond))
	return s, nil
}

// only200 counts any answer but 200 as a failure (drive takes every 2xx
// as a success).
func only200(op opFunc) opFunc {
	return func(w *worker) (int, error) {
		status, err := op(w)
		if err == nil && status != 200 && status >= 200 && status < 300 {
			return 0, fmt.Errorf("HTTP %d, want 200", status)
		}
		return status, err
	}
}

// runPractitionerRead runs the setup, then the read-practitioner phase
// (GET [base]/Patient/ID of a random one of the K patients with the
// practitioner's token) and, with systemSame, read-system-same (the same
// reads with the system token).
func runPractitionerRead(cfg practitionerConfig, log io.Writer) ([]*Result, *practitionerSetup, error) {
	// The practitioner's token lasts an hour (the sign-in message's
	// expiration caps it).
	if cfg.warmup+cfg.duration > 50*time.Minute {
		return nil, nil, errors.New("practitioner-read: the phases would outlast the practitioner's one-hour token")
	}
	ctx := context.Background()
	s, err := setupPractitioner(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	uris := make([][]byte, len(s.patients))
	pt, err := newTarget(cfg.base, s.token, cfg.clients)
	if err != nil {
		return nil, s, err
	}
	for i, id := range s.patients {
		uris[i] = []byte(pt.path + "/Patient/" + id)
	}
	dc := driveConfig{Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration, ServerPID: cfg.serverPID}
	phase := func(name string, t *target) *Result {
		dc.Name = name
		if cfg.hook != nil {
			cfg.hook(name, true)
		}
		r := drive(dc, t.prepare, only200(readOp(t, uris)))
		if cfg.hook != nil {
			cfg.hook(name, false)
		}
		r.Note = fmt.Sprintf("(%d patients)", len(uris))
		fmt.Fprintln(log, r)
		return r
	}
	res := []*Result{phase("read-practitioner", pt)}
	if cfg.systemSame {
		st, err := newTarget(cfg.base, cfg.token, cfg.clients)
		if err != nil {
			return res, s, err
		}
		res = append(res, phase("read-system-same", st))
	}
	return res, s, nil
}
