package chain

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/ethereum/go-ethereum/rpc"
)

type codeErr struct {
	code int
	msg  string
}

func (e codeErr) Error() string  { return e.msg }
func (e codeErr) ErrorCode() int { return e.code }

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"canceled", context.Canceled, false},
		{"deadline", context.DeadlineExceeded, true},
		{"eof", fmt.Errorf("post: %w", io.EOF), true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"http 503", rpc.HTTPError{StatusCode: 503, Status: "503"}, true},
		{"http 429", rpc.HTTPError{StatusCode: 429, Status: "429"}, true},
		{"http 401", rpc.HTTPError{StatusCode: 401, Status: "401"}, false},
		{"limit exceeded", codeErr{-32005, "limit exceeded"}, true},
		{"rate limited", codeErr{-32000, "daily request count exceeded, request rate limited"}, true},
		{"nonce too low", codeErr{-32000, "nonce too low: next nonce 5, tx nonce 4"}, false},
		{"insufficient funds", codeErr{-32000, "insufficient funds for gas * price + value"}, false},
		{"revert", codeErr{3, "execution reverted: unlucky"}, false},
		{"plain", errors.New("something odd"), false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("%s: IsTransient = %v", tt.name, got)
		}
	}
}

func TestNodeErrorClasses(t *testing.T) {
	tests := []struct {
		msg                                 string
		nonceLow, known, replaceUnderpriced bool
	}{
		{"nonce too low: next nonce 7, tx nonce 3", true, false, false},
		{"OldNonce", true, false, false},
		{"already known", false, true, false},
		{"Known transaction: 0xabc", false, true, false},
		{"ALREADY_EXISTS: already known", false, true, false},
		{"replacement transaction underpriced", false, false, true},
		{"insufficient funds for gas * price + value", false, false, false},
		{"nonce too high", false, false, false},
	}
	for _, tt := range tests {
		err := errors.New(tt.msg)
		if isNonceTooLow(err) != tt.nonceLow || isAlreadyKnown(err) != tt.known || isReplacementUnderpriced(err) != tt.replaceUnderpriced {
			t.Errorf("%q: nonceLow %v known %v underpriced %v", tt.msg, isNonceTooLow(err), isAlreadyKnown(err), isReplacementUnderpriced(err))
		}
	}
}

func TestURLHelpers(t *testing.T) {
	redact := []struct{ in, want string }{
		{"https://mainnet.infura.io/v3/KEY", "https://mainnet.infura.io/v3/KEY"},
		{"https://user:pass@node.example/rpc", "https://***@node.example/rpc"},
		{"wss://node.example/ws?apikey=secret", "wss://node.example/ws?***"},
		{"/var/run/geth.ipc", "/var/run/geth.ipc"},
	}
	for _, tt := range redact {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	reach := []struct{ in, want string }{
		{"http://0.0.0.0:8545", "http://127.0.0.1:8545"},
		{"ws://[::]:8545", "ws://127.0.0.1:8545"},
		{"http://127.0.0.1:8545", "http://127.0.0.1:8545"},
		{"ws://192.0.2.1:8546/ws", "ws://192.0.2.1:8546/ws"},
	}
	for _, tt := range reach {
		if got := reachable(tt.in); got != tt.want {
			t.Errorf("reachable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Dial fails early on a URL where nothing answers.
func TestDialNothingListening(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3e9)
	defer cancel()
	if c, err := Dial(ctx, "http://"+addr); err == nil {
		c.Close()
		t.Fatal("Dial succeeded")
	}
}
