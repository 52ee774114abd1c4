package bindings_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
)

// The committed bytecode must run on Ganache 7.9.2, which stops at
// shanghai: no opcode that a later fork introduced may appear, and the
// metadata must say the compiler targeted shanghai.
func TestArtifactsTargetShanghai(t *testing.T) {
	shanghai, err := vm.LookupInstructionSet(params.Rules{IsMerge: true, IsShanghai: true})
	if err != nil {
		t.Fatal(err)
	}
	osaka, err := vm.LookupInstructionSet(params.Rules{IsMerge: true, IsShanghai: true, IsCancun: true, IsPrague: true, IsOsaka: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"AuditAnchor", "ConsentRegistry"} {
		for _, ext := range []string{".bin", ".bin-runtime"} {
			hex, err := os.ReadFile("../artifacts/" + name + ext)
			if err != nil {
				t.Fatal(err)
			}
			code := common.FromHex(string(hex))
			// Both end with the runtime's CBOR metadata, whose length is the
			// last two bytes: data, not code.
			n := int(code[len(code)-2])<<8 | int(code[len(code)-1])
			code = code[:len(code)-2-n]
			for pc := 0; pc < len(code); pc++ {
				op := vm.OpCode(code[pc])
				if !shanghai[op].HasCost() && osaka[op].HasCost() {
					t.Errorf("%s%s: %s at %d is not in shanghai", name, ext, op, pc)
				}
				if op.IsPush() {
					pc += int(op - vm.PUSH0)
				}
			}
		}

		raw, err := os.ReadFile("../artifacts/" + name + ".metadata.json")
		if err != nil {
			t.Fatal(err)
		}
		var meta struct {
			Settings struct {
				EVMVersion string `json:"evmVersion"`
			} `json:"settings"`
		}
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		if meta.Settings.EVMVersion != "shanghai" {
			t.Errorf("%s compiled for %q, want shanghai", name, meta.Settings.EVMVersion)
		}
	}
}
