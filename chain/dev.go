package chain

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth"
	"github.com/ethereum/go-ethereum/eth/catalyst"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/eth/filters"
	gethlog "github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"
)

// DefaultListenAddr is the conventional address of a local dev chain's
// JSON-RPC endpoint (Ganache, Hardhat, Anvil, geth --dev, MetaMask's
// "Localhost 8545" network).
const DefaultListenAddr = "127.0.0.1:8545"

// DefaultBlockPeriod is the block period the gateway's zero-config dev
// chain runs with.
const DefaultBlockPeriod = time.Second

// ErrGenesisMismatch means DevConfig.DataDir holds a chain whose genesis is
// not DevGenesis (another chain's data, or data written by a go-ethereum
// version whose dev genesis differs).
var ErrGenesisMismatch = errors.New("chain: data directory holds a different chain")

// DevConfig configures the embedded dev chain. The zero value is an
// in-memory chain without external listener that mines a block as soon as
// a transaction is pending; the gateway's flags supply DefaultListenAddr
// and DefaultBlockPeriod.
type DevConfig struct {
	// DataDir holds the chain (go-ethereum's layout: DataDir/geth/chaindata
	// …) and a copy of the genesis (DataDir/genesis.json). Restarting on the
	// same DataDir continues the chain. Empty: in memory, lost on Close.
	// One process at a time: a second StartDev on the same DataDir fails.
	DataDir string

	// ListenAddr is host:port for JSON-RPC over HTTP and WebSocket (both on
	// the same port, as geth can), for wallets and tools. A missing host
	// (":8545") means the loopback address 127.0.0.1: the chain answers
	// other machines only when a host such as 0.0.0.0 is named. Port 0
	// picks a free port (see DevChain.HTTPURL). Empty: no listener; the
	// gateway uses the in-process client either way. Only the eth, net,
	// web3 and txpool namespaces are served over the network (no
	// admin/debug/dev).
	ListenAddr string

	// CORSOrigins are the browser origins whose pages may call the
	// JSON-RPC endpoint (CORS for HTTP, the Origin check for WebSocket).
	// Nil: LoopbackOrigins, pages served from this machine. Wallet
	// extensions and programs are not browsers' pages: they are not
	// subject to it. "*" lets every web site the operator's browser
	// visits use the node.
	CORSOrigins []string
	// VirtualHosts are the host names the HTTP endpoint answers to (the
	// Host header; requests naming an IP address are answered whatever
	// it is, as in geth). Nil: "localhost" only, which stops DNS
	// rebinding: a hostile site's name resolving to 127.0.0.1.
	VirtualHosts []string

	// GatewayKey is the gateway's own account: funded at genesis with
	// DevAccountBalance, the recipient of the blocks' fees, and what Key
	// returns. The DevMnemonic accounts are funded as well, for wallets
	// and tests, but their keys are public: they must hold no role. Nil:
	// Key returns dev account 0 (tests that need no protected account).
	//
	// A DataDir whose chain was made by an earlier version, when the
	// gateway signed with dev account 0, has a genesis without this
	// account: it keeps running on its own genesis, and Legacy reports
	// it, for the caller to fund the key and move the contracts' roles
	// to it.
	GatewayKey *ecdsa.PrivateKey

	// BlockPeriod is the time between blocks; it must be 0 or whole
	// seconds (block timestamps are in seconds). 0: on demand, a block as
	// soon as a transaction is pending (geth --dev.period 0, Hardhat's
	// automine) and whenever Mine is called. Blocks then only come with
	// transactions: waiting for more than one confirmation needs later
	// traffic (or Mine).
	BlockPeriod time.Duration

	// IdleBlocks, with a BlockPeriod, pauses empty blocks once this many
	// follow the last block with transactions; the next transaction
	// resumes them (0: a block every period, always). Each block costs
	// about 7 KB of disk (archive state), 0.6 GB a day at one per second;
	// an idle chain with IdleBlocks set stops growing, after giving recent
	// transactions IdleBlocks confirmations.
	IdleBlocks int

	// Manual disables automatic blocks altogether: only Mine makes blocks.
	// For tests that need transactions to wait in the pool.
	Manual bool

	// Logger, when set, receives go-ethereum's log records at GethLogLevel
	// and above. go-ethereum's logger is process-global: setting this
	// replaces it for the whole process. Nil leaves it alone (by default
	// go-ethereum discards its logs).
	Logger *slog.Logger
	// GethLogLevel filters Logger (zero value: slog.LevelInfo; geth logs
	// every block at Info, Warn is a quieter choice).
	GethLogLevel slog.Level

	// CacheMB is the memory budget of go-ethereum's database and trie
	// caches (0: 64 MB, plenty for a dev chain; go-ethereum's own default
	// is several GB).
	CacheMB int
}

