#!/usr/bin/env bash
# Before/after of the audit trail for several writers (BENCHMARKS.md §7,
# "Audit events from several writers"): two gateways from the same tree,
# "before" with audit/ as of c4f7218 (one writer, its own layout), "after"
# as committed (store.Journal), in $FB (/tmp/fb15):
#   git worktree add --detach /tmp/before HEAD && cd /tmp/before && git checkout c4f7218 -- audit/ &&
#     rm -f audit/shared_test.go audit/record.go && go build -o $FB/gateway-before ./cmd/gateway
#   go build -o $FB/gateway-after ./cmd/gateway && go build -o $FB/fhirbench ./cmd/fhirbench
set -u
cd "${FB:-/tmp/fb15}"
rm -rf data-before data-after
./gateway-before serve --addr 127.0.0.1:18611 --data data-before --eth-listen= --log-format text --log-level warn > before.log 2>&1 &
PB=$!
./gateway-after serve --addr 127.0.0.1:18612 --data data-after --eth-listen= --log-format text --log-level warn > after.log 2>&1 &
PA=$!
for i in $(seq 90); do curl -sf http://127.0.0.1:18611/readyz >/dev/null && curl -sf http://127.0.0.1:18612/readyz >/dev/null && break; sleep 1; done
TB=$(./gateway-before token --data data-before --scope 'system/*.cruds fhirgate/identity-linking' --ttl 4h)
TA=$(./gateway-after token --data data-after --scope 'system/*.cruds fhirgate/identity-linking' --ttl 4h)
for round in 1 2 3; do
  echo "=== round $round raw-http"; ./fhirbench raw-http -clients 64 -duration 10s 2>&1 | tail -3
  echo "=== round $round before practitioner-read"; ./fhirbench practitioner-read -base http://127.0.0.1:18611/fhir -token "$TB" -clients 64 -duration 15s -pid $PB -system-same=false 2>&1 | tail -6
  echo "=== round $round after practitioner-read"; ./fhirbench practitioner-read -base http://127.0.0.1:18612/fhir -token "$TA" -clients 64 -duration 15s -pid $PA -system-same=false 2>&1 | tail -6
done
kill $PB $PA
