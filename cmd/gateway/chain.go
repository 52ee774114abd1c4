package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/fhirgate/fhirgate/anchor/ethanchor"
	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
	"github.com/fhirgate/fhirgate/store"
)

// chainConfig is how the gateway reaches Ethereum: an embedded dev chain
// by default, or any node with --eth-rpc.
type chainConfig struct {
	rpc, listen, keyFile, publicRPC string
	blockPeriod                     time.Duration
	idleBlocks                      int
	anchorAddr, consentAddr         string
	confirmations                   uint64
	// baseURL is the public FHIR base (--base-url): the portal's pages
	// come from its origin and call the embedded chain's RPC.
	baseURL string
}

// chainKeyFile is where the gateway keeps its own Ethereum account on a
// dev chain (the embedded one, or a geth --dev node with the dev genesis),
// relative to the data directory. On a real network the operator gives
// --eth-key-file instead.
const chainKeyFile = "keys/eth-gateway-key.json"

// chainSetup is what the rest of the gateway uses of the chain.
type chainSetup struct {
	client     *chain.Client
	sender     *chain.Sender
	key        *ecdsa.PrivateKey
	keyFile    string          // where key is kept ("" : --eth-key-file)
	dev        *chain.DevChain // nil with --eth-rpc
	info       chain.Info
	anchor     common.Address
	consent    common.Address
	anchorBlk  uint64 // deployment blocks (event searches start there)
	consentBlk uint64
}

func (c *chainSetup) Close() {
	if c.dev != nil {
		c.dev.Close()
	} else if c.client != nil {
		c.client.Close()
	}
}

