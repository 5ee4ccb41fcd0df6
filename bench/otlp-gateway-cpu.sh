#!/bin/bash
# The gateway's CPU µs per native event and per OTLP log record at the same fixed rate, by OTLP/gRPC
# server (POLKU_OTLP_GRPC_SERVER) and OTLP client (bench/otlp-loadgen.ts --client). At a fixed rate
# both servers and every client carry the same load, so a loaded machine moves these figures much
# less than the full-speed events/s of `npm run bench`, where a starved phase also batches less.
#   RATE=20000 SERVERS="grpc-js http2" CLIENTS="grpc-js http2 grpcio" ROUNDS=2 DURATION_MS=4000 bash bench/otlp-gateway-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
DURATION_MS=${DURATION_MS:-4000}
WARMUP_MS=${WARMUP_MS:-1000}
RATE=${RATE:-20000}
SERVERS=${SERVERS:-grpc-js http2}
CLIENTS=${CLIENTS:-grpc-js http2 grpcio}
free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# Runs "$@" (a load generator at $RATE) and prints the gateway's CPU µs per event over the window.
measure() {
  local gw=$1; shift
  local out; out=$(mktemp)
  "$@" > "$out" 2>/dev/null &
  local gen=$!
  sleep "$(echo "$WARMUP_MS / 1000 + 0.3" | bc -l)"
  local t0; t0=$(ticks "$gw")
  local window; window=$(echo "($DURATION_MS - 600) / 1000" | bc -l)
  sleep "$window"
  local t1; t1=$(ticks "$gw")
  wait "$gen" || true
  local accepted; accepted=$(tail -1 "$out" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);console.log(Math.round(r.acceptedPerSec))})")
  rm -f "$out"
  # ticks are 10 ms of CPU; events over the window at the rate kept.
  node -e "const [t,a,w]=process.argv.slice(1).map(Number);console.log((t*10000/(a*w)).toFixed(2).padStart(6), 'µs/event at', a, '/s, gateway', (t/100/w).toFixed(2), 'cores')" "$((t1 - t0))" "$accepted" "$window"
}
for round in $(seq 1 "$ROUNDS"); do
  for server in $SERVERS; do
    grpc=$(free_port); metrics=$(free_port); otlp=$(free_port)
    POLKU_GRPC_ADDR=127.0.0.1:$grpc POLKU_METRICS_ADDR=127.0.0.1:$metrics POLKU_OTLP_GRPC_ADDR=127.0.0.1:$otlp \
      POLKU_OTLP_HTTP_ADDR=off POLKU_HTTP_ADDR=off POLKU_LOG_LEVEL=warn POLKU_OTLP_GRPC_SERVER=$server \
      node --import tsx src/cli/main.ts serve --config bench/bench.config.ts > /dev/null 2>&1 &
    gw=$!
    for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$metrics/readyz" > /dev/null && break; sleep 0.1; done
    common=(--duration-ms "$DURATION_MS" --warmup-ms "$WARMUP_MS" --rate "$RATE")
    echo "round $round, OTLP server $server, native (grpc-js)    $(measure "$gw" node --import tsx bench/loadgen.ts --target "127.0.0.1:$grpc" "${common[@]}")"
    for client in $CLIENTS; do
      echo "round $round, OTLP server $server, OTLP $client$(printf '%*s' $((10 - ${#client})) '') $(measure "$gw" node --import tsx bench/otlp-loadgen.ts --target "127.0.0.1:$otlp" --client "$client" "${common[@]}")"
    done
    kill -TERM "$gw"; wait "$gw" || true
  done
done
