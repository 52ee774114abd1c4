#!/usr/bin/env bash
# Rebuilds contracts/ from source and fails if the result differs from what
# is committed: artifacts/ (pinned solcjs from package-lock.json) and the
# abigen v2 bindings (abigen from the go-ethereum version in go.mod).
# Needs only Go and Node/npm. CI runs it as: bash contracts/check.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

fail() {
	echo "contracts/check.sh: $*" >&2
	exit 1
}
command -v node >/dev/null || fail "node not found"
command -v npm >/dev/null || fail "npm not found"
command -v go >/dev/null || fail "go not found"

# Keep what is there now, to compare after regenerating.
before=$(mktemp -d)
trap 'rm -rf "$before"' EXIT
mkdir -p artifacts bindings
cp -R artifacts "$before/artifacts"
cp -R bindings "$before/bindings"

echo "contracts/check.sh: npm ci" >&2
npm ci --no-audit --no-fund --loglevel=error
echo "contracts/check.sh: compiling" >&2
node build.mjs
echo "contracts/check.sh: generating bindings" >&2
go generate ./bindings
go build ./...

status=0
if ! diff -rq "$before/artifacts" artifacts; then
	echo "contracts/check.sh: artifacts/ differ from the build of src/ (files listed above)" >&2
	status=1
fi
if ! diff -rq "$before/bindings" bindings; then
	echo "contracts/check.sh: bindings/ differ from what abigen generates (files listed above)" >&2
	status=1
fi

# In a git checkout, everything must also be committed, new files included.
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	if ! git -C "$here" diff --exit-code --stat -- . ||
		[ -n "$(git -C "$here" ls-files --others --exclude-standard -- .)" ]; then
		git -C "$here" status --short -- . >&2
		echo "contracts/check.sh: contracts/ has changes that are not committed (listed above)" >&2
		status=1
	fi
fi

if [ "$status" -ne 0 ]; then
	fail "FAILED: run 'cd contracts && npm ci && node build.mjs && go generate ./bindings' and commit the result"
fi
echo "contracts/check.sh: OK, artifacts and bindings match their sources" >&2
