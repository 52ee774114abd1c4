package web_test

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/internal/gethtest"
	"github.com/fhirgate/fhirgate/internal/testgateway"
	"github.com/fhirgate/fhirgate/policy"
	"github.com/fhirgate/fhirgate/web"
)

// The browser tests (web/test) drive Debian's Chromium through
// playwright-core against the real gateway binary, with a dev-chain
// wallet injected as window.ethereum. They need node, npm (for npm ci the
// first time) and chromium: without them the tests skip with a loud
// message, except with FHIRGATE_REQUIRE_SERVICES=1 (CI), where they fail.

func requireOrSkip(t *testing.T, format string, args ...any) {
	t.Helper()
	gethtest.SkipOrFail(t, format, args...)
}

func chromiumPath() string {
	if p := os.Getenv("FHIRGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

var npmOnce sync.Once
var npmErr error

// nodeTools returns node's path and makes sure web/test/node_modules is
// installed (npm ci from the committed lock file).
func nodeTools(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		requireOrSkip(t, "node is not installed; the portal's JavaScript tests need Node 20+")
	}
	npmOnce.Do(func() {
		// Every package the tests load must be there: a node_modules from
		// before a package was added (axe-core) is refreshed by npm ci.
		installed := true
		for _, pkg := range []string{"playwright-core", "axe-core"} {
			if _, err := os.Stat(filepath.Join("test", "node_modules", pkg, "package.json")); err != nil {
				installed = false
			}
		}
		if installed {
			return
		}
		npm, err := exec.LookPath("npm")
		if err != nil {
			npmErr = err
			return
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = "test"
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = &npmError{err: err, out: string(out)}
		}
	})
	if npmErr != nil {
		requireOrSkip(t, "cannot install web/test's packages (npm ci): %v", npmErr)
	}
	return node
}

type npmError struct {
	err error
	out string
}

func (e *npmError) Error() string { return e.err.Error() + "\n" + e.out }

// runNode runs a node test file in web/test, streaming its output to the
// test log, and fails the test when it fails.
func runNode(t *testing.T, node string, env []string, timeout time.Duration, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, args...)...)
	cmd.Dir = "test"
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			t.Log(sc.Text())
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if ctx.Err() != nil {
		t.Fatalf("node %s: timed out after %s", strings.Join(args, " "), timeout)
	}
	if err != nil {
		t.Fatalf("node %s: %v (see the log above)", strings.Join(args, " "), err)
	}
}

// TestPortalJavaScript runs the portal's own unit tests: Keccak-256 against
// known vectors and an independent implementation, EIP-55, selectors, ABI
// calldata, RFC 6962 inclusion and consistency proofs, the raw JSON
// scanner, SIWE messages, consent encodings. No browser needed.
func TestPortalJavaScript(t *testing.T) {
	node := nodeTools(t)
	runNode(t, node, nil, 2*time.Minute, "unit.test.mjs")
}

// TestBrowser runs the end-to-end browser tests against the real gateway
// binary on free ports: portal.test.mjs and registration.test.mjs.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests: not in -short mode")
	}
	chromium := chromiumPath()
	if chromium == "" {
		requireOrSkip(t, "chromium is not installed (apt-get install chromium); the portal's browser tests need it")
	}
	node := nodeTools(t)
	g := testgateway.Start(t, "", "--anchor-interval", "1s", "--eth-block-period", "1s", "--regulators", walletRegulator)
	origin := strings.TrimSuffix(g.Base, "/fhir")
	admin := g.Token(t, "system/*.cruds "+policy.ScopeIdentityLinking) // creates the people and links their wallets
	regulator := g.Token(t, "system/AuditEvent.rs", "--role", "regulator")
	shots := os.Getenv("FHIRGATE_SCREENSHOTS")
	if shots == "" {
		abs, err := filepath.Abs("screenshots")
		if err != nil {
			t.Fatal(err)
		}
		shots = abs
	}
	env := []string{
		"FHIRGATE_URL=" + origin,
		"FHIRGATE_ADMIN_TOKEN=" + admin,
		"FHIRGATE_REGULATOR_TOKEN=" + regulator,
		"FHIRGATE_CHROMIUM=" + chromium,
		"FHIRGATE_SCREENSHOTS=" + shots,
		"FHIRGATE_WALLET_REGULATOR=1", // REGULATOR_KEY of web/test/lib/fixtures.mjs signs in as regulator
	}
	defer func() {
		if t.Failed() {
			t.Logf("gateway log (last 8 KB):\n%s", tail(g.Logs(), 8<<10))
		}
	}()
	// One gateway for both files, run one after the other: the portal's
	// pages with people an EHR created, then the registration scenario
	// (people who register themselves; dev accounts (6)..(9), (9) being
	// the embedded dev chain's default administrator).
	runNode(t, node, env, 8*time.Minute, "portal.test.mjs", "registration.test.mjs")
	t.Logf("screenshots in %s", shots)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestAuditAnchorCodeHash keeps the portal's copy of AuditAnchor's code
