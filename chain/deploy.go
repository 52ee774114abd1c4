package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
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

// Deployments remembers deployed contract addresses in a small JSON file,
// keyed by chain (chain id and genesis hash, so a fresh chain redeploys)
// and contract name:
//
//	{"1337:0x…genesis…": {"ConsentRegistry": {"address": "0x…", …}}}
//
// It is safe for concurrent use in one process.
type Deployments struct {
	path string // "" = in memory
	mu   sync.Mutex
	mem  map[string]map[string]Deployment
}

// OpenDeployments returns the deployment book stored at path (created on
// first deployment). path "" keeps it in memory only, for an in-memory dev
// chain.
func OpenDeployments(path string) *Deployments {
	return &Deployments{path: path, mem: map[string]map[string]Deployment{}}
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
	book, err := d.load()
	if err != nil {
		return nil, err
	}
	out := map[string]Deployment{}
	for n, dep := range book[key] {
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
	book, err := d.load()
	if err != nil {
		return err
	}
	delete(book[key], name)
	return d.save(book)
}

// DeployOnce deploys bytecode with ABI-encoded constructorArgs from s,
// unless this book already records a contract of that name on s's chain
// with code at its address, and returns the deployment. The contract is
// redeployed when its recorded address has no code (the chain was reset).
// Init code different from the recorded one fails with ErrCodeChanged.
// The deployment waits for s's confirmations.
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
	book, err := d.load()
	if err != nil {
		return Deployment{}, err
	}
	if rec, ok := book[key][name]; ok {
		done, err := d.check(ctx, s, key, name, rec, book)
		if err != nil {
			return Deployment{}, err
		}
		if done != nil {
			if done.InitCodeHash != codeHash {
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
		return d.put(book, key, name, rec)
	}})
	if err != nil {
		return Deployment{}, fmt.Errorf("chain: deploy %s: %w", name, err)
	}
	rec := Deployment{
		Address:      receipt.ContractAddress,
		TxHash:       receipt.TxHash,
		Block:        receipt.BlockNumber.Uint64(),
		Deployer:     s.Address(),
		InitCodeHash: codeHash,
	}
	if err := d.put(book, key, name, rec); err != nil {
		return Deployment{}, err
	}
	return rec, nil
}

// check decides whether a recorded deployment stands: it returns the
// (possibly completed) record, or nil to deploy again.
func (d *Deployments) check(ctx context.Context, s *Sender, key, name string, rec Deployment, book map[string]map[string]Deployment) (*Deployment, error) {
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
		if err := d.put(book, key, name, rec); err != nil {
			return nil, err
		}
	}
	return &rec, nil
}

// waitHash waits for a transaction of unknown origin with s's options.
func (s *Sender) waitHash(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	return waitMined(ctx, s.c, s.opts, func() []common.Hash { return []common.Hash{h} }, nil)
}

func (d *Deployments) put(book map[string]map[string]Deployment, key, name string, rec Deployment) error {
	if book[key] == nil {
		book[key] = map[string]Deployment{}
	}
	book[key][name] = rec
	return d.save(book)
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
