package chain

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/store"
)

// ErrCodeChanged: a contract of that name was deployed on this chain with
// different init code (bytecode or constructor arguments). DeployOnce does
// not redeploy silently, since the old contract holds state; remove the
// entry (Deployments.Forget) or use another name to deploy the new code.
var ErrCodeChanged = errors.New("chain: deployed contract has different init code")

// Deployment is a contract deployed by DeployOnce.
type Deployment struct {
	Address      common.Address `json:"address"`
	TxHash       common.Hash    `json:"txHash"`
	Block        uint64         `json:"block,omitempty"`
	Deployer     common.Address `json:"deployer"`
	InitCodeHash common.Hash    `json:"initCodeHash"` // keccak256(bytecode ‖ constructor args)
	// Pending marks a deployment broadcast but not yet seen mined (so a
	// crash between broadcast and receipt does not deploy twice).
	Pending bool `json:"pending,omitempty"`
}

// ErrAddressDiffers: Record was given an address for a contract the book
// already records at another address on that chain.
var ErrAddressDiffers = errors.New("chain: the deployment book records another address for this contract")

// Deployments remembers deployed contract addresses, keyed by chain
// (chain id and genesis hash, so a fresh chain redeploys) and contract
// name. It lives in the store (OpenStoreDeployments), shared by every
// gateway replica on that store, or in a small JSON file (OpenDeployments,
// the format of earlier versions, imported into the store once):
//
//	{"1337:0x…genesis…": {"ConsentRegistry": {"address": "0x…", …}}}
//
// It is safe for concurrent use in one process; in the store, also by
// several processes (see DeployOnce).
type Deployments struct {
	path string       // "" = in memory (unless e is set)
	e    store.Engine // the book is in e
	// importPath is a deployments.json to import into e once.
	importPath string

	// leaseTTL and poll tune the wait for another replica's deployment.
	leaseTTL, poll time.Duration

	mu       sync.Mutex
	mem      map[string]map[string]Deployment
	imported bool
}

// OpenDeployments returns the deployment book stored at path (created on
// first deployment). path "" keeps it in memory only, for an in-memory dev
// chain.
func OpenDeployments(path string) *Deployments {
	return &Deployments{path: path, mem: map[string]map[string]Deployment{}}
}

// OpenStoreDeployments returns the deployment book kept in e, so that
// every replica on a shared store uses the contracts the first one
// deployed. importPath, if not "", is a deployments.json of an earlier
// version: its records are added to the store's (where the store has none
// for that chain and name) the first time the book is used, and a marker
// stops any later import. Nothing writes the file any more.
func OpenStoreDeployments(e store.Engine, importPath string) *Deployments {
	return &Deployments{e: e, importPath: importPath, leaseTTL: store.DefaultLeaseTTL, poll: 250 * time.Millisecond}
}

// DeploymentsExtension names the store extension of the book: records
// under "<chainKey>\x00<name>" as JSON, and the import marker.
const DeploymentsExtension = "chain-deployments"

var (
	deploymentsPrefix = store.ExtensionPrefix(DeploymentsExtension)
	// importedKey cannot meet a record: chain keys start with a digit.
	importedKey = append(bytes.Clone(deploymentsPrefix), "!imported"...)
)

func recordKey(chainKey, name string) []byte {
	k := append(bytes.Clone(deploymentsPrefix), chainKey...)
	return append(append(k, 0), name...)
}

// ChainKey identifies a chain in the deployment book: "chainId:genesisHash".
func ChainKey(ctx context.Context, c *Client) (string, error) {
	id, err := withRetry(ctx, defaultRetry, c.ChainID)
	if err != nil {
		return "", fmt.Errorf("chain: eth_chainId: %w", err)
	}
	g, err := withRetry(ctx, defaultRetry, func(ctx context.Context) (*types.Header, error) {
		return c.HeaderByNumber(ctx, common.Big0)
	})
	if err != nil {
		return "", fmt.Errorf("chain: genesis header: %w", err)
	}
	return fmt.Sprintf("%d:%s", id, g.Hash().Hex()), nil
}

