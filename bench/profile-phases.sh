#!/usr/bin/env bash
# CPU profiles of the gateway under load, one per kind of request (issue
# 18, "profiles first"), summarized by layer with bench/profile-layers.sh.
#
#   bash bench/profile-phases.sh DIR OUT          # create, read, update
#   DATA=/path/to/loaded-1M bash bench/profile-phases.sh DIR OUT   # and the date and string searches
#   CRUD=0 DATA=... bash bench/profile-phases.sh DIR OUT           # the searches only
#
# DIR holds the gateway and fhirbench binaries to profile (build them
# from the commit under test: go build -o DIR/ ./cmd/gateway ./cmd/fhirbench).
# crud: a fresh gateway (Pebble, embedded chain), `fhirbench crud` at C
# clients (64) with phases of WARM+DUR seconds (2+12); an 8 s profile is
# taken from the 3rd second of each phase's measured time. Searches: a
# gateway over DATA (a data set `fhirbench load -n 1000000 -mode
# transaction` made; a gateway of a newer store format upgrades it in
# place, so profile the older binary first), `fhirbench search` of each
# kind for DUR seconds, profiled the same way. Profiles and summaries go
# to OUT. Run two binaries one after the other on a quiet machine.
set -u
DIR=$1
OUT=$2
C=${C:-64}
WARM=${WARM:-2}
DUR=${DUR:-12}
PORT=${PORT:-18690}
DBG=${DBG:-18691}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
B=http://127.0.0.1:$PORT/fhir

start() { # data dir
	"$DIR/gateway" serve --data "$1" --addr 127.0.0.1:$PORT --eth-listen= --debug-addr 127.0.0.1:$DBG >>"$OUT/gateway.log" 2>&1 &
	PID=$!
	until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.3; done
	T=$("$DIR/gateway" token --data "$1" --scope 'system/*.cruds' --ttl 2h)
}
profile() { # name, seconds to wait first
	sleep "$2"
	curl -s -o "$OUT/$1.cpu" "http://127.0.0.1:$DBG/debug/pprof/profile?seconds=8"
	bash "$HERE/profile-layers.sh" "$DIR/gateway" "$OUT/$1.cpu" >"$OUT/$1.layers.md"
}

if [ "${CRUD:-1}" = 1 ]; then
rm -rf "$OUT/crud-data"
start "$OUT/crud-data"
"$DIR/fhirbench" crud -base "$B" -token "$T" -clients "$C" -warmup "${WARM}s" -duration "${DUR}s" -pid "$PID" >"$OUT/crud.out" 2>&1 &
LOAD=$!
P=$((WARM + DUR))
profile create $((WARM + 3))
profile read $((P - 8))
profile update $((P - 8))
wait $LOAD
kill $PID; wait $PID 2>/dev/null
fi

if [ -n "${DATA:-}" ]; then
	start "$DATA"
	for k in date string; do
		"$DIR/fhirbench" search -base "$B" -token "$T" -n 1000000 -kinds "$k" -clients 32 -warmup "${WARM}s" -duration "${DUR}s" -pid "$PID" >"$OUT/search-$k.out" 2>&1 &
		LOAD=$!
		profile "search-$k" $((WARM + 3))
		wait $LOAD
	done
	kill $PID; wait $PID 2>/dev/null
fi
cat "$OUT/crud.out" "$OUT"/search-*.out 2>/dev/null | grep -vE '^\s*$'
