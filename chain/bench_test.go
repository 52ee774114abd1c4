package chain

import (
	"context"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// Start-up time of the embedded chain: on a fresh data dir (genesis is
// written), on a data dir with a few hundred blocks, and in memory.
//
//	go test ./chain -run '^$' -bench StartDev -benchtime 10x
func BenchmarkStartDev(b *testing.B) {
	ctx := context.Background()
	warmDir := b.TempDir()
	d, err := StartDev(ctx, DevConfig{DataDir: warmDir})
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSender(ctx, d.Client(), DevAccounts()[1].Key, SenderOptions{Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	to := common.HexToAddress("0xcc")
	for i := 0; i < 300; i++ {
		if _, err := s.Transact(ctx, TxRequest{To: &to, Value: big.NewInt(1)}); err != nil {
			b.Fatal(err)
		}
	}
	d.Close()

	for _, bc := range []struct {
		name string
		dir  func() string
	}{
		{"cold", func() string { return b.TempDir() }},
		{"warm", func() string { return warmDir }},
		{"memory", func() string { return "" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d, err := StartDev(ctx, DevConfig{DataDir: bc.dir(), ListenAddr: "127.0.0.1:0"})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				d.Close()
				b.StartTimer()
			}
		})
	}
}
