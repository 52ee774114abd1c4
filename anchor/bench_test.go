package anchor

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkInclusionProof is the cost of one inclusion proof in a tree of
// 100,000 leaves: the stored nodes' point reads plus the lower nodes
// recomputed from the log (go test ./anchor -bench InclusionProof).
func BenchmarkInclusionProof(b *testing.B) {
	ctx := testCtx(b)
	st := openStore(b, b.TempDir())
	newWriter(st).createMany(b, ctx, 100_000)
	l, err := Open(ctx, Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	size, err := l.Sync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.InclusionProof(ctx, rand.Uint64N(size), size); err != nil {
			b.Fatal(err)
		}
	}
}
