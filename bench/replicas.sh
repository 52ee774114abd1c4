#!/usr/bin/env bash
# Gateway on Redis against the same gateway on Pebble, and two replicas
# against one (BENCHMARKS.md section 8, "Gateway on Redis"; issue 15's
# quality bars). Everything runs on this machine, in one run:
#
#   geth --dev (1 s blocks, `gateway dev-genesis`), redis-server (AOF,
#   appendfsync always, no RDB), gateway P on Pebble (--eth-rpc to that
#   geth), replicas R1 and R2 on that Redis (same geth, one --base-url).
#
# Rounds are interleaved (P, R1, R1+R2 in each round); each prints the
# load tool's lines and the CPU seconds every process took. Then the Redis
# round trips per create, read and search are counted with MONITOR over a
# known number of requests (sequential, then 64 at a time).
#
# Build first (from the repository root):
#   go build -o /tmp/fb15/ ./cmd/gateway ./cmd/fhirbench
#   go build -o /tmp/fb15/geth github.com/ethereum/go-ethereum/cmd/geth   # or cp bin/geth (internal/gethtest)
# then: bash bench/replicas.sh 2>&1 | tee /tmp/fb15/replicas.out
#
# Summary table: bash bench/replicas-summary.sh /tmp/fb15/replicas.out
# Knobs: FB (binaries, /tmp/fb15), ROUNDS (3; 0: only the round trips and
# Redis CPU per request), DUR (10s), WARM (2s), C (64),
# PHASES ("crud practitioner"), RT (1: count round trips; 0: skip),
# REDIS_ARGS (more redis-server options, e.g. "--auto-aof-rewrite-percentage 0":
# no automatic AOF rewrite, whose fork and child otherwise land in the
# Redis phases, since those are what doubles the AOF).
set -u
FB=${FB:-/tmp/fb15}
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-10s}
WARM=${WARM:-2s}
C=${C:-64}
PHASES=${PHASES:-crud practitioner}
RT=${RT:-1}
REDIS_ARGS=${REDIS_ARGS:-}
RUN=$FB/run
SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)/store/redis/scripts.go}
HALF=$((C / 2))
# Ports: geth 18640 (HTTP and WS) + 18641 (authrpc), Redis 18639, P 18631,
# R1 18632, R2 18633 (pprof on 1873x), the replicas' public base 18630
# (a load balancer's address; nothing listens there, the load tool talks
# to each replica directly).
GETHP=18640 REDISP=18639 PP=18631 R1P=18632 R2P=18633
LB=http://127.0.0.1:18630/fhir
STORE=redis://127.0.0.1:$REDISP/0
PREFIX=bench15:
SCOPE='system/*.cruds fhirgate/identity-linking'

rm -rf "$RUN" && mkdir -p "$RUN/redis"
cd "$FB" || exit 1
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

./gateway dev-genesis > "$RUN/genesis.json" || exit 1
./geth init --datadir "$RUN/geth" "$RUN/genesis.json" > "$RUN/geth-init.log" 2>&1 || { cat "$RUN/geth-init.log"; exit 1; }
./geth --dev --dev.period 1 --datadir "$RUN/geth" \
  --http --http.addr 127.0.0.1 --http.port $GETHP --http.api eth,net,web3,txpool \
  --ws --ws.addr 127.0.0.1 --ws.port $GETHP --ws.api eth,net,web3 \
  --authrpc.port 18641 --ipcdisable --nodiscover --maxpeers 0 --verbosity 2 > "$RUN/geth.log" 2>&1 &
GETH=$!; PIDS+=($GETH)
redis-server --port $REDISP --bind 127.0.0.1 --dir "$RUN/redis" --daemonize no --logfile "" \
  --appendonly yes --appendfsync always --save "" --latency-monitor-threshold 1 $REDIS_ARGS > "$RUN/redis.log" 2>&1 &
REDIS=$!; PIDS+=($REDIS)
for i in $(seq 60); do
  redis-cli -p $REDISP ping 2>/dev/null | grep -q PONG &&
    curl -sf -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' http://127.0.0.1:$GETHP > /dev/null && break
  sleep 1
done

