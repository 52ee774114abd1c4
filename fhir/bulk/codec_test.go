package bulk

import (
	"bytes"
	"strings"
	"testing"
)

func TestBlockCodec(t *testing.T) {
	ndjson := []byte(strings.Repeat(`{"resourceType":"Observation","id":"x","status":"final","code":{"text":"glucose"}}`+"\n", 500))
	z := compress(nil, ndjson)
	if len(z)*4 > len(ndjson) {
		t.Errorf("%d bytes kept for %d: less than 4x smaller", len(z), len(ndjson))
	}
	tests := []struct {
		name, enc string
		stored    []byte
		want      []byte
		err       string
	}{
		{"zstd", encZstd, z, ndjson, ""},
		{"as served (older jobs)", "", ndjson, ndjson, ""},
		{"unknown encoding", "lz4", z, nil, `"lz4": not known`},
		{"corrupt block", encZstd, z[:len(z)/2], nil, "does not decompress"},
		{"not zstd at all", encZstd, ndjson, nil, "does not decompress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decompress(tt.enc, []byte("prefix:"), tt.stored)
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("err %v, want %q", err, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case !bytes.Equal(got, append([]byte("prefix:"), tt.want...)):
				t.Errorf("content differs (%d bytes, want %d)", len(got), len(tt.want)+7)
			}
		})
	}
}

// FuzzDecompress: a stored block, however damaged, gives an error or
// bytes, never a panic or more than maxBlock.
func FuzzDecompress(f *testing.F) {
	f.Add(compress(nil, []byte(`{"resourceType":"Patient"}`+"\n")))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := decompress(encZstd, nil, b)
		if err == nil && len(out) > maxBlock {
			t.Fatalf("%d bytes out", len(out))
		}
	})
}