// DevChain is a running embedded dev chain: a go-ethereum full node with a
// simulated beacon client, no peers, chain id DevChainID, genesis
// DevGenesis.
//
// Durability: each block's state is written with the block (hash-scheme
// archive) and the database is fsynced after every block, so a killed or
// crashed process reopens with every block it made. A new block is visible
// over RPC for the moment it takes to fsync before it is durable.
type DevChain struct {
	node        *node.Node
	eth         *eth.Ethereum
	beacon      *catalyst.SimulatedBeacon
	client      *Client
	accounts    []Account
	key         *ecdsa.PrivateKey
	legacy      bool
	genesisHash common.Hash
	period      time.Duration
	idleBlocks  int
	manual      bool
	dataDir     string
	httpURL     string
	wsURL       string

	sealMu    sync.Mutex // one block at a time (period loop, on-demand loop, Mine)
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// StartDev starts the embedded dev chain and returns once it serves
// requests. ctx bounds start-up only; the chain runs until Close.
func StartDev(ctx context.Context, cfg DevConfig) (*DevChain, error) {
	if cfg.BlockPeriod < 0 || cfg.BlockPeriod%time.Second != 0 {
		return nil, fmt.Errorf("chain: block period %v: must be 0 or whole seconds", cfg.BlockPeriod)
	}
	if cfg.CacheMB <= 0 {
		cfg.CacheMB = 64
	}
	accounts := DevAccounts()
	key := cfg.GatewayKey
	var genesis, legacy *core.Genesis
	if key == nil {
		key = accounts[0].Key
		genesis = DevGenesis()
	} else {
		genesis, legacy = DevGenesis(crypto.PubkeyToAddress(key.PublicKey)), DevGenesis()
	}
	feeRecipient := crypto.PubkeyToAddress(key.PublicKey)

	nodeCfg := node.Config{
		Name:                 "geth", // data in DataDir/geth: geth's own layout
		DataDir:              cfg.DataDir,
		P2P:                  p2p.Config{MaxPeers: 0, NoDiscovery: true, NoDial: true},
		HTTPTimeouts:         rpc.DefaultHTTPTimeouts,
		BatchRequestLimit:    node.DefaultConfig.BatchRequestLimit,
		BatchResponseMaxSize: node.DefaultConfig.BatchResponseMaxSize,
		HTTPBodyLimit:        node.DefaultConfig.HTTPBodyLimit,
		DBEngine:             "pebble",
	}
	if cfg.Logger != nil {
		l := gethlog.NewLogger(&levelHandler{min: cfg.GethLogLevel, h: cfg.Logger.Handler()})
		gethlog.SetDefault(l)
		nodeCfg.Logger = l
	}
	if cfg.ListenAddr != "" {
		host, portStr, err := net.SplitHostPort(cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("chain: listen address %q: %w", cfg.ListenAddr, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("chain: listen address %q: bad port", cfg.ListenAddr)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		origins := cfg.CORSOrigins
		if origins == nil {
			origins = LoopbackOrigins()
		}
		vhosts := cfg.VirtualHosts
		if vhosts == nil {
			vhosts = []string{"localhost"}
		}
		modules := []string{"eth", "net", "web3", "txpool"}
		nodeCfg.HTTPHost, nodeCfg.HTTPPort = host, port
		nodeCfg.WSHost, nodeCfg.WSPort = host, port
		nodeCfg.HTTPModules, nodeCfg.WSModules = modules, modules
		nodeCfg.HTTPCors = origins
		nodeCfg.HTTPVirtualHosts = vhosts
		nodeCfg.WSOrigins = wsOrigins(origins)
	}
	isLegacy := false
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("chain: %w", err)
		}
		g, err := chooseGenesis(cfg.DataDir, genesis, legacy)
		if err != nil {
			return nil, err
		}
		isLegacy = g != genesis
		genesis = g
	}

	stack, err := node.New(&nodeCfg)
	if err != nil {
		return nil, fmt.Errorf("chain: dev node: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			stack.Close()
		}
	}()

	ethCfg := ethconfig.Defaults
	ethCfg.Genesis = genesis
	ethCfg.NetworkId = DevChainID
	ethCfg.SyncMode = ethconfig.FullSync
	ethCfg.DatabaseCache = cfg.CacheMB / 2
	ethCfg.DatabaseHandles = 256
	ethCfg.TrieCleanCache = cfg.CacheMB / 4
	ethCfg.TrieDirtyCache = cfg.CacheMB / 8
	ethCfg.SnapshotCache = cfg.CacheMB / 8
	// No log index (filter maps): the readers of this chain's logs (the
	// consent follower, the anchor's watch) ask for the few blocks since
	// they last looked, which geth answers from the blocks' blooms; the
	// index copied a map at every block, a tenth of the gateway's
	// allocations under a search load that anchors every few seconds.
	ethCfg.LogNoHistory = true
	// Hash scheme in archive mode: every block's state is written to the
	// database as the block is inserted (and synced, see sealLocked), so a
	// killed process reopens with all its blocks. go-ethereum's default, the
	// path scheme, keeps recent state in memory until a clean shutdown;
	// without a consensus client to replay the blocks, a killed dev chain
	// reopened at genesis (measured).
	ethCfg.StateScheme = rawdb.HashScheme
	ethCfg.NoPruning = true
	ethCfg.Miner.GasCeil = DevGasLimit
	ethCfg.Miner.GasPrice = big.NewInt(1) // as geth --dev: any tip is enough
	ethCfg.Miner.PendingFeeRecipient = feeRecipient

	backend, err := eth.New(stack, &ethCfg)
	if err != nil {
		var mismatch *core.GenesisMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%w: %s (move %s away to start a fresh dev chain)", ErrGenesisMismatch, err, cfg.DataDir)
		}
		return nil, fmt.Errorf("chain: dev node: %w", err)
	}
	fs := filters.NewFilterSystem(backend.APIBackend, filters.Config{
		LogCacheSize:  ethCfg.FilterLogCacheSize,
		LogQueryLimit: ethCfg.LogQueryLimit,
	})
	stack.RegisterAPIs([]rpc.API{{Namespace: "eth", Service: filters.NewFilterAPI(fs)}})
	if err := stack.Start(); err != nil {
		return nil, fmt.Errorf("chain: dev node: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Period 0: the beacon's own loop stays off; blocks come from our loop
	// below, so Mine and automatic blocks never run concurrently.
	beacon, err := catalyst.NewSimulatedBeacon(0, feeRecipient, backend)
	if err != nil {
		return nil, fmt.Errorf("chain: simulated beacon: %w", err)
	}
	d := &DevChain{
		node:        stack,
		eth:         backend,
		beacon:      beacon,
		client:      newClient(stack.Attach(), "inproc://"),
		accounts:    accounts,
		key:         key,
		legacy:      isLegacy,
		genesisHash: backend.BlockChain().Genesis().Hash(),
		period:      cfg.BlockPeriod,
		idleBlocks:  cfg.IdleBlocks,
		manual:      cfg.Manual,
		dataDir:     cfg.DataDir,
		stop:        make(chan struct{}),
	}
	if cfg.ListenAddr != "" {
		d.httpURL = reachable(stack.HTTPEndpoint())
		d.wsURL = reachable(stack.WSEndpoint())
	}
	switch {
	case cfg.Manual:
	case cfg.BlockPeriod > 0:
		d.wg.Add(1)
		go d.periodLoop()
	default:
		d.wg.Add(1)
		go d.onDemandLoop()
	}
	ok = true
	return d, nil
}

// chooseGenesis returns the genesis of the chain in dir: g for a new
// chain (DataDir/genesis.json is written on first start), g or legacy
// (nil: none) as DataDir/genesis.json records. A chain made before
// genesis.json was kept is taken for legacy (or g without one). The
// database's own genesis check (in eth.New) backs this up.
func chooseGenesis(dir string, g, legacy *core.Genesis) (*core.Genesis, error) {
	path := filepath.Join(dir, "genesis.json")
	have, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		pick := g
		if _, err := os.Stat(filepath.Join(dir, "geth", "chaindata")); err == nil && legacy != nil {
			pick = legacy
		}
		return pick, writeGenesis(path, pick, nil)
	case err != nil:
		return nil, fmt.Errorf("chain: %w", err)
	}
	var stored core.Genesis
	if err := json.Unmarshal(have, &stored); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrGenesisMismatch, path, err)
	}
	h := stored.ToBlock().Hash()
	for _, c := range []*core.Genesis{g, legacy} {
		if c != nil && h == c.ToBlock().Hash() {
			return c, writeGenesis(path, c, have)
		}
	}
	return nil, fmt.Errorf("%w: %s describes another genesis (move %s away to start a fresh dev chain)", ErrGenesisMismatch, path, dir)
}