// All returns the deployments recorded for c's chain, by name.
func (d *Deployments) All(ctx context.Context, c *Client) (map[string]Deployment, error) {
	key, err := ChainKey(ctx, c)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.importOnce(ctx); err != nil {
		return nil, err
	}
	recs, err := d.all(ctx, key)
	if err != nil {
		return nil, err
	}
	out := map[string]Deployment{}
	for n, dep := range recs {
		if !dep.Pending {
			out[n] = dep
		}
	}
	return out, nil
}

// Forget removes the record of name on c's chain, so that the next
// DeployOnce deploys it again.
func (d *Deployments) Forget(ctx context.Context, c *Client, name string) error {
	key, err := ChainKey(ctx, c)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.importOnce(ctx); err != nil {
		return err
	}
	if d.e != nil {
		var b store.Batch
		b.Delete(recordKey(key, name))
		if err := d.e.Apply(ctx, &b); err != nil {
			return fmt.Errorf("chain: deployments: %w", err)
		}
		return nil
	}
	book, err := d.load()
	if err != nil {
		return err
	}
	delete(book[key], name)
	return d.save(book)
}

// Record records addr as the contract name on c's chain, for a contract
// deployed by someone else (the operator gives its address), unless the
// book has a record of name there already: then it returns that record,
// with ErrAddressDiffers if it names another address. In the store the
// record is created conditionally: of replicas recording at once, the
// first stands.
func (d *Deployments) Record(ctx context.Context, c *Client, name string, addr common.Address) (Deployment, error) {
	key, err := ChainKey(ctx, c)
	if err != nil {
		return Deployment{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.importOnce(ctx); err != nil {
		return Deployment{}, err
	}
	for range 4 {
		rec, ok, err := d.get(ctx, key, name)
		if err != nil {
			return Deployment{}, err
		}
		if ok {
			if rec.Address != addr {
				return rec, fmt.Errorf("%w: %s at %s, not %s", ErrAddressDiffers, name, rec.Address.Hex(), addr.Hex())
			}
			return rec, nil
		}
		rec = Deployment{Address: addr}
		if d.e == nil {
			return rec, d.put(ctx, key, name, rec, nil)
		}
		v, err := json.Marshal(rec)
		if err != nil {
			return Deployment{}, err
		}
		var b store.Batch
		b.Require(recordKey(key, name), nil)
		b.Set(recordKey(key, name), v)
		if err := d.e.Apply(ctx, &b); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrUnknownOutcome) {
			return Deployment{}, fmt.Errorf("chain: deployments: %w", err)
		}
		// Read back what stands.
	}
	return Deployment{}, fmt.Errorf("chain: deployments: %s keeps changing", name)
}

// DeployOnce deploys bytecode with ABI-encoded constructorArgs from s,
// unless this book already records a contract of that name on s's chain
// with code at its address, and returns the deployment. The contract is
// redeployed when its recorded address has no code (the chain was reset).
// Init code different from the recorded one fails with ErrCodeChanged.
// The deployment waits for s's confirmations.
//
// In the store, replicas starting together on an empty store deploy once:
// each first looks for a record with code; if there is none, it campaigns
// for a lease (store.Lease, one per chain and name). The holder deploys
// (every record it writes is fenced by the lease, the pending one before
// the transaction is broadcast) and the others wait, polling, until the
// record appears. If the holder dies, another takes the lease over after
// its TTL and adopts the pending deployment (waits for its transaction)
// rather than deploying again. A holder whose Sender may not send now (a
// gated Sender whose gate another replica holds) gives the lease up and
// waits like the others.
func (d *Deployments) DeployOnce(ctx context.Context, s *Sender, name string, bytecode, constructorArgs []byte) (Deployment, error) {
	if len(bytecode) == 0 {
		return Deployment{}, fmt.Errorf("chain: deploy %s: empty bytecode", name)
	}
	c := s.Client()
	key, err := ChainKey(ctx, c)
	if err != nil {
		return Deployment{}, err
	}
	initCode := append(append([]byte(nil), bytecode...), constructorArgs...)
	codeHash := crypto.Keccak256Hash(initCode)

	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.importOnce(ctx); err != nil {
		return Deployment{}, err
	}
	if d.e == nil {
		return d.deploy(ctx, s, key, name, initCode, codeHash, nil)
	}
	lease := store.NewLease(d.e, deployLeaseName(key, name), store.NewHolderID("deploy-"), store.LeaseOptions{TTL: d.leaseTTL})
	waiting := false
	for {
		// Recorded with code: nothing to do, no lease needed.
		rec, ok, err := d.get(ctx, key, name)
		if err != nil {
			return Deployment{}, err
		}
		if ok && !rec.Pending {
			code, err := withRetry(ctx, defaultRetry, func(ctx context.Context) ([]byte, error) {
				return c.CodeAt(ctx, rec.Address, nil)
			})
			if err != nil {
				return Deployment{}, fmt.Errorf("chain: eth_getCode %s: %w", name, err)
			}
			if len(code) > 0 {
				if rec.InitCodeHash != codeHash && rec.InitCodeHash != (common.Hash{}) {
					return rec, fmt.Errorf("%w: %s at %s", ErrCodeChanged, name, rec.Address.Hex())
				}
				return rec, nil
			}
		}
		held, err := lease.Acquire(ctx)
		if err != nil && !errors.Is(err, store.ErrUnknownOutcome) {
			return Deployment{}, fmt.Errorf("chain: deploy %s: %w", name, err)
		}
		// A lost answer: the next round reads the lease and knows.
		if held {
			dep, err := d.deployLeased(ctx, s, lease, key, name, initCode, codeHash)
			if !errors.Is(err, errNotNow) {
				return dep, err
			}
		}
		if !waiting {
			s.log.Info("chain: waiting for another replica to deploy", "name", name)
			waiting = true
		}
		select {
		case <-ctx.Done():
			return Deployment{}, fmt.Errorf("chain: waiting for another replica to deploy %s: %w", name, ctx.Err())
		case <-time.After(d.poll + time.Duration(mrand.Int64N(int64(d.poll)))):
		}
	}
}

// deployLeaseName names the lease of deploying name on the chain key.
func deployLeaseName(key, name string) string { return "chain-deploy/" + key + "/" + name }

// errNotNow: the lease was lost, or the Sender may not send now: wait for
// whoever can.
var errNotNow = errors.New("chain: deploy: not this replica's turn")

// deployLeased deploys while holding lease, renewing it meanwhile, and
// gives it up at the end.
func (d *Deployments) deployLeased(ctx context.Context, s *Sender, lease *store.Lease, key, name string, initCode []byte, codeHash common.Hash) (Deployment, error) {
	kctx, stop := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() { defer close(kept); lease.Keep(kctx, nil) }()
	defer func() { stop(); <-kept }()
	dep, err := d.deploy(ctx, s, key, name, initCode, codeHash, lease)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotHeld) {
		return dep, fmt.Errorf("%w: %w", errNotNow, err)
	}
	return dep, err
}

