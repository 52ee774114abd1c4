#!/usr/bin/env bash
# Per-round figures, ratios and their medians from bench/replicas.sh's
# output: bash bench/replicas-summary.sh /tmp/fb15/replicas.out
awk '
function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
/^=== round/ { r = $3; ph = $4; g = $5; if (r > R) R = r; next }
/^(R1: |R2: )?(create|read|update|read-practitioner) / {
  line = $0; sub(/^R[12]: /, "", line); split(line, f, " "); rate = f[4]; sub(/\/s/, "", rate)
  op = (ph == "practitioner" ? "practitioner-read" : f[1])
  v[op, g, r] += rate }
END {
  printf "| round | op | Pebble | Redis R1 | R1+R2 (32+32) | R1 ÷ Pebble | R1+R2 ÷ R1 |\n|---|---|---:|---:|---:|---:|---:|\n"
  split("create read update practitioner-read", ops, " ")
  for (o = 1; o <= 4; o++) { op = ops[o]; n = 0
    for (r = 1; r <= R; r++) { p = v[op, "P", r]; a = v[op, "R1", r]; b = v[op, "R1+R2", r]; if (p == "") continue; n++
      x[n] = a / p; y[n] = (b > 0 ? b / a : 0); pp[n] = p; aa[n] = a; bb[n] = b
      printf "| %d | %s | %d | %d | %s | %.2f | %s |\n", r, op, p, a, (b > 0 ? b : "–"), a / p, (b > 0 ? sprintf("%.2f", b / a) : "–") }
    if (n) printf "| **median** | %s | %d | %d | %s | **%.2f** | %s |\n", op, med(pp, n), med(aa, n), (bb[1] > 0 ? med(bb, n) : "–"), med(x, n), (bb[1] > 0 ? sprintf("**%.2f**", med(y, n)) : "–")
  } }' "${1:-/tmp/fb15/replicas.out}"
