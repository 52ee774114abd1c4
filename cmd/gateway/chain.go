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
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
	"github.com/fhirgate/fhirgate/contracts/bindings"
)

// chainConfig is how the gateway reaches Ethereum: an embedded dev chain
// by default, or any node with --eth-rpc.
type chainConfig struct {
	rpc, listen, keyFile, publicRPC string
	blockPeriod                     time.Duration
	idleBlocks                      int
	anchorAddr, consentAddr         string
	confirmations                   uint64
}

// chainSetup is what the rest of the gateway uses of the chain.
type chainSetup struct {
	client     *chain.Client
	sender     *chain.Sender
	key        *ecdsa.PrivateKey
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
// (or uses the addresses given).
func setupChain(ctx context.Context, cfg chainConfig, data string, log *slog.Logger) (*chainSetup, error) {
	cs := &chainSetup{}
	if cfg.rpc == "" {
		dev, err := chain.StartDev(ctx, chain.DevConfig{
			DataDir:     filepath.Join(data, "chain"),
			ListenAddr:  cfg.listen,
			BlockPeriod: cfg.blockPeriod,
			IdleBlocks:  cfg.idleBlocks,
		})
		if err != nil {
			return nil, fmt.Errorf("embedded chain: %w", err)
		}
		cs.dev, cs.client, cs.key = dev, dev.Client(), dev.Key()
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
			log.Warn("the node runs the dev genesis: signing with the well-known development key (never on a real network)")
			cs.key = chain.DevAccounts()[0].Key
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
	sender, err := chain.NewSender(ctx, cs.client, cs.key, chain.SenderOptions{Confirmations: cfg.confirmations, Logger: log})
	if err != nil {
		cs.Close()
		return nil, err
	}
	cs.sender = sender
	book := chain.OpenDeployments(filepath.Join(data, "deployments.json"))
	deploy := func(given, name string, bin, args []byte) (common.Address, uint64, error) {
		if given != "" {
			if !common.IsHexAddress(given) {
				return common.Address{}, 0, fmt.Errorf("%s address %q is not an address", name, given)
			}
			return common.HexToAddress(given), 0, nil
		}
		d, err := book.DeployOnce(ctx, sender, name, bin, args)
		if err != nil {
			return common.Address{}, 0, fmt.Errorf("deploy %s: %w", name, err)
		}
		return d.Address, d.Block, nil
	}
	if cs.anchor, cs.anchorBlk, err = deploy(cfg.anchorAddr, "AuditAnchor", common.FromHex(bindings.AuditAnchorMetaData.Bin),
		bindings.NewAuditAnchor().PackConstructor(sender.Address())); err != nil {
		cs.Close()
		return nil, err
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
	log.Info("chain ready", "chainId", cs.info.ChainID, "AuditAnchor", cs.anchor.Hex(), "ConsentRegistry", cs.consent.Hex())
	return cs, nil
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
