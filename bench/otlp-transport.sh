#!/bin/bash
# Server CPU per unary OTLP Export call: grpc-js against node:http2, alternately, $ROUNDS rounds of
# $DURATION_MS each under bench/otlp-loadgen.ts (4 connections x 16 calls in flight, 100 records a call).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION_MS=${DURATION_MS:-3000}
for round in $(seq 1 "$ROUNDS"); do
  for server in grpc-js http2; do
    out=$(mktemp)
    node --import tsx bench/otlp-unary-transport.ts --server "$server" > "$out" 2>/dev/null &
    pid=$!
    for _ in $(seq 1 300); do grep -q READY "$out" && break; sleep 0.1; done
    port=$(sed -n 's/^READY //p' "$out")
    result=$(node --import tsx bench/otlp-loadgen.ts --target "127.0.0.1:$port" --duration-ms "$DURATION_MS" --warmup-ms 1000 | while read -r line; do
      case "$line" in
        *measure-start*) awk '{print $14+$15}' "/proc/$pid/stat" > "$out.s0" ;;
        *measure-end*) awk '{print $14+$15}' "/proc/$pid/stat" > "$out.s1" ;;
        *) echo "$line" ;;
      esac
    done)
    kill -INT "$pid"; wait "$pid" || true
    ticks=$(( $(cat "$out.s1") - $(cat "$out.s0") ))
    node -e "const r=JSON.parse(process.argv[1]);const t=Number(process.argv[2]);const tick=10000;console.log('round $round', '$server'.padEnd(8), 'calls/s', Math.round(r.calls/($DURATION_MS/1000)), 'server CPU µs/call', (t*tick/r.calls).toFixed(1), 'cores', (t/100/($DURATION_MS/1000)).toFixed(2), 'loadgen cores', r.loadgenCpuCores.toFixed(2))" "$result" "$ticks"
    rm -f "$out" "$out.s0" "$out.s1"
  done
done