// writeGenesis writes g's JSON to path unless have holds it already.
func writeGenesis(path string, g *core.Genesis, have []byte) error {
	want, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("chain: genesis: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(have), want) {
		return nil
	}
	return writeFileAtomic(path, append(want, '\n'))
}

// LoopbackOrigins are the browser origins of pages served from this
// machine (any port): the default DevConfig.CORSOrigins.
func LoopbackOrigins() []string {
	return []string{"http://localhost", "http://localhost:*", "http://127.0.0.1", "http://127.0.0.1:*", "http://[::1]", "http://[::1]:*"}
}

// wsOrigins turns CORS origins into geth's WebSocket origin rules, which
// have no wildcard port: a rule without a port allows every port.
func wsOrigins(origins []string) []string {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		o = strings.TrimSuffix(o, ":*")
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// reachable rewrites a URL on a wildcard address (0.0.0.0, ::) to the
// loopback address, which a local wallet can dial.
func reachable(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	hostport, path, _ := strings.Cut(rest, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return u
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	out := scheme + "://" + net.JoinHostPort(host, port)
	if path != "" {
		out += "/" + path
	}
	return out
}

// Client returns the in-process client of the chain: no network, and it
// supports subscriptions. Do not Close it; Close the DevChain.
func (d *DevChain) Client() *Client { return d.client }

// HTTPURL is the JSON-RPC URL for wallets and tools ("" without listener).
func (d *DevChain) HTTPURL() string { return d.httpURL }

// WSURL is the JSON-RPC WebSocket URL ("" without listener).
func (d *DevChain) WSURL() string { return d.wsURL }

// ChainID returns DevChainID.
func (d *DevChain) ChainID() uint64 { return DevChainID }

// GenesisHash returns the hash of block 0.
func (d *DevChain) GenesisHash() common.Hash { return d.genesisHash }

// Accounts returns the funded dev accounts of DevMnemonic, for wallets
// and tests. Their keys are public: none of them is the gateway's.
func (d *DevChain) Accounts() []Account { return append([]Account(nil), d.accounts...) }

// Key returns the gateway's key on the dev chain: DevConfig.GatewayKey
// (dev account 0 without one).
func (d *DevChain) Key() *ecdsa.PrivateKey { return d.key }

// Legacy reports whether the chain predates DevConfig.GatewayKey: it was
// made by an earlier version (genesis without the gateway's account, whose
// contracts dev account 0 deployed and may still own).
func (d *DevChain) Legacy() bool { return d.legacy }

// BlockPeriod returns the configured period (0: on demand).
func (d *DevChain) BlockPeriod() time.Duration { return d.period }

// DataDir returns the chain's data directory ("" when in memory).
func (d *DevChain) DataDir() string { return d.dataDir }

// Head returns the current head block header.
func (d *DevChain) Head() *types.Header { return d.eth.BlockChain().CurrentBlock() }

// Mine seals a block now with the pending transactions (an empty block if
// there are none) and returns its header. Any mining mode.
func (d *DevChain) Mine(ctx context.Context) (*types.Header, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.sealMu.Lock()
	defer d.sealMu.Unlock()
	select {
	case <-d.stop:
		return nil, errors.New("chain: dev chain closed")
	default:
	}
	return d.sealLocked()
}

func (d *DevChain) sealLocked() (*types.Header, error) {
	bc := d.eth.BlockChain()
	before := bc.CurrentBlock().Number.Uint64()
	d.beacon.Commit() // logs (not returns) its errors
	head := bc.CurrentBlock()
	if head.Number.Uint64() <= before {
		return nil, fmt.Errorf("chain: sealing block %d failed", before+1)
	}
	// go-ethereum writes to its database without waiting for the disk, and
	// Pebble keeps up to 32 KB of such writes in its own buffer: a killed
	// process would lose the last few blocks. Flush and fsync the WAL so
	// that every block is on disk right after it is made.
	if err := d.eth.ChainDb().SyncKeyValue(); err != nil {
		return head, fmt.Errorf("chain: syncing block %d to disk: %w", head.Number, err)
	}
	return head, nil
}

func (d *DevChain) periodLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.period)
	defer t.Stop()
	empty := 0 // empty blocks since the last block with transactions
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if d.idleBlocks > 0 && empty >= d.idleBlocks {
			if pending, _ := d.eth.TxPool().Stats(); pending == 0 {
				continue
			}
		}
		d.sealMu.Lock()
		h, err := d.sealLocked() // errors are logged by go-ethereum; the next tick retries
		d.sealMu.Unlock()
		switch {
		case err != nil:
		case h.GasUsed == 0:
			empty++
		default:
			empty = 0
		}
	}
}

