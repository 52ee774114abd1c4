package chain

import (
	"math/big"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// DevChainID is the chain id of the embedded dev chain: 1337, the id of
// `geth --dev`, of go-ethereum's simulated backend and of MetaMask's
// built-in "Localhost 8545" network. One id for the embedded chain, the
// docker-compose geth and the simulated backend in tests means EIP-712
// domains and EIP-155 signatures line up everywhere. (Hardhat's 31337 would
// need a custom network in MetaMask and differ from geth --dev.)
const DevChainID = 1337

// DevGasLimit is the block gas limit of the dev chain (mainnet's today).
const DevGasLimit = 60_000_000

// DevAccountBalance is the genesis balance of each dev account: 10,000
// ether, as in Hardhat and Anvil.
var DevAccountBalance = new(big.Int).Mul(big.NewInt(10_000), big.NewInt(params.Ether))

// DevGenesis returns the genesis of the embedded dev chain. It is a pure
// function of the go-ethereum version: go-ethereum's dev genesis
// (core.DeveloperGenesisBlock: chain id 1337, merged at genesis, system
// contracts, 1 gwei initial base fee) with
//
//   - mainnet's fork rules (see MainnetRules) instead of the dev config's
//     pre-release forks, so gas figures match mainnet;
//   - the DevAccountCount accounts of DevMnemonic funded with
//     DevAccountBalance each, and every address of funded (the gateway's
//     own account: see DevConfig.GatewayKey) with the same;
//   - a DevGasLimit block gas limit.
//
// The JSON encoding of the result is a valid `geth init` genesis file: a
// `geth --dev --datadir D` initialised with it runs the same chain.
// Without funded addresses the result is a pure function of the
// go-ethereum version (what `gateway dev-genesis` prints, and the genesis
// of embedded chains made before the gateway had a key of its own).
func DevGenesis(funded ...common.Address) *core.Genesis {
	g := core.DeveloperGenesisBlock(DevGasLimit, nil)
	g.Config = MainnetRules(g.Config)
	for _, a := range DevAccounts() {
		g.Alloc[a.Address] = types.Account{Balance: new(big.Int).Set(DevAccountBalance)}
	}
	for _, a := range funded {
		g.Alloc[a] = types.Account{Balance: new(big.Int).Set(DevAccountBalance)}
	}
	return g
}

// MainnetRules returns a copy of a merged-at-genesis chain config whose
// timestamp forks are exactly the ones go-ethereum's mainnet config
// schedules, all active from time 0, with mainnet's blob schedule.
//
// go-ethereum's dev config also switches on forks mainnet does not run yet
// (at v1.17.8: Bogota, which reprices state access, so a storage write
// costs about three times mainnet's gas); this clears them. At v1.17.8 the
// result is mainnet's current rules: Prague + Osaka (live on mainnet since
// December 2025) + the BPO1/BPO2 blob parameter forks. Osaka left gas
// pricing of ordinary contract code as Prague had it (it changed the MODEXP
// precompile and capped a transaction at 2^24 gas).
func MainnetRules(dev *params.ChainConfig) *params.ChainConfig {
	cfg := *dev
	out := reflect.ValueOf(&cfg).Elem()
	main := reflect.ValueOf(params.MainnetChainConfig).Elem()
	for i := 0; i < out.NumField(); i++ {
		f := out.Type().Field(i)
		if f.Type != reflect.TypeOf((*uint64)(nil)) || !strings.HasSuffix(f.Name, "Time") {
			continue
		}
		if main.Field(i).IsNil() {
			out.Field(i).Set(reflect.Zero(f.Type))
		} else {
			zero := uint64(0)
			out.Field(i).Set(reflect.ValueOf(&zero))
		}
	}
	bs := *params.MainnetChainConfig.BlobScheduleConfig
	cfg.BlobScheduleConfig = &bs
	return &cfg
}
