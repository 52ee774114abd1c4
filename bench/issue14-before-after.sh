#!/usr/bin/env bash
# Interleaved before/after of issue 14 (BENCHMARKS.md section 7): the
# gateways and load tools built as that section says, in $FB (/tmp/fb).
set -u
cd "${FB:-/tmp/fb}"
rm -rf data-before data-after
./gateway-before serve --addr 127.0.0.1:18601 --data data-before --eth-listen= --log-format text --log-level warn > before.log 2>&1 &
PB=$!
./gateway-after serve --addr 127.0.0.1:18602 --data data-after --eth-listen= --log-format text --log-level warn > after.log 2>&1 &
PA=$!
for i in $(seq 60); do curl -sf http://127.0.0.1:18601/readyz >/dev/null && curl -sf http://127.0.0.1:18602/readyz >/dev/null && break; sleep 1; done
TB=$(./gateway-before token --data data-before --scope 'system/*.cruds' --ttl 4h)
TA=$(./gateway-after token --data data-after --scope 'system/*.cruds fhirgate/identity-linking' --ttl 4h)
for round in 1 2 3; do
  echo "=== round $round raw-http"; ./fhirbench-after raw-http -clients 64 -duration 15s 2>&1 | tail -4
  echo "=== round $round before practitioner-read"; ./fhirbench-before practitioner-read -base http://127.0.0.1:18601/fhir -token "$TB" -clients 64 -duration 15s -pid $PB 2>&1 | tail -6
  echo "=== round $round after practitioner-read"; ./fhirbench-after practitioner-read -base http://127.0.0.1:18602/fhir -token "$TA" -clients 64 -duration 15s -pid $PA 2>&1 | tail -6
  echo "=== round $round before crud"; ./fhirbench-before crud -base http://127.0.0.1:18601/fhir -token "$TB" -clients 64 -duration 15s -pid $PB 2>&1 | tail -6
  echo "=== round $round after crud"; ./fhirbench-after crud -base http://127.0.0.1:18602/fhir -token "$TA" -clients 64 -duration 15s -pid $PA 2>&1 | tail -6
done
kill $PB $PA