// setupChain starts or dials the chain, and deploys the contracts once
// (or uses the addresses given). The contracts' addresses are kept in the
// store (db), so that every replica on a shared store uses the ones the
// first deployed or was given; a deployments.json in data (written by
// earlier versions) is imported once.
func setupChain(ctx context.Context, cfg chainConfig, data string, db store.Engine, log *slog.Logger) (*chainSetup, error) {
	cs := &chainSetup{}
	// devGenesis: the chain runs fhirgate's dev genesis, where the
	// development accounts' keys are public. The gateway then signs with
	// a key of its own, kept in the data directory, and takes the
	// AuditAnchor over from dev account 0 where an earlier version left
	// it with that account.
	devGenesis := false
	sopts := chain.SenderOptions{Confirmations: cfg.confirmations, Logger: log}
	if cfg.rpc == "" {
		key, created, err := chain.LoadOrCreateKeyFile(filepath.Join(data, chainKeyFile))
		if err != nil {
			return nil, fmt.Errorf("the gateway's chain key: %w", err)
		}
		origins, vhosts := rpcAccess(cfg.baseURL, cfg.publicRPC)
		dev, err := chain.StartDev(ctx, chain.DevConfig{
			DataDir:      filepath.Join(data, "chain"),
			ListenAddr:   cfg.listen,
			BlockPeriod:  cfg.blockPeriod,
			IdleBlocks:   cfg.idleBlocks,
			GatewayKey:   key,
			CORSOrigins:  origins,
			VirtualHosts: vhosts,
		})
		if errors.Is(err, chain.ErrGenesisMismatch) && created {
			return nil, fmt.Errorf("embedded chain: %w (its genesis funds another gateway key: was %s lost or replaced? restore it, or move %s away)",
				err, filepath.Join(data, chainKeyFile), filepath.Join(data, "chain"))
		}
		if err != nil {
			return nil, fmt.Errorf("embedded chain: %w", err)
		}
		cs.dev, cs.client, cs.key, cs.keyFile = dev, dev.Client(), dev.Key(), filepath.Join(data, chainKeyFile)
		devGenesis = true
		if dev.Legacy() {
			// Made by an earlier version: the genesis does not fund the
			// gateway's key, and dev account 0 deployed the contracts.
			log.Warn("the embedded chain predates the gateway's own key: funding it from the development accounts and taking the AuditAnchor over from dev account 0",
				"account", crypto.PubkeyToAddress(key.PublicKey).Hex())
			if _, err := chain.FundFromDevAccounts(ctx, cs.client, crypto.PubkeyToAddress(key.PublicKey), sopts); err != nil {
				dev.Close()
				return nil, err
			}
		}
		if host, _, err := net.SplitHostPort(cfg.listen); err == nil && host != "" {
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				log.Warn("the embedded chain's JSON-RPC answers other machines", "listen", cfg.listen)
			}
		}
	} else {
		c, err := chain.Dial(ctx, cfg.rpc)
		if err != nil {
			return nil, err
		}
		cs.client = c
		if cfg.keyFile == "" {
			// Only a node running the dev genesis (geth --dev initialised
			// with `gateway dev-genesis`, as docker-compose does) may be
			// used with the well-known development key: no real network
			// has that genesis.
			if !isDevChain(ctx, c) {
				c.Close()
				return nil, errors.New("--eth-rpc needs --eth-key-file (the gateway's keystore file)")
			}
			// One key for every replica of a shared store (kept there).
			key, err := chain.LoadOrCreateDevKey(ctx, db, filepath.Join(data, chainKeyFile))
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("the gateway's chain key: %w", err)
			}
			addr := crypto.PubkeyToAddress(key.PublicKey)
			log.Warn("the node runs the dev genesis (never a real network): the gateway signs with its own key, funded from the development accounts",
				"account", addr.Hex(), "keyFile", filepath.Join(data, chainKeyFile))
			if _, err := chain.FundFromDevAccounts(ctx, c, addr, sopts); err != nil {
				c.Close()
				return nil, err
			}
			cs.key, cs.keyFile = key, filepath.Join(data, chainKeyFile)
			devGenesis = true
		} else {
			pass, err := chain.Passphrase("FHIRGATE_ETH_KEY_PASSWORD", os.Getenv("FHIRGATE_ETH_KEY_PASSWORD_FILE"))
			if err == nil {
				cs.key, err = chain.LoadKeyFile(cfg.keyFile, pass)
			}
			if err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	sender, err := chain.NewSender(ctx, cs.client, cs.key, sopts)
	if err != nil {
		cs.Close()
		return nil, err
	}
	cs.sender = sender
	book := chain.OpenStoreDeployments(db, filepath.Join(data, "deployments.json"))
	deploy := func(given, name string, bin, args []byte) (common.Address, uint64, error) {
		if given != "" {
			flagName := map[string]string{"AuditAnchor": "--audit-anchor-address", "ConsentRegistry": "--consent-registry-address"}[name]
			if !common.IsHexAddress(given) {
				return common.Address{}, 0, fmt.Errorf("%s %q is not an address", flagName, given)
			}
			addr := common.HexToAddress(given)
			// Recorded, so that replicas started without the flag use it.
			d, err := book.Record(ctx, cs.client, name, addr)
			switch {
			case errors.Is(err, chain.ErrAddressDiffers) && store.IsShared(db):
				return common.Address{}, 0, fmt.Errorf("%s %s: the store records the %s at %s on this chain (deployed or given by the first replica); every replica must use the same contract: give that address, or none",
					flagName, addr.Hex(), name, d.Address.Hex())
			case errors.Is(err, chain.ErrAddressDiffers):
				log.Warn("using the contract given, not the one recorded", "name", name, "given", addr.Hex(), "recorded", d.Address.Hex())
				return addr, 0, nil
			case err != nil:
				return common.Address{}, 0, err
			}
			return addr, d.Block, nil
		}
		d, err := book.DeployOnce(ctx, sender, name, bin, args)
		if err != nil {
			return common.Address{}, 0, fmt.Errorf("deploy %s: %w", name, err)
		}
		return d.Address, d.Block, nil
	}
	dev0 := chain.DevAccounts()[0]
	adopted := false
	if devGenesis && cfg.anchorAddr == "" {
		// An earlier version deployed the AuditAnchor from dev account 0
		// (with itself as anchorer): other init code than the gateway's
		// key would deploy. Keep that contract, and its history.
		deps, err := book.All(ctx, cs.client)
		if err != nil {
			cs.Close()
			return nil, err
		}
		if d, ok := deps["AuditAnchor"]; ok && d.Deployer == dev0.Address {
			cs.anchor, cs.anchorBlk, adopted = d.Address, d.Block, true
		}
	}
	if !adopted {
		if cs.anchor, cs.anchorBlk, err = deploy(cfg.anchorAddr, "AuditAnchor", common.FromHex(bindings.AuditAnchorMetaData.Bin),
			bindings.NewAuditAnchor().PackConstructor(sender.Address())); err != nil {
			cs.Close()
			return nil, err
		}
	}
	if devGenesis {
		// The contract must be owned by and anchored from the gateway's
		// key, never by a development account whose key is public.
		changed, err := ethanchor.ClaimRoles(ctx, sender, cs.anchor, dev0.Key, sopts)
		if errors.Is(err, ethanchor.ErrRolesTaken) {
			cs.Close()
			return nil, fmt.Errorf("%w. The gateway will not anchor to a contract someone else controls: have its owner call setAnchorer(%s) and transferOwnership(%s), or start a fresh chain (move %s away; consents granted on the old chain are lost with it)",
				err, sender.Address().Hex(), sender.Address().Hex(), filepath.Join(data, "chain"))
		}
		if err != nil {
			cs.Close()
			return nil, err
		}
		if changed {
			log.Warn("the AuditAnchor's owner and anchorer are now the gateway's own account", "AuditAnchor", cs.anchor.Hex(), "account", sender.Address().Hex())
		}
	}
	if cs.consent, cs.consentBlk, err = deploy(cfg.consentAddr, "ConsentRegistry", common.FromHex(bindings.ConsentRegistryMetaData.Bin), nil); err != nil {
		cs.Close()
		return nil, err
	}
	contracts := map[string]common.Address{"AuditAnchor": cs.anchor, "ConsentRegistry": cs.consent}
	if cs.dev != nil {
		cs.info = cs.dev.Info(contracts)
	} else if cs.info, err = chain.NewInfo(ctx, cs.client, cfg.publicRPC, contracts); err != nil {
		cs.Close()
		return nil, err
	}
	if cfg.publicRPC != "" {
		cs.info.RPCURL = cfg.publicRPC
	}
	log.Info("chain ready", "chainId", cs.info.ChainID, "account", sender.Address().Hex(), "AuditAnchor", cs.anchor.Hex(), "ConsentRegistry", cs.consent.Hex())
	return cs, nil
}

