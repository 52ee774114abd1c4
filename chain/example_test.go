package chain_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/fhirgate/fhirgate/chain"
)

// How the gateway wires the chain layer in dev mode (zero config).
func Example_devMode() {
	ctx := context.Background()
	dataDir := "data"
	dev, err := chain.StartDev(ctx, chain.DevConfig{
		DataDir:     filepath.Join(dataDir, "chain"),
		ListenAddr:  chain.DefaultListenAddr, // --eth-listen
		BlockPeriod: chain.DefaultBlockPeriod,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	for i, a := range dev.Accounts() { // serve prints them at start
		fmt.Printf("(%d) %s %s\n", i, a.Address.Hex(), a.PrivateKeyHex())
	}
	sender, err := chain.NewSender(ctx, dev.Client(), dev.Key(), chain.SenderOptions{})
	if err != nil {
		log.Fatal(err)
	}
	book := chain.OpenDeployments(filepath.Join(dataDir, "deployments.json"))
	var bytecode, args []byte // from the contracts package
	dep, err := book.DeployOnce(ctx, sender, "AuditAnchor", bytecode, args)
	if err != nil {
		log.Fatal(err)
	}
	info := dev.Info(map[string]common.Address{"AuditAnchor": dep.Address}) // GET /.well-known/fhirgate
	_ = info
}

// How the gateway wires the chain layer against a real network.
func Example_rpcMode() {
	ctx := context.Background()
	c, err := chain.Dial(ctx, "wss://node.example/ws") // --eth-rpc
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	pass, err := chain.Passphrase("FHIRGATE_ETH_KEY_PASSWORD", os.Getenv("FHIRGATE_ETH_KEY_PASSWORD_FILE"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := chain.LoadKeyFile("gateway-key.json", pass) // --eth-key-file
	if err != nil {
		log.Fatal(err)
	}
	sender, err := chain.NewSender(ctx, c, key, chain.SenderOptions{
		Confirmations: 3,
		PollInterval:  time.Second, // remote providers rate-limit; WebSocket heads wake Wait anyway
		StuckAfter:    2 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = sender
}
