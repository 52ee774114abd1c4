package chain

import (
	"bufio"
	"context"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// TestCrashHelper is not a test: TestDevChainKill9 runs the test binary
// with FHIRGATE_CHAIN_CRASH_DIR set, and this runs a dev chain on that
// directory until the process is killed.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv("FHIRGATE_CHAIN_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestDevChainKill9")
	}
	d, err := StartDev(context.Background(), DevConfig{DataDir: dir, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("URL", d.HTTPURL())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	<-ch
	d.Close()
	os.Exit(0)
}

// A dev chain killed with SIGKILL reopens with every block it had mined
// (hash-scheme archive state: each block's state is in the database when
// the block is).
func TestDevChainKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	store := loadStore(t)
	ctx := testCtx(t)
	to := common.HexToAddress("0x00000000000000000000000000000000000000cc")

	var head uint64
	var contract common.Address
	var sent int64
	for round := 0; round < 2; round++ { // kill twice: the reopened chain must survive a kill too
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "FHIRGATE_CHAIN_CRASH_DIR="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		url := ""
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "URL "); ok {
				url = u
				break
			}
		}
		if url == "" {
			cmd.Process.Kill() //nolint:errcheck
			cmd.Wait()         //nolint:errcheck
			t.Fatal("helper did not start")
		}
		go func() {
			for sc.Scan() {
			}
		}()
		c := dial(t, url)
		s := newSender(t, c, DevAccounts()[1], SenderOptions{})
		if round == 0 {
			r, err := s.Transact(ctx, TxRequest{Data: append(store.bin, store.ctorArgs(t, 1)...)})
			if err != nil {
				t.Fatal(err)
			}
			contract = r.ContractAddress
		}
		var last *Pending
		for i := 0; i < 20; i++ {
			p, err := s.Send(ctx, TxRequest{To: &to, Value: big.NewInt(1)})
			if err != nil {
				t.Fatal(err)
			}
			sent++
			last = p
		}
		addr := contract
		if _, err := s.Transact(ctx, TxRequest{To: &addr, Data: store.pack(t, "set", big.NewInt(int64(100+round))), Gas: 100_000}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Wait(ctx, last); err != nil {
			t.Fatal(err)
		}
		head, err = c.BlockNumber(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait() //nolint:errcheck
		t.Logf("round %d: killed at head %d", round, head)
	}

	start := time.Now()
	d := startDev(t, DevConfig{DataDir: dir})
	t.Logf("reopened after kill -9 in %v at head %d", time.Since(start).Round(time.Millisecond), d.Head().Number)
	if got := d.Head().Number.Uint64(); got < head {
		t.Fatalf("head %d after kill -9, was %d: blocks lost", got, head)
	}
	if bal, err := d.Client().BalanceAt(ctx, to, nil); err != nil || bal.Int64() != sent {
		t.Errorf("balance %v, %v; want %d", bal, err, sent)
	}
	if v := store.value(t, d.Client(), contract); v != 101 {
		t.Errorf("contract value %d, want 101", v)
	}
	// And it keeps going.
	if _, err := d.Mine(ctx); err != nil {
		t.Fatal(err)
	}
}