// deploy deploys unless the record stands (d.mu held; in the store, with
// lease held: every write is fenced by it).
func (d *Deployments) deploy(ctx context.Context, s *Sender, key, name string, initCode []byte, codeHash common.Hash, lease *store.Lease) (Deployment, error) {
	rec, ok, err := d.get(ctx, key, name)
	if err != nil {
		return Deployment{}, err
	}
	if ok {
		done, err := d.check(ctx, s, key, name, rec, lease)
		if err != nil {
			return Deployment{}, err
		}
		if done != nil {
			if done.InitCodeHash != codeHash && done.InitCodeHash != (common.Hash{}) {
				return *done, fmt.Errorf("%w: %s at %s", ErrCodeChanged, name, done.Address.Hex())
			}
			return *done, nil
		}
	}
	receipt, err := s.Transact(ctx, TxRequest{Data: initCode, BeforeSend: func(tx *types.Transaction) error {
		rec := Deployment{
			Address:      crypto.CreateAddress(s.Address(), tx.Nonce()),
			TxHash:       tx.Hash(),
			Deployer:     s.Address(),
			InitCodeHash: codeHash,
			Pending:      true,
		}
		return d.put(ctx, key, name, rec, lease)
	}})
	if err != nil {
		return Deployment{}, fmt.Errorf("chain: deploy %s: %w", name, err)
	}
	rec = Deployment{
		Address:      receipt.ContractAddress,
		TxHash:       receipt.TxHash,
		Block:        receipt.BlockNumber.Uint64(),
		Deployer:     s.Address(),
		InitCodeHash: codeHash,
	}
	if err := d.put(ctx, key, name, rec, lease); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// The lease was taken over after the broadcast: the new holder
			// found the pending record and completes it. The contract is
			// this one either way.
			return rec, nil
		}
		return Deployment{}, err
	}
	return rec, nil
}

