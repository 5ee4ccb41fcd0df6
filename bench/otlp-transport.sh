#!/bin/bash
# Server CPU per unary OTLP Export call, by server (grpc-js, a bare node:http2 handler) and by load
# generator client (bench/otlp-loadgen.ts --client: http2, grpc-js, grpcio), each pair in turn,
# $ROUNDS rounds of $DURATION_MS each (4 connections x 16 calls in flight, 100 records a call).
#   SERVERS="grpc-js http2" CLIENTS="http2 grpc-js grpcio" RATE=0 ROUNDS=3 DURATION_MS=3000 bash bench/otlp-transport.sh
# RATE (log records/s, 0: full speed) compares clients at the same call rate: a server's CPU per
# call depends on how many calls each wake-up finds, so full-speed figures mix that in.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION_MS=${DURATION_MS:-3000}
SERVERS=${SERVERS:-grpc-js http2}
CLIENTS=${CLIENTS:-http2}
RATE=${RATE:-0}
for round in $(seq 1 "$ROUNDS"); do
  for server in $SERVERS; do
    for client in $CLIENTS; do
      out=$(mktemp)
      node --import tsx bench/otlp-unary-transport.ts --server "$server" > "$out" 2>/dev/null &
      pid=$!
      for _ in $(seq 1 300); do grep -q READY "$out" && break; sleep 0.1; done
      port=$(sed -n 's/^READY //p' "$out")
      result=$(node --import tsx bench/otlp-loadgen.ts --target "127.0.0.1:$port" --client "$client" --rate "$RATE" --duration-ms "$DURATION_MS" --warmup-ms 1000 | while read -r line; do
        case "$line" in
          *measure-start*) awk '{print $14+$15}' "/proc/$pid/stat" > "$out.s0" ;;
          *measure-end*) awk '{print $14+$15}' "/proc/$pid/stat" > "$out.s1" ;;
          *) echo "$line" ;;
        esac
      done)
      kill -INT "$pid"; wait "$pid" || true
      ticks=$(( $(cat "$out.s1") - $(cat "$out.s0") ))
      node -e "const r=JSON.parse(process.argv[1]);const t=Number(process.argv[2]);const tick=10000;console.log('round $round', 'server $server'.padEnd(15), 'client $client'.padEnd(15), 'calls/s', Math.round(r.calls/($DURATION_MS/1000)), 'server CPU µs/call', (t*tick/r.calls).toFixed(1), 'cores', (t/100/($DURATION_MS/1000)).toFixed(2), 'loadgen cores', r.loadgenCpuCores.toFixed(2))" "$result" "$ticks"
      rm -f "$out" "$out.s0" "$out.s1"
    done
  done
done