ready() { for i in $(seq 120); do curl -sf "http://127.0.0.1:$1/readyz" > /dev/null && return 0; sleep 1; done; echo "port $1 not ready"; exit 1; }
COMMON=(--eth-rpc ws://127.0.0.1:$GETHP --eth-public-rpc http://127.0.0.1:$GETHP --eth-listen= --log-format text --log-level warn)
# One at a time: each funds its account from the dev account.
./gateway serve --addr 127.0.0.1:$PP --data "$RUN/pebble" --debug-addr 127.0.0.1:18731 "${COMMON[@]}" > "$RUN/p.log" 2>&1 &
P=$!; PIDS+=($P); ready $PP
./gateway serve --addr 127.0.0.1:$R1P --store $STORE --store-prefix $PREFIX --base-url $LB --debug-addr 127.0.0.1:18732 "${COMMON[@]}" > "$RUN/r1.log" 2>&1 &
R1=$!; PIDS+=($R1); ready $R1P
./gateway serve --addr 127.0.0.1:$R2P --store $STORE --store-prefix $PREFIX --base-url $LB --debug-addr 127.0.0.1:18733 "${COMMON[@]}" > "$RUN/r2.log" 2>&1 &
R2=$!; PIDS+=($R2); ready $R2P
TP=$(./gateway token --data "$RUN/pebble" --scope "$SCOPE" --ttl 4h) || exit 1
TR=$(./gateway token --store $STORE --store-prefix $PREFIX --scope "$SCOPE" --ttl 4h) || exit 1
echo "commit $(cat COMMIT 2>/dev/null) · $(nproc) cores · redis $(redis-server --version | awk '{print $3}') · pids P=$P R1=$R1 R2=$R2 redis=$REDIS geth=$GETH"

# CPU seconds of each process (utime + stime), to see who used the cores;
# Redis's time on a CPU and waiting for one (schedstat); each gateway's
# audit events and group commits (/metrics).
cpu() { awk '{printf "%.2f", ($14+$15)/100}' /proc/$1/stat; }
aud() { curl -s "http://127.0.0.1:$1/metrics" | awk '/^fhirgate_audit_events_total/{e=$2} /^fhirgate_audit_commits_total/{c=$2} END{printf "%d %d", e, c}'; }
snap() {
  echo "$(cpu $P) $(cpu $R1) $(cpu $R2) $(cpu $REDIS) $(cpu $GETH)" \
    "$(awk '{print $1+$2+$3+$4+$5+$6+$7+$8, $4}' <(head -1 /proc/stat | cut -d' ' -f3-))" \
    "$(awk '{print $1, $2}' /proc/$REDIS/schedstat) $(aud $PP) $(aud $R1P) $(aud $R2P) $(date +%s.%N)" \
    "$(redis-cli -p $REDISP info persistence | tr -d '\r' | awk -F: '/^aof_rewrites:/{r=$2} /^aof_rewrite_in_progress:/{p=$2} END{printf "%d %d", r, p}')"
}
report() { # $1 label, $2 before, $3 after
  redis-cli -p $REDISP latency latest | paste - - - - | awk '$1=="aof-fsync-always"{m=$4} END{print (m == "" ? "<1" : m)}' > "$RUN/lat"
  redis-cli -p $REDISP latency reset > /dev/null
  echo "$2" "$3" "$(cat "$RUN/lat")" "$(cut -d' ' -f1-3 /proc/loadavg)" | awk -v l="$1" '{
    n = 18; for (i = 1; i <= n; i++) d[i] = $(i + n) - $i
    printf "--- %s CPU s: P %.1f R1 %.1f R2 %.1f redis %.1f geth %.1f · machine busy %.0f%% · redis on CPU %.0f%%, waiting for a CPU %.0f%% of the wall time", l, d[1], d[2], d[3], d[4], d[5], 100 * (d[6] - d[7]) / d[6], d[8] / 1e7 / d[16], d[9] / 1e7 / d[16]
    printf " · audit events/commit P %.1f R1 %.1f R2 %.1f (commits/s P %.0f R1 %.0f R2 %.0f)", d[10] / (d[11] + 1e-9), d[12] / (d[13] + 1e-9), d[14] / (d[15] + 1e-9), d[11] / d[16], d[13] / d[16], d[15] / d[16]
    printf " · redis AOF fsync max %s ms · AOF rewrites %d started, %s running at the start, %s at the end", $37, d[17] + $36 - $18, ($18 ? "one" : "none"), ($36 ? "one" : "none")
    printf " · load %s %s %s\n", $38, $39, $40 }'
}
crud() { ./fhirbench crud -base "$1" -token "$2" -clients "$3" -duration $DUR -warmup $WARM -pid "$4" 2>&1 | grep -E '^(create|read|update)'; }
prac() { ./fhirbench practitioner-read -base "$1" -token "$2" -clients "$3" -duration $DUR -warmup $WARM -pid "$4" -system-same=false 2>&1 | grep -E '^read-'; }

