#!/usr/bin/env bash
# profile-layers.sh BINARY PROFILE: a CPU (or -sample_index=alloc_objects
# for a heap profile: set SAMPLE=alloc_objects) profile of the gateway,
# summarized by layer: each sample's leaf function is put in the layer of
# its package, the shares added up. Leaf attribution says where the
# cycles are spent (a JSON parser called by the store counts as JSON).
set -euo pipefail
bin=$1 prof=$2
args=(-top -nodecount=100000)
[ -n "${SAMPLE:-}" ] && args+=(-sample_index="$SAMPLE")
go tool pprof "${args[@]}" "$bin" "$prof" 2>/dev/null | awk '
function layer(f) {
	if (f ~ /^runtime\.(gcBgMarkWorker|gcDrain|scanobject|greyobject|markBits|findObject|scanblock|wbBuf|bulkBarrier|gcMark|sweepone|(\(\*mspan\)|\(\*mheap\)|\(\*gcWork\)))/) return "Go GC"
	if (f ~ /^runtime\.(mallocgc|newobject|makeslice|growslice|mapassign|makemap|rawstring|concatstring|slicebytetostring|nextFreeFast|memclr|spanClass|heapSetType|(\(\*mcache\)))/) return "allocation"
	if (f ~ /syscall|^internal\/runtime\/syscall|^runtime\.(futex|epoll|netpoll|usleep|nanotime|write1|read)/) return "syscalls (fsync, network)"
	if (f ~ /^runtime\.|^internal\/runtime|^(cmpbody|memeqbody|aeshashbody|indexbytebody|countbody)$/) return "Go runtime (scheduler, maps, memmove, compare)"
	if (f ~ /cockroachdb\/(pebble|swiss)|golang\/snappy|klauspost\/compress/) return "Pebble (compression included)"
	if (f ~ /redis/) return "Redis client"
	if (f ~ /valyala\/fasthttp|gofiber/) return "HTTP (fasthttp, fiber)"
	if (f ~ /google\/fhir|protobuf|jsonformat/) return "validation (google/fhir, protobuf)"
	if (f ~ /fhirgate\/fhir\/fhirjson|encoding\/json|json/) return "JSON"
	if (f ~ /fhirgate\/fhir\/search/) return "search parameters, indexing"
	if (f ~ /fhirgate\/fhir\/rest/) return "REST handlers"
	if (f ~ /fhirgate\/fhir\b|fhirgate\/fhir\./) return "FHIR model, vouch"
	if (f ~ /fhirgate\/store/) return "store"
	if (f ~ /fhirgate\/audit/) return "audit"
	if (f ~ /fhirgate\/anchor|transparency-dev/) return "Merkle log, anchoring"
	if (f ~ /fhirgate\/(auth|policy)|golang-jwt|casbin/) return "tokens, decision"
	if (f ~ /crypto|sha256|ecdsa|secp256k1/) return "crypto"
	if (f ~ /prometheus/) return "metrics"
	if (f ~ /^(strconv|strings|bytes|unicode|time|sort|slices|maps|sync|internal|math|fmt|errors|context|bufio|io|os|net)/) return "Go standard library"
	return "other"
}
/^ *[0-9.]+[a-zµ]*s? +[0-9.]+%/ {
	v = $1; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-zµ]+$/, "", v)
	if (unit == "ms") v /= 1000; else if (unit == "us" || unit == "µs") v /= 1e6; else if (unit == "ns") v /= 1e9
	else if (unit == "min") v *= 60; else if (unit == "h") v *= 3600
	name = $6; for (i = 7; i <= NF; i++) name = name " " $i
	t[layer(name)] += v; total += v
}
END {
	if (total == 0) { print "no samples"; exit 1 }
	n = asorti(t, keys)
	for (k in t) order[k] = t[k]
	PROCINFO["sorted_in"] = "@val_num_desc"
	printf "| layer | share |\n|---|---:|\n"
	for (k in order) printf "| %s | %.1f %% |\n", k, 100 * order[k] / total
}'
