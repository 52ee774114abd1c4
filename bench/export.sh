#!/usr/bin/env bash
# $export of N resources (BENCHMARKS.md, "Export"): loads N synthetic
# resources (fhirbench load, transaction Bundles, as section 3 does) into
# a fresh gateway on Pebble, then runs one system-level $export as the
# loading client and reports: the export's wall time from kick-off to the
# manifest, resources written per second, and the gateway's RSS before
# the kick-off and its peak during the export (VmRSS sampled every 100
# ms, and VmHWM), and the gateway's CPU seconds during the export.
#
# Build first (from the repository root):
#   go build -o /tmp/fbexp/ ./cmd/gateway ./cmd/fhirbench
# then: bash bench/export.sh 100000 2>&1 | tee /tmp/fbexp/export-100k.out
# Knobs: FB (binaries, /tmp/fbexp), PORT (18660), C (load clients, 16),
# REUSE=1 (export the data a previous run of the same N loaded, without
# loading again), GWARGS (more `gateway serve` flags, e.g.
# "--block-cache-mb 128").
set -u
N=${1:-100000}
FB=${FB:-/tmp/fbexp}
PORT=${PORT:-18660}
C=${C:-16}
DATA=$FB/data-$N
BASE=http://127.0.0.1:$PORT/fhir
[ -n "${REUSE:-}" ] || { rm -rf "$DATA" && mkdir -p "$DATA"; }
# shellcheck disable=SC2086
"$FB/gateway" serve --data "$DATA" --addr 127.0.0.1:$PORT --eth-listen= ${GWARGS:-} >>"$DATA/gateway.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait 2>/dev/null' EXIT
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.5; done
T=$("$FB/gateway" token --data "$DATA" --scope 'system/*.cruds' --ttl 6h)
if [ -z "${REUSE:-}" ]; then
	"$FB/fhirbench" load -base "$BASE" -token "$T" -n "$N" -mode transaction -clients "$C" -data "$DATA" -pid $PID || exit 1
fi
sleep 5 # let the load's (or the start's) compactions settle
echo "gateway serve ${GWARGS:-}"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^go_memstats_heap_inuse_bytes|^process_resident' 
rss() { awk '/^VmRSS/ {print $2}' /proc/$PID/status; }
cpu() { awk '{print $14 + $15}' /proc/$PID/stat; }
TICK=$(getconf CLK_TCK)
RSS0=$(rss)
CPU0=$(cpu)
START=$(date +%s.%N)
LOC=$(curl -s -D - -o /dev/null -H "Authorization: Bearer $T" -H 'Prefer: respond-async' "$BASE/\$export" |
	awk 'tolower($1) == "content-location:" {print $2}' | tr -d '\r')
[ -n "$LOC" ] || { echo "kick-off failed"; exit 1; }
PEAK=$RSS0
while :; do
	CODE=$(curl -s -o "$DATA/manifest.json" -w '%{http_code}' -H "Authorization: Bearer $T" "$LOC")
	R=$(rss)
	[ "$R" -gt "$PEAK" ] && PEAK=$R
	[ "$CODE" = 202 ] || break
	sleep 0.1
done
END=$(date +%s.%N)
CPU1=$(cpu)
[ "$CODE" = 200 ] || { echo "status $CODE"; cat "$DATA/manifest.json"; exit 1; }
python3 - "$DATA/manifest.json" "$START" "$END" "$RSS0" "$PEAK" "$CPU0" "$CPU1" "$TICK" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
start, end = float(sys.argv[2]), float(sys.argv[3])
rss0, peak = int(sys.argv[4]), int(sys.argv[5])
cpu = (int(sys.argv[7]) - int(sys.argv[6])) / int(sys.argv[8])
n = sum(o["count"] for o in m["output"])
t = end - start
print(f"export: {n} resources in {len(m['output'])} files, {t:.1f} s from kick-off to manifest, "
      f"{n / t:,.0f} resources/s; gateway CPU {cpu:.1f} s ({n / cpu:,.0f} resources per CPU second)")
print(f"gateway RSS before kick-off {rss0 / 1024:.0f} MiB, peak during export {peak / 1024:.0f} MiB, growth {(peak - rss0) / 1024:.0f} MiB")
EOF
grep VmHWM /proc/$PID/status
# Download every file (the client's side), for the record.
START=$(date +%s.%N)
python3 -c 'import json,sys; [print(o["url"]) for o in json.load(open(sys.argv[1]))["output"]]' "$DATA/manifest.json" |
	while read -r U; do curl -s -H "Authorization: Bearer $T" "$U"; done | wc -lc
echo "download: $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$START" "$(date +%s.%N)") s"
du -sh "$DATA"