for round in $(seq "$ROUNDS"); do
  for ph in $PHASES; do
    f=crud; [ "$ph" = practitioner ] && f=prac
    echo "=== round $round $ph P (pebble, $C clients) · $(uptime)"
    s0=$(snap); $f http://127.0.0.1:$PP/fhir "$TP" $C $P; report "$ph P" "$s0" "$(snap)"
    echo "=== round $round $ph R1 (redis, $C clients) · $(uptime)"
    s0=$(snap); $f http://127.0.0.1:$R1P/fhir "$TR" $C $R1; report "$ph R1" "$s0" "$(snap)"
    if [ "$ph" = crud ]; then # the same phases on both replicas at once, summed by the reader
      echo "=== round $round $ph R1+R2 (redis, $HALF + $HALF clients) · $(uptime)"
      s0=$(snap)
      crud http://127.0.0.1:$R1P/fhir "$TR" $HALF $R1 > "$RUN/two-a.out" &
      A=$!
      crud http://127.0.0.1:$R2P/fhir "$TR" $HALF $R2 > "$RUN/two-b.out"
      wait $A
      sed 's/^/R1: /' "$RUN/two-a.out"; sed 's/^/R2: /' "$RUN/two-b.out"
      report "$ph R1+R2" "$s0" "$(snap)"
    fi
  done
done

[ "$RT" = 1 ] || exit 0

