package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// The original research system's approach, measured: one transaction per
// record (RecordStore.addRecord on Ganache), against fhirgate's creates,
// whose only on-chain cost is the anchoring of log checkpoints.

type ganacheConfig struct {
	dir string // bench/ganache: package.json, node_modules, RecordStore.sol, compile.mjs
	// senders: one Ganache run per entry, with that many concurrent
	// senders (each on a fresh Ganache).
	senders []int
	// ganacheArgs are added to Ganache's command line.
	ganacheArgs []string
	warmup      time.Duration
	duration    time.Duration
	seed        int64
	// The fhirgate side (skipped when gateway is "").
	gateway     string
	gwClients   int
	gatewayArgs []string
	pool        int
	work        string // parent of the work directory
	anchorWait  time.Duration
	out         string
}

// Sender transactions: a fixed gas limit (no eth_estimateGas round trip:
// the best case for the one-transaction-per-record approach) and fees
// far above Ganache's base fee.
const (
	recordGasLimit  = 200_000
	recordTipCap    = 1_000_000_000   // 1 gwei
	recordFeeCap    = 100_000_000_000 // 100 gwei
	ganacheBalance  = "0x3635c9adc5dea00000"
	ganacheHardfork = "shanghai"
)

// ganacheKey is the deterministic key of Ganache account i (0: the
// deployer, 1..senders: the senders). Test keys, for a throw-away chain.
func ganacheKey(i int) *ecdsa.PrivateKey {
	k, err := crypto.ToECDSA(crypto.Keccak256([]byte("fhirbench ganache account " + strconv.Itoa(i))))
	if err != nil {
		panic(err) // a keccak output is a valid key but with negligible probability
	}
	return k
}

// recordStore is the compiled RecordStore contract.
type recordStore struct {
	solc string
	abi  abi.ABI
	bin  []byte
}

// compileRecordStore compiles dir/RecordStore.sol with the solc that
// `npm ci` installed in dir (node dir/compile.mjs).
func compileRecordStore(dir string) (*recordStore, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "compile.mjs")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("node compile.mjs in %s: %v: %s", dir, err, stderr.String())
	}
	var c struct {
		Solc string          `json:"solc"`
		ABI  json.RawMessage `json:"abi"`
		Bin  string          `json:"bin"`
	}
	if err := json.Unmarshal(out, &c); err != nil {
		return nil, fmt.Errorf("compile.mjs output: %w", err)
	}
	a, err := abi.JSON(strings.NewReader(string(c.ABI)))
	if err != nil {
		return nil, err
	}
	bin := common.FromHex(c.Bin)
	if len(bin) == 0 {
		return nil, errors.New("compile.mjs: empty bytecode")
	}
	return &recordStore{solc: c.Solc, abi: a, bin: bin}, nil
}

// ganacheProc is a Ganache started by fhirbench.
type ganacheProc struct {
	cmd     *exec.Cmd
	url     string
	pid     int
	version string
	done    chan struct{}
}

// freePort returns a free loopback TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ganacheCLI is the CLI of the ganache package installed in dir.
func ganacheCLI(dir string) string {
	return filepath.Join(dir, "node_modules", "ganache", "dist", "node", "cli.js")
}