// check decides whether a recorded deployment stands: it returns the
// (possibly completed) record, or nil to deploy again.
func (d *Deployments) check(ctx context.Context, s *Sender, key, name string, rec Deployment, lease *store.Lease) (*Deployment, error) {
	c := s.Client()
	if rec.Pending {
		// Broadcast before a crash or error: if the node still knows the
		// transaction, wait for it.
		if _, _, err := c.TransactionByHash(ctx, rec.TxHash); err == nil {
			wctx, cancel := context.WithTimeout(ctx, s.opts.StuckAfter)
			r, err := s.waitHash(wctx, rec.TxHash)
			cancel()
			if err == nil {
				rec.Address, rec.Block = r.ContractAddress, r.BlockNumber.Uint64()
			}
		}
	}
	code, err := withRetry(ctx, defaultRetry, func(ctx context.Context) ([]byte, error) {
		return c.CodeAt(ctx, rec.Address, nil)
	})
	if err != nil {
		return nil, fmt.Errorf("chain: eth_getCode %s: %w", name, err)
	}
	if len(code) == 0 {
		s.log.Warn("chain: recorded contract has no code, redeploying", "name", name, "address", rec.Address)
		return nil, nil
	}
	if rec.Pending {
		rec.Pending = false
		if err := d.put(ctx, key, name, rec, lease); err != nil {
			return nil, err
		}
	}
	return &rec, nil
}

// waitHash waits for a transaction of unknown origin with s's options.
func (s *Sender) waitHash(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return waitMined(ctx, s.c, s.opts, func() []common.Hash { return []common.Hash{h} }, nil)
}

// get returns the record of name on the chain key (d.mu held).
func (d *Deployments) get(ctx context.Context, key, name string) (Deployment, bool, error) {
	if d.e == nil {
		book, err := d.load()
		if err != nil {
			return Deployment{}, false, err
		}
		rec, ok := book[key][name]
		return rec, ok, nil
	}
	v, err := d.e.Get(ctx, recordKey(key, name))
	if errors.Is(err, store.ErrNotFound) {
		return Deployment{}, false, nil
	}
	if err != nil {
		return Deployment{}, false, fmt.Errorf("chain: deployments: %w", err)
	}
	var rec Deployment
	if err := json.Unmarshal(v, &rec); err != nil {
		return Deployment{}, false, fmt.Errorf("chain: deployments: record of %s: %w", name, err)
	}
	return rec, true, nil
}

