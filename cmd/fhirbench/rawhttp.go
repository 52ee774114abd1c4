package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/fhir"
	"github.com/fhirgate/fhirgate/internal/synth"
)

// typicalRead returns the bytes the gateway serves for a read of a
// synthetic Patient: the generated body, stamped with id, versionId and
// lastUpdated, in canonical form.
func typicalRead(seed int64) ([]byte, error) {
	res, err := fhir.Parse(synth.New(seed).Patient(0, synth.Ref{}))
	if err != nil {
		return nil, err
	}
	return res.Stamp(uuid.Must(uuid.NewV7()).String(), 1, time.Now().UTC().Truncate(time.Microsecond)), nil
}

// newRawApp is a bare fiber app with the gateway's server settings and
// one handler that answers GET /fhir/Patient/:id with body and the
// headers a read carries. No authentication, no store.
func newRawApp(body []byte) *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ReadTimeout:           60 * time.Second,
		WriteTimeout:          60 * time.Second,
		IdleTimeout:           120 * time.Second,
		CaseSensitive:         true,
		ReadBufferSize:        16 << 10,
	})
	lastModified := time.Now().UTC().Format(http.TimeFormat)
	app.Get("/fhir/Patient/:id", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderETag, `W/"1"`)
		c.Set(fiber.HeaderLastModified, lastModified)
		c.Set(fiber.HeaderContentType, "application/fhir+json")
		return c.Send(body)
	})
	return app
}

// rawHTTPServe is the hidden subcommand that serves the bare handler in a
// separate process: it prints "listening http://ADDR" and serves until its
// standard input closes.
func rawHTTPServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("_raw-http-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "seed of the Patient served")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	body, err := typicalRead(*seed)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	app := newRawApp(body)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		app.Shutdown()
	}()
	fmt.Fprintf(stdout, "listening http://%s %d\n", ln.Addr(), len(body))
	if err := app.Listener(ln); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

type rawHTTPConfig struct {
	clients   int
	warmup    time.Duration
	duration  time.Duration
	seed      int64
	inProcess bool
}

// runRawHTTP drives the bare handler with the read operation of crud
// (same request bytes apart from the id), in this process or in a child
// process.
func runRawHTTP(cfg rawHTTPConfig) (*Result, error) {
	var (
		base    string
		pid     int
		size    int
		cleanup func()
	)
	if cfg.inProcess {
		body, err := typicalRead(cfg.seed)
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		app := newRawApp(body)
		go app.Listener(ln)
		base, size = "http://"+ln.Addr().String()+"/fhir", len(body)
		cleanup = func() { app.Shutdown() }
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe, "_raw-http-server", "-seed", fmt.Sprint(cfg.seed))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		f := strings.Fields(line)
		if err != nil || len(f) != 3 || f[0] != "listening" {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("raw-http server: unexpected first line %q (%v)", line, err)
		}
		base, pid = f[1]+"/fhir", cmd.Process.Pid
		fmt.Sscan(f[2], &size)
		cleanup = func() {
			stdin.Close()
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
	}
	defer cleanup()
	// Same request as a gateway read, including an Authorization header
	// of a realistic length (the handler ignores it).
	t, err := newTarget(base, strings.Repeat("x", 560), cfg.clients)
	if err != nil {
		return nil, err
	}
	uris := make([][]byte, 4096)
	for i := range uris {
		uris[i] = []byte(t.path + "/Patient/" + uuid.Must(uuid.NewV7()).String())
	}
	name := "raw-http"
	if cfg.inProcess {
		name = "raw-http-in"
	}
	r := drive(driveConfig{Name: name, Clients: cfg.clients, Warmup: cfg.warmup, Duration: cfg.duration,
		ServerPID: pid, InProcess: cfg.inProcess}, t.prepare, readOp(t, uris))
	r.Note = fmt.Sprintf("(body %d B)", size)
	return r, nil
}