func (d *DevChain) onDemandLoop() {
	defer d.wg.Done()
	// The pool's event feed blocks its sender until every subscriber has
	// received, and sealing waits for the pool (TxPool.Sync): so the
	// subscription is drained by its own goroutine, which only kicks the
	// sealer, never waits for it.
	kick := make(chan struct{}, 1)
	ch := make(chan core.NewTxsEvent, 256)
	sub := d.eth.TxPool().SubscribeTransactions(ch, true)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer sub.Unsubscribe()
		for {
			select {
			case <-d.stop:
				return
			case <-sub.Err():
				return
			case <-ch:
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	}()
	for {
		select {
		case <-d.stop:
			return
		case <-kick:
		}
		d.sealMu.Lock()
		// Seal until nothing executable is left (a burst may need several
		// blocks); stop if a block cannot include what is pending.
		for i := 0; i < 64; i++ {
			select {
			case <-d.stop:
				d.sealMu.Unlock()
				return
			default:
			}
			d.eth.TxPool().Sync() //nolint:errcheck // only fails on shutdown
			if pending, _ := d.eth.TxPool().Stats(); pending == 0 {
				break
			}
			if _, err := d.sealLocked(); err != nil {
				break
			}
		}
		d.sealMu.Unlock()
	}
}

// Rewind makes block number the head again, for tests of reorg handling:
// later blocks leave the canonical chain and their transactions return to
// the pool; the next blocks (Mine, or the automatic ones) build a new
// branch on top of number. The pool must have no pending transactions.
func (d *DevChain) Rewind(ctx context.Context, number uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.sealMu.Lock()
	defer d.sealMu.Unlock()
	h := d.eth.BlockChain().GetCanonicalHash(number)
	if h == (common.Hash{}) {
		return fmt.Errorf("chain: rewind: no block %d", number)
	}
	if err := d.beacon.Fork(h); err != nil {
		return fmt.Errorf("chain: rewind to %d: %w", number, err)
	}
	return nil
}

// Close stops block production and the node, flushing the chain to disk.
func (d *DevChain) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		d.wg.Wait()
		d.sealMu.Lock() // wait for a Mine in progress
		d.client.Close()
		err := d.beacon.Stop()
		d.closeErr = errors.Join(err, d.node.Close())
		d.sealMu.Unlock()
	})
	return d.closeErr
}

// levelHandler filters an slog.Handler by level.
type levelHandler struct {
	min slog.Level
	h   slog.Handler
}

func (l *levelHandler) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}
func (l *levelHandler) Handle(ctx context.Context, r slog.Record) error { return l.h.Handle(ctx, r) }
func (l *levelHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return &levelHandler{min: l.min, h: l.h.WithAttrs(a)}
}
func (l *levelHandler) WithGroup(n string) slog.Handler {
	return &levelHandler{min: l.min, h: l.h.WithGroup(n)}
}
