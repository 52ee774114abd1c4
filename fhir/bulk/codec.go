package bulk

import (
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Output blocks are kept zstd-compressed, one frame a block. NDJSON of
// FHIR resources shrinks several times, and every byte a block saves is a
// byte the store does not put through its WAL, memtables and compactions:
// the write volume was most of an export's cost and of its memory
// (BENCHMARKS.md "Export"). Downloads decompress block by block.
const encZstd = "zstd"

// maxBlock bounds what one stored block may decompress to: a block is
// closed at BlockBytes, so it holds at most that plus one resource.
const maxBlock = 256 << 20

var codec = sync.OnceValues(func() (*zstd.Encoder, *zstd.Decoder) {
	// EncodeAll and DecodeAll are safe for concurrent use; each call
	// takes one of the coder's states (two encoders: one per export
	// worker by default).
	// A 1 MiB window: NDJSON repeats itself within a few resources, and
	// each of the encoder's states keeps a window of history in memory.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true),
		zstd.WithWindowSize(1<<20), zstd.WithEncoderConcurrency(2))
	if err != nil {
		panic(err) // only for invalid options
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxBlock), zstd.WithDecoderLowmem(true))
	if err != nil {
		panic(err)
	}
	return enc, dec
})

// compress appends block, compressed, to dst.
func compress(dst, block []byte) []byte {
	enc, _ := codec()
	return enc.EncodeAll(block, dst)
}

// decompress appends the content of a block kept as enc to dst.
func decompress(enc string, dst, b []byte) ([]byte, error) {
	switch enc {
	case "":
		return append(dst, b...), nil
	case encZstd:
		_, dec := codec()
		out, err := dec.DecodeAll(b, dst)
		if err != nil {
			return nil, fmt.Errorf("bulk: a stored block does not decompress: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("bulk: blocks kept as %q: not known to this gateway", enc)
}