// hash (it checks eth_getCode before trusting rootAt) equal to the Go one.
func TestAuditAnchorCodeHash(t *testing.T) {
	b, err := fs.ReadFile(web.FS(), "assets/proof.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`AUDIT_ANCHOR_CODE_HASH = '(0x[0-9a-f]{64})'`).FindSubmatch(b)
	if m == nil {
		t.Fatal("assets/proof.js: AUDIT_ANCHOR_CODE_HASH not found")
	}
	if got, want := string(m[1]), ethanchor.AuditAnchorCodeHash.Hex(); got != want {
		t.Fatalf("portal's AuditAnchor code hash %s, want %s (contracts changed: update assets/proof.js)", got, want)
	}
}

// TestStaticFiles checks the embedded portal: the two pages, only
// same-origin assets, no inline scripts or styles (the CSP forbids them),
// and every asset they name exists.
func TestStaticFiles(t *testing.T) {
	fsys := web.FS()
	inline := regexp.MustCompile(`(?is)<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle\s*=|\son[a-z]+\s*=|<style`)
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for _, page := range []string{"index.html", "verify.html"} {
		b, err := fs.ReadFile(fsys, page)
		if err != nil {
			t.Fatal(err)
		}
		if loc := inline.FindIndex(b); loc != nil {
			t.Errorf("%s: inline script or style at byte %d: %q", page, loc[0], b[loc[0]:min(len(b), loc[1]+20)])
		}
		for _, m := range ref.FindAllSubmatch(b, -1) {
			u := string(m[1])
			switch {
			case u == "#" || u == "#main" || u == "/" || u == "/verify" || u == "data:,":
			case strings.HasPrefix(u, "/assets/"):
				if _, err := fs.Stat(fsys, strings.TrimPrefix(u, "/")); err != nil {
					t.Errorf("%s names %s, which is not embedded", page, u)
				}
			default:
				t.Errorf("%s loads %s: only same-origin /assets/ are allowed", page, u)
			}
		}
	}
	// JavaScript modules import only relative, embedded modules.
	imp := regexp.MustCompile(`(?m)^import[^'"]*['"]([^'"]+)['"]`)
	err := fs.WalkDir(fsys, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		for _, m := range imp.FindAllSubmatch(b, -1) {
			dep := string(m[1])
			if !strings.HasPrefix(dep, "./") {
				t.Errorf("%s imports %s: only ./ modules of the portal", p, dep)
				continue
			}
			if _, err := fs.Stat(fsys, "assets/"+strings.TrimPrefix(dep, "./")); err != nil {
				t.Errorf("%s imports %s, which is not embedded", p, dep)
			}
		}
		// URLs in the code are identifier systems or placeholders, never
		// something to load.
		for _, u := range regexp.MustCompile(`https?://[^\s'"`+"`"+`)]+`).FindAll(b, -1) {
			if !identifierSystems[string(u)] && !strings.HasPrefix(string(u), "https://chainagnostic.org/CAIPs/caip-10") && string(u) != "https://an-ethereum-node" {
				t.Errorf("%s mentions %s: the portal loads nothing from elsewhere", p, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// walletRegulator is account (10) of the well-known test mnemonic
// (REGULATOR_KEY in web/test/lib/fixtures.mjs): the browser tests' gateway
// names it with --regulators, so a regulator signs in with a wallet too.
const walletRegulator = "0xBcd4042DE499D14e55001CcbB24a551F3b954096"

// identifierSystems are the identifier systems the portal names (licence
// registers in the registration form): URIs that name, never loaded.
var identifierSystems = map[string]bool{
	"http://hl7.org/fhir/sid/us-npi":        true,
	"https://fhir.hl7.org.uk/Id/gmc-number": true,
	"https://fhir.hl7.org.uk/Id/nmc-number": true,
}
