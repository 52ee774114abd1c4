#!/usr/bin/env bash
# gateway import against the transaction-Bundle ingest path (BENCHMARKS.md,
# "Import"; issue 16's bar: >= 10,000 resources/s of Synthea NDJSON and
# >= 0.8x the transaction ingest measured in the same run).
#
# Each round, on fresh gateways (Pebble, embedded chain):
#   tx       fhirbench load -mode transaction (Bundles of 100, 32 clients)
#   import   gateway import of the same data set as NDJSON (fhirbench ndjson -shape load)
#   synthea  gateway import of Synthea-shaped NDJSON (fhirbench ndjson -shape synthea)
#   ordered  gateway import of the load data set with ids in write order
#            (fhirbench ndjson -ordered-ids: as time-ordered as the ids the
#            gateway gives in tx, where the NDJSON's are random UUIDs)
# Rounds are interleaved; the CPU seconds of the client and the gateway are printed.
#
# Build first (from the repository root):
#   go build -o /tmp/fbimp/ ./cmd/gateway ./cmd/fhirbench
# then: bash bench/import.sh 2>&1 | tee /tmp/fbimp/import.out
# Knobs: FB (/tmp/fbimp), N (100000 resources), SYN (100 Synthea patients,
# about 1,000 resources each), ROUNDS (3), C (32: import --concurrency), B (100: import --batch),
# KINDS ("tx import synthea"; add "ordered").
set -u
FB=${FB:-/tmp/fbimp}
N=${N:-100000}
SYN=${SYN:-100}
ROUNDS=${ROUNDS:-3}
C=${C:-32}
B=${B:-100}
KINDS=${KINDS:-tx import synthea}
PORT=18600
cd "$FB"
[ -d nd-load ] || ./fhirbench ndjson -out nd-load -n "$N" >/dev/null
[ -d nd-ord ] || ./fhirbench ndjson -out nd-ord -n "$N" -ordered-ids >/dev/null
[ -d nd-syn ] || ./fhirbench ndjson -out nd-syn -n "$SYN" -shape synthea >/dev/null
echo "load data: $(cat nd-load/*.ndjson | wc -l) resources; synthea: $(cat nd-syn/*.ndjson | wc -l) resources"

cpu() { awk '{print ($14+$15)/100}' /proc/$1/stat; }

start() { # start a fresh gateway; sets GW and T
  rm -rf "data-$1"
  ./gateway serve --data "data-$1" --addr 127.0.0.1:$PORT --eth-listen= --log-format text >"gw-$1.out" 2>"gw-$1.err" &
  GW=$!
  until curl -sf http://127.0.0.1:$PORT/readyz >/dev/null; do sleep 0.2; done
  T=$(./gateway token --data "data-$1" --scope 'system/*.cruds' --ttl 2h)
}
stop() { kill "$GW"; wait "$GW" 2>/dev/null; }

for r in $(seq 1 "$ROUNDS"); do
  for kind in $KINDS; do
    echo "== round $r $kind  $(uptime)"
    start "$kind"
    c0=$(cpu "$GW")
    TIMEFORMAT="client CPU %U user %S sys, %R s"
    case $kind in
    tx) time ./fhirbench load -base http://127.0.0.1:$PORT/fhir -token "$T" -n "$N" -mode transaction -clients 32 -batch 100 -progress 0 2>&1 | grep -E '^load:|tx-' ;;
    import) time ./gateway import --url http://127.0.0.1:$PORT/fhir --token "$T" --state "state-$r-$kind" --concurrency "$C" --batch "$B" --progress 0 nd-load 2>&1 | tail -1 ;;
    ordered) time ./gateway import --url http://127.0.0.1:$PORT/fhir --token "$T" --state "state-$r-$kind" --concurrency "$C" --batch "$B" --progress 0 nd-ord 2>&1 | tail -1 ;;
    synthea) time ./gateway import --url http://127.0.0.1:$PORT/fhir --token "$T" --state "state-$r-$kind" --concurrency "$C" --batch "$B" --progress 0 nd-syn 2>&1 | tail -1 ;;
    esac
    echo "gateway CPU $(echo "$(cpu "$GW") - $c0" | bc) s"
    stop
  done
done