# Round trips. go-redis sends no pipelines on the gateway's paths, so one
# command is one round trip. MONITOR prints every command; EVALSHA lines
# are told apart by the script's SHA (commit or scan).
sha() { awk -v n="$1" '$0 ~ "^const "n" = `"{f=1; sub("^const "n" = `","")} f&&/^`$/{exit} f{print}' "$SRC" | sha1sum | cut -c1-40; }
COMMIT_SHA=$(sha commitSrc)
SCAN_SHA=$(sha scanSrc)
monitor() { # $1 label, $2 requests, rest: the command making them; R2 stays idle
  redis-cli -p $REDISP monitor > "$RUN/mon.txt" &
  M=$!; sleep 1
  t0=$(date +%s.%N); "${@:3}"; t1=$(date +%s.%N)
  sleep 0.3; kill $M; wait $M 2>/dev/null
  # Lines from inside a script ("[0 lua]") are not round trips: counted apart.
  awk -v l="$1" -v n="$2" -v s="$(echo "$t1 - $t0" | bc)" -v cs="$COMMIT_SHA" -v ss="$SCAN_SHA" -v pre="$PREFIX" '
    !/^[0-9]/ { next }
    $3 == "lua]" { inscript++; next }
    { cmd = toupper($4); gsub(/"/, "", cmd); arg = $5; gsub(/"/, "", arg)
      if (cmd == "EVALSHA") cmd = (arg == cs ? "EVALSHA(commit)" : arg == ss ? "EVALSHA(scan)" : "EVALSHA(other)")
      else if (cmd == "GET") { k = substr(arg, length(pre) + 1); sub(/\\x00.*/, "", k); cmd = "GET(" substr(k, 1, 12) ")" }
      c[cmd]++; rt++ }
    END { printf "--- %s: %d requests in %.2f s: %.2f round trips/req [", l, n, s, rt / n
          for (k in c) printf " %s %.3f", k, c[k] / n
          printf " ] (+ %.1f commands inside scripts/req)\n", inscript / n }' "$RUN/mon.txt"
  cp "$RUN/mon.txt" "$RUN/mon-$(echo "$1" | tr ' /' '__').txt"
}
N=${N:-200}
NP=${NP:-2000}
NS=${NS:-400}
BODY='{"resourceType":"Patient","name":[{"family":"Roundtrip","given":["Ann"]}],"gender":"female","birthDate":"1970-01-01"}'
echo "$BODY" > "$RUN/body.json"
AUTH="authorization: Bearer $TR"
CT='content-type: application/fhir+json'
U=http://127.0.0.1:$R1P/fhir
urls() { for i in $(seq "$1"); do echo "url = \"$2\""; echo 'output = "/dev/null"'; done; }
monitor "idle 5 s (background: leases, follower, anchoring)" 1 sleep 5
urls $N "$U/Patient" > "$RUN/c.cfg"
monitor "create sequential" $N curl -s -K "$RUN/c.cfg" -H "$AUTH" -H "$CT" -d @"$RUN/body.json"
urls $NP "$U/Patient" > "$RUN/c.cfg"
monitor "create 64 at a time" $NP curl -s --no-progress-meter -Z --parallel-max 64 -K "$RUN/c.cfg" -H "$AUTH" -H "$CT" -d @"$RUN/body.json"
ID=$(curl -s -H "$AUTH" -H "$CT" -d @"$RUN/body.json" "$U/Patient" | sed 's/.*"id":"\([^"]*\)".*/\1/')
urls $N "$U/Patient/$ID" > "$RUN/r.cfg"
monitor "read sequential (one Patient, system token)" $N curl -s -K "$RUN/r.cfg" -H "$AUTH"
urls $NP "$U/Patient/$ID" > "$RUN/r.cfg"
monitor "read 64 at a time" $NP curl -s --no-progress-meter -Z --parallel-max 64 -K "$RUN/r.cfg" -H "$AUTH"
# A search of 25 matches, a page of 10 (fhirbench's crud Patients and the
# ones above do not match it).
sed 's/Roundtrip/Searchme/' "$RUN/body.json" > "$RUN/body-s.json"
urls 25 "$U/Patient" > "$RUN/c.cfg"; curl -s -K "$RUN/c.cfg" -H "$AUTH" -H "$CT" -d @"$RUN/body-s.json"
urls $N "$U/Patient?family=Searchme&_count=10" > "$RUN/s.cfg"
monitor "search sequential (family=Searchme, page of 10 of 25)" $N curl -s -K "$RUN/s.cfg" -H "$AUTH"
urls $NS "$U/Patient?family=Searchme&_count=10" > "$RUN/s.cfg"
monitor "search 64 at a time" $NS curl -s --no-progress-meter -Z --parallel-max 64 -K "$RUN/s.cfg" -H "$AUTH"
# Redis's own CPU per request (no MONITOR): 64 at a time, Redis's utime +
# stime and INFO commandstats over a known number of requests.
cost() { # $1 label, $2 requests, rest: the command
  redis-cli -p $REDISP config resetstat > /dev/null
  c0=$(cpu $REDIS); r0=$(cpu $R1); t0=$(date +%s.%N); "${@:3}"; t1=$(date +%s.%N); c1=$(cpu $REDIS); r1=$(cpu $R1)
  redis-cli -p $REDISP info commandstats | tr ':,=' '   ' | awk -v l="$1" -v n="$2" -v c="$(echo "$c1 - $c0" | bc)" -v r="$(echo "$r1 - $r0" | bc)" -v s="$(echo "$t1 - $t0" | bc)" '
    { calls[$1] = $3; usec[$1] = $5 }
    END { printf "--- cost %s: %d requests in %.2f s (%.0f/s): Redis CPU %.0f µs/req, gateway R1 CPU %.0f µs/req; EVALSHA %.2f/req at %.0f µs each, GET %.2f/req at %.1f µs each (commandstats)\n",
            l, n, s, n / s, c * 1e6 / n, r * 1e6 / n, calls["cmdstat_evalsha"] / n, usec["cmdstat_evalsha"] / (calls["cmdstat_evalsha"] + 1e-9), calls["cmdstat_get"] / n, usec["cmdstat_get"] / (calls["cmdstat_get"] + 1e-9) }'
}
urls $NP "$U/Patient" > "$RUN/c.cfg"
cost "create 64 at a time" $NP curl -s --no-progress-meter -Z --parallel-max 64 -K "$RUN/c.cfg" -H "$AUTH" -H "$CT" -d @"$RUN/body.json"
urls $((NP * 4)) "$U/Patient/$ID" > "$RUN/r.cfg"
cost "read 64 at a time" $((NP * 4)) curl -s --no-progress-meter -Z --parallel-max 64 -K "$RUN/r.cfg" -H "$AUTH"
curl -s http://127.0.0.1:$R1P/metrics | grep -E '^fhirgate_audit_(events|commits)_total'
redis-cli -p $REDISP info commandstats | grep -E 'evalsha|cmdstat_get:|cmdstat_eval:'