// rpcAccess returns who may call the embedded chain's RPC from a browser:
// pages served from this machine and from the gateway's public origin
// (the portal and the verify page read the chain), and the host names it
// answers to (localhost, the public base's and the public RPC's).
func rpcAccess(baseURL, publicRPC string) (origins, vhosts []string) {
	origins, vhosts = chain.LoopbackOrigins(), []string{"localhost"}
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
		if o := u.Scheme + "://" + strings.ToLower(u.Host); !slices.Contains(origins, o) {
			origins = append(origins, o)
		}
	}
	for _, raw := range []string{baseURL, publicRPC} {
		if u, err := url.Parse(raw); err == nil && u.Hostname() != "" && net.ParseIP(u.Hostname()) == nil {
			if h := strings.ToLower(u.Hostname()); !slices.Contains(vhosts, h) {
				vhosts = append(vhosts, h)
			}
		}
	}
	return origins, vhosts
}

func orNone(s string) string {
	if s == "" {
		return "(no RPC listener)"
	}
	return s
}

// isDevChain reports whether the node runs fhirgate's dev genesis.
func isDevChain(ctx context.Context, c *chain.Client) bool {
	g, err := c.HeaderByNumber(ctx, big.NewInt(0))
	return err == nil && g.Hash() == chain.DevGenesis().ToBlock().Hash()
}

// devGenesis prints the dev chain's genesis for `geth init`: an external
// geth --dev node then runs the same chain as the embedded one (chain id
// 1337, the development accounts funded).
func devGenesis(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dev-genesis", stderr)
	if err := parse(fs, args); err != nil {
		fmt.Fprintf(stderr, "gateway dev-genesis: %v\n", err)
		return 2
	}
	b, err := json.MarshalIndent(chain.DevGenesis(), "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "gateway dev-genesis: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}
