package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// Client is a connection to an Ethereum JSON-RPC endpoint: the embedded dev
// chain (in-process) or any node (HTTP, WebSocket or IPC).
//
// It embeds *ethclient.Client, so it satisfies the go-ethereum interfaces
// abigen bindings and bind.ContractBackend expect.
type Client struct {
	*ethclient.Client
	rpc *rpc.Client
	url string
}

// Dial connects to an Ethereum node. url is http(s)://, ws(s)://, or a
// path to an IPC socket. Event subscriptions (SubscribeNewHead,
// SubscribeFilterLogs) need ws(s):// or IPC: over HTTP they fail with
// "notifications not supported"; use SupportsSubscriptions to tell.
func Dial(ctx context.Context, url string) (*Client, error) {
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("chain: dial %s: %w", redactURL(url), err)
	}
	cl := newClient(c, url)
	// Fail early on a wrong URL rather than at the first transaction.
	if _, err := withRetry(ctx, defaultRetry, func(ctx context.Context) (uint64, error) {
		id, err := cl.ChainID(ctx)
		if err != nil {
			return 0, err
		}
		return id.Uint64(), nil
	}); err != nil {
		c.Close()
		return nil, fmt.Errorf("chain: %s: eth_chainId: %w", redactURL(url), err)
	}
	return cl, nil
}

func newClient(c *rpc.Client, url string) *Client {
	return &Client{Client: ethclient.NewClient(c), rpc: c, url: url}
}

// RPC returns the underlying JSON-RPC client, for calls ethclient lacks.
func (c *Client) RPC() *rpc.Client { return c.rpc }

// URL returns the URL the client was dialled with ("inproc://" for an
// in-process client of the embedded chain).
func (c *Client) URL() string { return c.url }

// SupportsSubscriptions reports whether the connection can deliver
// eth_subscribe notifications (WebSocket, IPC, in-process; not HTTP).
func (c *Client) SupportsSubscriptions() bool { return c.rpc.SupportsSubscriptions() }

// redactURL drops credentials and query strings (API keys) from an RPC URL
// so it can be logged.
func redactURL(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			u = u[:i+3] + "***@" + rest[at+1:]
		}
	}
	if q := strings.IndexAny(u, "?#"); q >= 0 {
		u = u[:q] + "?***"
	}
	return u
}

// retryPolicy bounds retries of transient RPC failures.
type retryPolicy struct {
	attempts int           // total attempts, ≥ 1
	base     time.Duration // first backoff, doubled each time (with jitter)
	max      time.Duration // backoff ceiling
}

var defaultRetry = retryPolicy{attempts: 5, base: 100 * time.Millisecond, max: 2 * time.Second}

// withRetry runs f until it succeeds, fails with a non-transient error, the
// attempts are spent, or ctx ends.
func withRetry[T any](ctx context.Context, p retryPolicy, f func(context.Context) (T, error)) (T, error) {
	var zero T
	delay := p.base
	for attempt := 1; ; attempt++ {
		v, err := f(ctx)
		if err == nil || !IsTransient(err) || attempt >= p.attempts {
			return v, err
		}
		if ctx.Err() != nil {
			return zero, err
		}
		d := delay/2 + rand.N(delay/2+1)
		select {
		case <-ctx.Done():
			return zero, err
		case <-time.After(d):
		}
		delay = min(2*delay, p.max)
	}
}

// IsTransient reports whether an RPC error is worth retrying: connection
// failures, timeouts, HTTP 429 and 5xx, and JSON-RPC "limit exceeded" /
// rate-limit answers. Node verdicts on a transaction ("nonce too low",
// "insufficient funds", reverts) are not transient.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var httpErr rpc.HTTPError
	if errors.As(err, &httpErr) {
		return httpErr.StatusCode == 429 || httpErr.StatusCode >= 500
	}
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		switch rpcErr.ErrorCode() {
		case -32005: // limit exceeded (EIP-1474), used for rate limiting
			return true
		}
		msg := strings.ToLower(rpcErr.Error())
		return strings.Contains(msg, "rate limit") || strings.Contains(msg, "too many requests") ||
			strings.Contains(msg, "timeout") || strings.Contains(msg, "temporarily unavailable")
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "eof", "timeout", "i/o timeout", "no such host", "server closed"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