// all returns every record on the chain key, pending ones included.
func (d *Deployments) all(ctx context.Context, key string) (map[string]Deployment, error) {
	if d.e == nil {
		book, err := d.load()
		if err != nil {
			return nil, err
		}
		return maps.Clone(book[key]), nil
	}
	out := map[string]Deployment{}
	p := recordKey(key, "")
	var derr error
	err := d.e.Scan(ctx, store.PrefixRange(p), func(k, v []byte) bool {
		var rec Deployment
		if derr = json.Unmarshal(v, &rec); derr != nil {
			return false
		}
		out[string(k[len(p):])] = rec
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("chain: deployments: %w", err)
	}
	return out, nil
}

// put writes a record (d.mu held), in the store fenced by lease if set.
func (d *Deployments) put(ctx context.Context, key, name string, rec Deployment, lease *store.Lease) error {
	if d.e == nil {
		book, err := d.load()
		if err != nil {
			return err
		}
		if book[key] == nil {
			book[key] = map[string]Deployment{}
		}
		book[key][name] = rec
		return d.save(book)
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var b store.Batch
	if lease != nil {
		lease.Fence(&b)
	}
	b.Set(recordKey(key, name), v)
	if err := d.e.Apply(ctx, &b); err != nil {
		return fmt.Errorf("chain: deployments: %w", err)
	}
	return nil
}

// importOnce adds the records of d.importPath to the store's, once per
// store (d.mu held). Records the store has win; a pending one is imported
// as it is (DeployOnce adopts it).
func (d *Deployments) importOnce(ctx context.Context) error {
	if d.e == nil || d.imported || d.importPath == "" {
		return nil
	}
	data, err := os.ReadFile(d.importPath)
	if errors.Is(err, os.ErrNotExist) {
		d.imported = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("chain: deployments: %w", err)
	}
	book := map[string]map[string]Deployment{}
	if err := json.Unmarshal(data, &book); err != nil {
		return fmt.Errorf("chain: deployments %s: %w", d.importPath, err)
	}
	for range 4 {
		if _, err := d.e.Get(ctx, importedKey); err == nil {
			d.imported = true
			return nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("chain: deployments: %w", err)
		}
		var b store.Batch
		b.Require(importedKey, nil)
		b.Set(importedKey, []byte(d.importPath))
		for key, recs := range book {
			for name, rec := range recs {
				k := recordKey(key, name)
				if _, err := d.e.Get(ctx, k); err == nil {
					continue
				} else if !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("chain: deployments: %w", err)
				}
				v, err := json.Marshal(rec)
				if err != nil {
					return err
				}
				b.Require(k, nil)
				b.Set(k, v)
			}
		}
		if err := d.e.Apply(ctx, &b); err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrUnknownOutcome) {
			return fmt.Errorf("chain: deployments: import %s: %w", d.importPath, err)
		}
		// Applied, or another replica wrote meanwhile: look again.
	}
	return fmt.Errorf("chain: deployments: import %s: the store keeps changing", d.importPath)
}

func (d *Deployments) load() (map[string]map[string]Deployment, error) {
	if d.path == "" {
		return d.mem, nil
	}
	data, err := os.ReadFile(d.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]map[string]Deployment{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("chain: deployments: %w", err)
	}
	book := map[string]map[string]Deployment{}
	if err := json.Unmarshal(data, &book); err != nil {
		return nil, fmt.Errorf("chain: deployments %s: %w", d.path, err)
	}
	return book, nil
}

func (d *Deployments) save(book map[string]map[string]Deployment) error {
	if d.path == "" {
		d.mem = book
		return nil
	}
	data, err := json.MarshalIndent(book, "", "  ")
	if err != nil {
		return fmt.Errorf("chain: deployments: %w", err)
	}
	return writeFileAtomic(d.path, append(data, '\n'))
}

// writeFileAtomic replaces path with data durably: temp file, fsync,
// rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("chain: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("chain: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	if dh, err := os.Open(dir); err == nil {
		dh.Sync() //nolint:errcheck // best effort
		dh.Close()
	}
	return nil
}
