#!/usr/bin/python3
"""OTLP/gRPC load on gRPC C-core (apt's python3-grpcio): bench/otlp-loadgen.ts --client grpcio.

The native phase of `npm run bench -- --loadgen grpcio` runs on C-core (bench/loadgen_grpcio.py);
this is its OTLP counterpart, so both phases use one client library, as a Go, Java or C++
Collector would. It sends raw bytes through a generic unary call (identity serializers): the
ExportLogsServiceRequest is encoded once by bench/lib/otlp-request.ts and handed over as a file,
so no OpenTelemetry Python package is needed and every client sends the same bytes.

Same flags and output as bench/otlp-loadgen.ts: {"phase": "measure-start"|"measure-end"} lines,
then ONE result JSON line on stdout.

  /usr/bin/python3 bench/otlp_loadgen_grpcio.py --target 127.0.0.1:4317 --request-file req.bin
"""
import argparse
import json
import sys
import threading
import time

import grpc

EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export'


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--target', required=True)
    p.add_argument('--request-file', required=True, help='one encoded ExportLogsServiceRequest')
    p.add_argument('--streams', type=int, default=4, help='connections')
    p.add_argument('--inflight', type=int, default=16, help='Export calls outstanding per connection')
    p.add_argument('--batch', type=int, default=100, help='log records in the request')
    p.add_argument('--duration-ms', type=int, default=10000)
    p.add_argument('--warmup-ms', type=int, default=2000)
    p.add_argument('--rate', type=int, default=0, help='total log records/s; 0 = full speed')
    return p.parse_args()


def varint(buf, at):
    value, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, at
        shift += 7


def rejected_of(response):
    """partial_success.rejected_log_records of an ExportLogsServiceResponse (field 1 -> field 1)."""
    if not response or response[0] != 0x0A:
        return 0
    length, at = varint(response, 1)
    inner = response[at:at + length]
    if not inner or inner[0] != 0x08:
        return 0
    return varint(inner, 1)[0]


class Recorder:
    def __init__(self, batch, measure_from, end):
        self.lock = threading.Lock()
        self.batch = batch
        self.measure_from = measure_from
        self.end = end
        self.accepted = 0
        self.rejected = 0
        self.calls = 0
        self.refused_calls = 0
        self.errors = {}
        self.latencies = []

    def call_ended(self, sent_at, future):
        now = time.perf_counter()
        if now < self.measure_from or now >= self.end:
            return
        err = future.exception()
        with self.lock:
            self.calls += 1
            self.latencies.append((now - sent_at) * 1000)
            if err is not None:
                self.refused_calls += 1
                code = str(err.code().value[0])
                self.errors[code] = self.errors.get(code, 0) + 1
            else:
                r = rejected_of(future.result())
                self.rejected += r
                self.accepted += self.batch - r


def run_connection(k, opts, request, recorder):
    """One connection with --inflight calls outstanding, paced under --rate."""
    channel = grpc.insecure_channel(opts.target, options=[('grpc.use_local_subchannel_pool', 1)])
    export = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    slots = threading.Semaphore(opts.inflight)
    interval = (opts.batch * opts.streams / opts.rate) if opts.rate > 0 else 0.0
    due = time.perf_counter() + interval * k / max(1, opts.streams)
    outstanding = [0]
    idle = threading.Condition()

    def ended(sent_at):
        def done(future):
            recorder.call_ended(sent_at, future)
            slots.release()
            with idle:
                outstanding[0] -= 1
                idle.notify()
        return done

    while time.perf_counter() < recorder.end:
        if not slots.acquire(timeout=0.1):
            continue
        if interval > 0:
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            due = max(due + interval, time.perf_counter() - interval * opts.inflight)
        with idle:
            outstanding[0] += 1
        sent_at = time.perf_counter()
        export.future(request, timeout=30).add_done_callback(ended(sent_at))
    with idle:
        idle.wait_for(lambda: outstanding[0] == 0, timeout=35)
    channel.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    opts = parse_args()
    with open(opts.request_file, 'rb') as f:
        request = f.read()
    start = time.perf_counter()
    recorder = Recorder(opts.batch, start + opts.warmup_ms / 1000, start + (opts.warmup_ms + opts.duration_ms) / 1000)
    threads = [threading.Thread(target=run_connection, args=(k, opts, request, recorder), daemon=True)
               for k in range(opts.streams)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, recorder.measure_from - time.perf_counter()))
    cpu0 = time.process_time()
    print(json.dumps({'phase': 'measure-start'}), flush=True)
    time.sleep(max(0.0, recorder.end - time.perf_counter()))
    cpu = time.process_time() - cpu0
    print(json.dumps({'phase': 'measure-end'}), flush=True)
    for t in threads:
        t.join(timeout=40)
    duration_s = opts.duration_ms / 1000
    lat = sorted(recorder.latencies)
    print(json.dumps({
        'acceptedPerSec': recorder.accepted / duration_s,
        'accepted': recorder.accepted,
        'rejected': recorder.rejected,
        'calls': recorder.calls,
        'refusedCalls': recorder.refused_calls,
        'errors': recorder.errors,
        'requestBytes': len(request),
        'loadgenCpuCores': cpu / duration_s,
        'client': 'grpcio',
        'latencyMs': {'p50': percentile(lat, 0.5), 'p99': percentile(lat, 0.99), 'max': lat[-1] if lat else 0.0},
    }), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