// startGanache runs Ganache from dir/node_modules (node itself is the
// child, so its pid is Ganache's) on a free loopback port with accounts
// 0..accounts-1 of ganacheKey, instamine (a block per transaction as it
// arrives), and waits until it answers JSON-RPC.
func startGanache(dir string, accounts int, extra []string, logPath string) (*ganacheProc, error) {
	cli := ganacheCLI(dir)
	if _, err := os.Stat(cli); err != nil {
		return nil, fmt.Errorf("ganache is not installed in %s (run: cd %s && npm ci): %w", dir, dir, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{cli, "--server.host", "127.0.0.1", "--server.port", strconv.Itoa(port),
		"--chain.hardfork", ganacheHardfork, "--miner.blockTime", "0", "--miner.instamine", "eager",
		"--logging.quiet"}
	for i := range accounts {
		args = append(args, "--wallet.accounts", hexKey(ganacheKey(i))+","+ganacheBalance)
	}
	args = append(args, extra...)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start ganache: %w", err)
	}
	g := &ganacheProc{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(g.done) }()
	c, err := rpc.Dial(g.url)
	if err != nil {
		g.stop()
		return nil, err
	}
	defer c.Close()
	for deadline := time.Now().Add(60 * time.Second); ; {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.CallContext(ctx, &g.version, "web3_clientVersion")
		cancel()
		if err == nil {
			return g, nil
		}
		select {
		case <-g.done:
			return nil, fmt.Errorf("ganache exited at start (log: %s)", logPath)
		default:
		}
		if time.Now().After(deadline) {
			g.stop()
			return nil, fmt.Errorf("ganache did not answer within 60 s: %v (log: %s)", err, logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hexKey(k *ecdsa.PrivateKey) string {
	return "0x" + common.Bytes2Hex(crypto.FromECDSA(k))
}

// stop ends Ganache with SIGTERM (SIGKILL after 10 s).
func (g *ganacheProc) stop() { stopProcess(g.cmd, g.done, 10*time.Second) }

// dialEth returns an ethclient whose HTTP transport keeps conns
// connections open (the default keeps 2 idle ones per host, so
// concurrent senders would open a connection per request).
func dialEth(url string, conns int) (*ethclient.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conns+8, conns+8
	c, err := rpc.DialOptions(context.Background(), url, rpc.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		return nil, err
	}
	return ethclient.NewClient(c), nil
}

// waitReceipt polls for the receipt of tx (every millisecond: with eager
// instamine it is there when the send returns).
func waitReceipt(ctx context.Context, c *ethclient.Client, tx common.Hash) (*types.Receipt, error) {
	for {
		r, err := c.TransactionReceipt(ctx, tx)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("receipt of %s: %w", tx.Hex(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// ganacheSender is a worker's account and what its transactions cost.
type ganacheSender struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	nonce uint64
	gas   []uint64 // gasUsed of each mined addRecord
}

// ganacheSide is what the one-transaction-per-record run measured.
type ganacheSide struct {
	senders   int
	res       *Result
	version   string
	solc      string
	deployGas uint64
	gas       []uint64 // gasUsed of every addRecord (warm-up included)
}

// runGanacheSide starts Ganache, deploys RecordStore and drives n
// closed-loop senders, each with its own account and nonces: sign
// addRecord, send it, wait for its receipt.
func runGanacheSide(cfg ganacheConfig, n int, work string, log io.Writer) (*ganacheSide, error) {
	rs, err := compileRecordStore(cfg.dir)
	if err != nil {
		return nil, err
	}
	g, err := startGanache(cfg.dir, n+1, cfg.ganacheArgs, filepath.Join(work, fmt.Sprintf("ganache-%d.log", n)))
	if err != nil {
		return nil, err
	}
	defer g.stop()
	fmt.Fprintf(log, "ganache: %s at %s (pid %d), %s\n", g.version, g.url, g.pid, rs.solc)
	ec, err := dialEth(g.url, n)
	if err != nil {
		return nil, err
	}
	defer ec.Close()
	ctx := context.Background()
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	signer := types.LatestSignerForChainID(chainID)
	send := func(key *ecdsa.PrivateKey, nonce uint64, to *common.Address, data []byte, gas uint64) (*types.Receipt, error) {
		tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(recordTipCap),
			GasFeeCap: big.NewInt(recordFeeCap), Gas: gas, To: to, Data: data}), signer, key)
		if err != nil {
			return nil, err
		}
		if err := ec.SendTransaction(ctx, tx); err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := waitReceipt(rctx, ec, tx.Hash())
		if err != nil {
			return nil, err
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return r, fmt.Errorf("transaction %s reverted", tx.Hash().Hex())
		}
		return r, nil
	}
	deployer := ganacheKey(0)
	nonce, err := ec.PendingNonceAt(ctx, crypto.PubkeyToAddress(deployer.PublicKey))
	if err != nil {
		return nil, err
	}
	dr, err := send(deployer, nonce, nil, rs.bin, 2_000_000)
	if err != nil {
		return nil, fmt.Errorf("deploy RecordStore: %w", err)
	}
	contract := dr.ContractAddress
	side := &ganacheSide{senders: n, version: g.version, solc: rs.solc, deployGas: dr.GasUsed}

	// Records: ids shaped like fhirgate's (Patient/<36 characters>), the
	// SHA-256 of a synthetic Patient as the content hash, a patient
	// address per record.
	pool := patientPool(cfg.seed, 256)
	hashes := make([][32]byte, len(pool))
	for i, b := range pool {
		hashes[i] = sha256.Sum256(b)
	}
	var senders []*ganacheSender
	setup := func(w *worker) {
		k := ganacheKey(w.id + 1)
		s := &ganacheSender{key: k, addr: crypto.PubkeyToAddress(k.PublicKey)}
		w.state = s
		senders = append(senders, s)
	}
	op := func(w *worker) (int, error) {
		s := w.state.(*ganacheSender)
		id := fmt.Sprintf("Patient/%08x-%04x-4%03x-8%03x-%012x", uint32(cfg.seed), w.id, 0, 0, w.n)
		var patient common.Address
		binaryPut(patient[:], w.rng.Uint64(), w.rng.Uint64())
		data, err := rs.abi.Pack("addRecord", id, hashes[w.n%len(hashes)], patient)
		if err != nil {
			return 0, err
		}
		r, err := send(s.key, s.nonce, &contract, data, recordGasLimit)
		if err != nil {
			// The nonce may or may not be used: ask the chain.
			if n, nerr := ec.PendingNonceAt(ctx, s.addr); nerr == nil {
				s.nonce = n
			}
			return 0, err
		}
		s.nonce++
		s.gas = append(s.gas, r.GasUsed)
		return 200, nil
	}
	side.res = drive(driveConfig{Name: "ganache", Clients: n, Warmup: cfg.warmup, Duration: cfg.duration, ServerPID: g.pid}, setup, op)
	fmt.Fprintln(log, side.res)
	for _, s := range senders {
		side.gas = append(side.gas, s.gas...)
	}
	if len(side.gas) == 0 {
		return side, fmt.Errorf("ganache: no record stored; first error: %s", side.res.FirstErr)
	}
	return side, nil
}

// binaryPut fills b (20 bytes) from two random words.
func binaryPut(b []byte, x, y uint64) {
	for i := range b {
		if i < 8 {
			b[i] = byte(x >> (8 * i))
		} else {
			b[i] = byte(y >> (8 * (i - 8)))
		}
	}
}

// gatewaySide is what the fhirgate run measured: creates, and the
// anchoring transactions that covered them.
type gatewaySide struct {
	res         *Result
	records     int    // Patients created (acknowledged) while the window's leaves were logged, warm-up included
	leaves      uint64 // log leaves anchored by those checkpoints (versions and AuditEvents)
	anchors     int    // anchoring transactions
	anchorGas   uint64 // their gas, summed from the receipts
	fromSize    uint64 // anchored tree size before the load
	toSize      uint64 // first anchored tree size holding the last record
	anchorDelay time.Duration
}

// checkpointJSON is one entry of GET /anchor/checkpoints.
type checkpointJSON struct {
	TreeSize    uint64 `json:"treeSize"`
	PrevSize    uint64 `json:"prevSize"` // the checkpoint its consistency proof starts from
	TxHash      string `json:"txHash"`
	BlockNumber uint64 `json:"blockNumber"`
}

// chained says whether cps are every checkpoint from the one after
// from up to to: each proof starts where the previous checkpoint ends.
func chained(cps []checkpointJSON, from, to uint64) bool {
	prev := from
	for _, c := range cps {
		if c.PrevSize != prev {
			return false
		}
		prev = c.TreeSize
	}
	return prev == to
}

// checkpointsAfter lists the anchored checkpoints with tree sizes in
// (after, upTo], oldest first.
func checkpointsAfter(ctx context.Context, root string, after, upTo uint64) ([]checkpointJSON, error) {
	var out []checkpointJSON
	for {
		status, body, _, err := httpJSON(ctx, "GET", fmt.Sprintf("%s/anchor/checkpoints?after=%d&limit=1000", root, after), "", "", nil)
		if err != nil {
			return nil, err
		}
		if status != 200 {
			return nil, fmt.Errorf("GET /anchor/checkpoints: HTTP %d: %s", status, truncate(string(body), 300))
		}
		var page struct {
			Checkpoints []checkpointJSON `json:"checkpoints"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, err
		}
		for _, c := range page.Checkpoints {
			if c.TreeSize > upTo {
				return out, nil
			}
			out = append(out, c)
			after = c.TreeSize
		}
		if len(page.Checkpoints) < 1000 {
			return out, nil
		}
	}
}

// latestAnchored is the tree size of the newest anchored checkpoint (0:
// none yet).
func latestAnchored(ctx context.Context, root string) (uint64, error) {
	status, body, _, err := httpJSON(ctx, "GET", root+"/anchor/checkpoints?before=latest&limit=1", "", "", nil)
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, fmt.Errorf("GET /anchor/checkpoints: HTTP %d: %s", status, truncate(string(body), 300))
	}
	var page struct {
		Checkpoints []checkpointJSON `json:"checkpoints"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}
	if len(page.Checkpoints) == 0 {
		return 0, nil
	}
	return page.Checkpoints[0].TreeSize, nil
}

// waitProof polls GET [base]/Patient/id/_history/1/$proof until the
// version is anchored and returns the tree size of the checkpoint that
// anchors it.
func waitProof(ctx context.Context, base, token, id string) (uint64, error) {
	u := strings.TrimSuffix(base, "/") + "/Patient/" + id + "/_history/1/$proof"
	var size uint64
	err := poll(ctx, func() (bool, error) {
		status, body, _, err := httpJSON(ctx, "GET", u, token, "", nil)
		if err != nil {
			return false, err
		}
		switch status {
		case 202:
			time.Sleep(200 * time.Millisecond) // fewer audited polls
			return false, nil
		case 200:
			var p struct {
				Checkpoint struct {
					TreeSize uint64 `json:"treeSize"`
				} `json:"checkpoint"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				return false, err
			}
			size = p.Checkpoint.TreeSize
			return true, nil
		}
		return false, fmt.Errorf("GET $proof: HTTP %d: %s", status, truncate(string(body), 300))
	})
	return size, err
}

// runGatewaySide starts the gateway with its chain's JSON-RPC on a free
// port, anchors a first record, drives creates like the suite's create
// phase, then creates one more record and waits until it is anchored.
// The anchoring transactions from the checkpoint before the load to the
// one holding that last record are what the load cost on chain: their
// gas (from the receipts, over JSON-RPC) is divided by the records
// created and by the leaves they anchored.
func runGatewaySide(cfg ganacheConfig, work string, log io.Writer) (*gatewaySide, error) {
	bin := filepath.Join(work, "gateway")
	id, err := copyBinary(cfg.gateway, bin)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "gateway: %s\n", id)
	data := filepath.Join(work, "gateway-data")
	args := append([]string{"--eth-listen=127.0.0.1:0"}, cfg.gatewayArgs...)
	gw, err := startGateway(bin, data, filepath.Join(work, "gateway.log"), args)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	tok, err := gw.token(bin)
	if err != nil {
		return nil, err
	}
	root, err := serverRoot(gw.base)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.anchorWait)
	defer cancel()
	status, body, _, err := httpJSON(ctx, "GET", root+"/.well-known/fhirgate", "", "", nil)
	if err != nil || status != 200 {
		return nil, fmt.Errorf("GET /.well-known/fhirgate: %d %v", status, err)
	}
	var info gatewayInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, err
	}
	if info.RPC == "" {
		return nil, errors.New("the gateway serves no JSON-RPC (/.well-known/fhirgate has no rpc): -gateway-args must not turn --eth-listen off")
	}
	ec, err := dialEth(info.RPC, 4)
	if err != nil {
		return nil, err
	}
	defer ec.Close()

	// A first record, anchored, so that the load's checkpoints all carry
	// consistency proofs (the first checkpoint on a fresh contract does
	// not).
	pool := patientPool(cfg.seed, cfg.pool)
	first, err := createResource(ctx, gw.base, tok, "Patient", pool[0])
	if err != nil {
		return nil, err
	}
	if _, err := waitProof(ctx, gw.base, tok, first); err != nil {
		return nil, fmt.Errorf("first record: %w", err)
	}
	side := &gatewaySide{}
	if side.fromSize, err = latestAnchored(ctx, root); err != nil {
		return nil, err
	}

	cc := crudConfig{base: gw.base, token: tok, clients: cfg.gwClients, warmup: cfg.warmup, duration: cfg.duration,
		pool: cfg.pool, seed: cfg.seed, serverPID: gw.pid}
	res, ids, err := runCreate(cc, "fhirgate", log)
	if err != nil {
		return nil, err
	}
	side.res = res
	ctx, cancel = context.WithTimeout(context.Background(), cfg.anchorWait)
	defer cancel()
	// The last record: once it is anchored, so is every record before it.
	// (Each create's AuditEvent is written before its answer.)
	loadEnd := time.Now()
	last, err := createResource(ctx, gw.base, tok, "Patient", pool[1%len(pool)])
	if err != nil {
		return nil, err
	}
	if side.toSize, err = waitProof(ctx, gw.base, tok, last); err != nil {
		return nil, fmt.Errorf("last record: %w", err)
	}
	side.anchorDelay = time.Since(loadEnd)
	side.records = len(ids) + 1
	// Every checkpoint in between, confirmed: each one's consistency
	// proof starts at the previous one (one still unconfirmed would be
	// missing from the list and break the chain).
	var cps []checkpointJSON
	err = poll(ctx, func() (bool, error) {
		var err error
		cps, err = checkpointsAfter(ctx, root, side.fromSize, side.toSize)
		return err == nil && chained(cps, side.fromSize, side.toSize), err
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoints from tree size %d to %d (%d listed): %w", side.fromSize, side.toSize, len(cps), err)
	}
	for _, c := range cps {
		r, err := ec.TransactionReceipt(ctx, common.HexToHash(c.TxHash))
		if err != nil {
			return nil, fmt.Errorf("receipt of anchor %d (%s): %w", c.TreeSize, c.TxHash, err)
		}
		side.anchorGas += r.GasUsed
		side.anchors++
	}
	side.leaves = side.toSize - side.fromSize
	fmt.Fprintf(log, "fhirgate: %d records in %d anchoring transactions (%d gas) covering %d leaves (tree %d → %d); last record anchored %.1f s after the load\n",
		side.records, side.anchors, side.anchorGas, side.leaves, side.fromSize, side.toSize, side.anchorDelay.Seconds())
	return side, nil
}

func runGanache(cfg ganacheConfig, stdout, stderr io.Writer) error {
	if err := os.MkdirAll(cfg.work, 0o700); err != nil {
		return err
	}
	work, err := os.MkdirTemp(cfg.work, "fhirbench-ganache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	started := time.Now()
	loadBefore := loadAvg()
	var gs []*ganacheSide
	for _, n := range cfg.senders {
		g, err := runGanacheSide(cfg, n, work, stderr)
		if err != nil {
			return err
		}
		gs = append(gs, g)
	}
	var fs *gatewaySide
	gwGo := ""
	if cfg.gateway != "" {
		if fs, err = runGatewaySide(cfg, work, stderr); err != nil {
			return err
		}
		gwGo = goVersionOf(cfg.gateway)
	}
	var b strings.Builder
	writeGanacheReport(&b, cfg, gs, fs, ganacheInfo{started: started, took: time.Since(started), loadBefore: loadBefore, loadAfter: loadAvg(), gatewayGo: gwGo})
	fmt.Fprint(stdout, b.String())
	if cfg.out != "" {
		return os.WriteFile(cfg.out, []byte(b.String()), 0o644)
	}
	return nil
}

type ganacheInfo struct {
	started               time.Time
	took                  time.Duration
	loadBefore, loadAfter string
	gatewayGo             string
}

func medianU64(xs []uint64) float64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return median(f)
}

func perOpUS(d time.Duration, ops int64) string {
	if ops <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(ops)/1e3)
}

// writeGanacheReport prints the comparison as Markdown (for
// BENCHMARKS.md).
func writeGanacheReport(w io.Writer, cfg ganacheConfig, runs []*ganacheSide, fs *gatewaySide, info ganacheInfo) {
	// The comparison takes Ganache at its best sender count.
	gs := runs[0]
	for _, g := range runs[1:] {
		if g.res.Rate() > gs.res.Rate() {
			gs = g
		}
	}
	var counts []string
	for _, n := range cfg.senders {
		counts = append(counts, strconv.Itoa(n))
	}
	fmt.Fprintf(w, "### fhirbench ganache, %s\n\n", info.started.UTC().Format("2006-01-02 15:04 MST"))
	cmdline := fmt.Sprintf("fhirbench ganache -dir %s -senders %s -duration %s -warmup %s", cfg.dir, strings.Join(counts, ","), cfg.duration, cfg.warmup)
	if len(cfg.ganacheArgs) > 0 {
		cmdline += fmt.Sprintf(" -ganache-args '%s'", strings.Join(cfg.ganacheArgs, " "))
	}
	if cfg.gateway != "" {
		cmdline += fmt.Sprintf(" -gateway %s -clients %d", cfg.gateway, cfg.gwClients)
		if len(cfg.gatewayArgs) > 0 {
			cmdline += fmt.Sprintf(" -gateway-args '%s'", strings.Join(cfg.gatewayArgs, " "))
		}
	}
	fmt.Fprintf(w, "- command: `%s`\n", cmdline)
	for _, l := range machineInfo(info.gatewayGo) {
		fmt.Fprintf(w, "- %s\n", l)
	}
	fmt.Fprintf(w, "- load average (1, 5, 15 min): %s before, %s after; run took %s\n", info.loadBefore, info.loadAfter, info.took.Round(time.Second))
	fmt.Fprintf(w, "- one transaction per record: %s (npm `ganache`, in memory, hardfork %s, instamine eager), `RecordStore.addRecord(recordId, contentHash, patient)` "+
		"(bench/ganache/RecordStore.sol: one new storage slot and one event per record; %s, optimizer on, evmVersion shanghai; deployment %d gas); "+
		"closed-loop senders (%s; a fresh Ganache for each count), each its own account and nonces: sign, `eth_sendRawTransaction`, poll the receipt; fixed gas limit (no `eth_estimateGas`); "+
		"the ratios below take the sender count with the most records/s\n",
		gs.version, ganacheHardfork, gs.solc, gs.deployGas, strings.Join(counts, ", "))
	if fs != nil {
		fmt.Fprintf(w, "- fhirgate: `%s` (embedded dev chain, mainnet gas rules), %d closed-loop clients creating Patients "+
			"(`POST /fhir/Patient`: validated, indexed, audited, synced, logged; as the suite's create phase); anchoring gas = the receipts of the %d anchoring transactions "+
			"from the checkpoint before the load (tree size %d) to the first one holding the last record (tree size %d; anchored %.1f s after the load ended), "+
			"divided by the %d records created in that span (warm-up included) and by the %d log leaves they anchored (versions and their AuditEvents: %.2f leaves per record)\n",
			strings.Join(append([]string{"gateway serve --eth-listen=127.0.0.1:0"}, cfg.gatewayArgs...), " "), cfg.gwClients, fs.anchors, fs.fromSize, fs.toSize, fs.anchorDelay.Seconds(), fs.records, fs.leaves,
			float64(fs.leaves)/float64(max(fs.records, 1)))
	}
	fmt.Fprintf(w, "\nMeasured %s after a %s warm-up; latency in ms (a record: until its receipt; fhirgate: until the 201); CPU per stored record; "+
		"\"other processes\": the share of the machine's CPU that processes other than fhirbench and the server used meanwhile (noise).\n\n", cfg.duration, cfg.warmup)
	fmt.Fprintln(w, "| approach | records/s | p50 | p99 | gas/record | tx/record | errors | server CPU/record | client CPU/record | other processes |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, g := range runs {
		r := g.res
		srv := "–"
		if r.CPU.serverOK {
			srv = perOpUS(r.CPU.server, r.OK) + " (Ganache)"
		}
		fmt.Fprintf(w, "| one transaction per record on Ganache (%s) | **%.0f** | %.2f | %.2f | **%.0f** | 1 | %d | %s | %s | %.0f %% |\n",
			plural(g.senders, "sender"), r.Rate(), ms(r.Hist.Quantile(0.5)), ms(r.Hist.Quantile(0.99)), medianU64(g.gas), r.Errors(), srv, perOpUS(r.CPU.self, r.OK), r.CPU.otherPct())
	}
	r, gasRec := gs.res, medianU64(gs.gas)
	if fs == nil {
		fmt.Fprintf(w, "\n(-gateway not given: the fhirgate side was not measured.)\n")
		return
	}
	f := fs.res
	fgas := float64(fs.anchorGas) / float64(max(fs.records, 1))
	srv := "–"
	if f.CPU.serverOK {
		srv = perOpUS(f.CPU.server, f.OK) + " (gateway)"
	}
	fmt.Fprintf(w, "| fhirgate: anchored log, checkpoints on chain (%d clients) | **%.0f** | %.2f | %.2f | **%.1f** | %.5f | %d | %s | %s | %.0f %% |\n",
		cfg.gwClients, f.Rate(), ms(f.Hist.Quantile(0.5)), ms(f.Hist.Quantile(0.99)), fgas, float64(fs.anchors)/float64(max(fs.records, 1)), f.Errors(), srv, perOpUS(f.CPU.self, f.OK), f.CPU.otherPct())
	fmt.Fprintf(w, "\n- records/s, fhirgate ÷ one transaction per record (%s): **%.2f**\n", plural(gs.senders, "sender"), f.Rate()/max(r.Rate(), 1e-9))
	if fgas > 0 {
		fmt.Fprintf(w, "- gas per record, one transaction per record ÷ fhirgate: **%.0f×** (fhirgate: %.0f gas per anchoring transaction, %.1f gas per log leaf, %.0f leaves per anchor)\n",
			gasRec/fgas, float64(fs.anchorGas)/float64(max(fs.anchors, 1)), float64(fs.anchorGas)/float64(max(fs.leaves, 1)), float64(fs.leaves)/float64(max(fs.anchors, 1)))
	}
	fmt.Fprintf(w, "- a Ganache record is a hash in an in-memory chain; a fhirgate record is the whole validated FHIR resource, synced to disk with its index entries, its AuditEvent and their log leaves before the answer\n")
	fmt.Fprintf(w, "\n_%s, %d CPUs, GOMAXPROCS %d._\n", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
}

// goVersionOf is the Go version a binary was built with ("" if unknown).
func goVersionOf(bin string) string {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return ""
	}
	return bi.GoVersion
}

// plural is "1 sender", "2 senders".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
