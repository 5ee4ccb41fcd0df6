#!/usr/bin/python3
"""Load generator on gRPC C-core (apt's python3-grpcio), for bench/run.ts --loadgen grpcio.

Why a second one: a Node.js gRPC client (grpc-js, or node:http2 directly) writes a stream's next
message only once the previous write has completed, and on loopback that completion arrives with
the server's next frame. Against a server whose Acks wait for an fdatasync (durable mode), a Node
client therefore has one batch per stream on the wire, whatever its window. Agents built on
C-core, grpc-go or tonic keep several in flight. This generator does, so durable mode is measured
the way such agents load it. See docs/benchmarks.md.

Same flags and output as bench/loadgen.ts (the subset run.ts uses): progress lines
{"phase": "measure-start"|"measure-end"} and then ONE LoadResult JSON line on stdout.

  /usr/bin/python3 bench/loadgen_grpcio.py --target 127.0.0.1:50051 --streams 4 --unique-ids
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid

import grpc
from grpc_tools import protoc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_stubs():
    """Generates the message classes from the project's own protos into a temp dir."""
    out = tempfile.mkdtemp(prefix='polku-loadgen-')
    proto_dir = os.path.join(ROOT, 'proto')
    code = protoc.main(['protoc', f'-I{proto_dir}', f'--python_out={out}',
                        os.path.join(proto_dir, 'polku/v1/event.proto'),
                        os.path.join(proto_dir, 'polku/v1/gateway.proto')])
    if code != 0:
        raise SystemExit(f'loadgen_grpcio: protoc failed ({code})')
    sys.path.insert(0, out)
    from polku.v1 import gateway_pb2  # noqa: E402  (generated above)
    return gateway_pb2


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument('--target', required=True)
    p.add_argument('--streams', type=int, default=4)
    p.add_argument('--batch', type=int, default=100)
    p.add_argument('--event-bytes', type=int, default=400)
    p.add_argument('--duration-ms', type=int, default=10000)
    p.add_argument('--warmup-ms', type=int, default=2000)
    p.add_argument('--rate', type=int, default=0, help='total events/s; 0 = full speed')
    p.add_argument('--window', type=int, default=16, help='unacked batches per stream')
    p.add_argument('--unique-ids', action='store_true', help='a new id for every event sent')
    return p.parse_args()


COUNTER_DIGITS = 10


def build_batch(gateway_pb2, opts, tag):
    """One encoded IngestBatch, and where each event id's send counter sits in it."""
    def event_id(i):
        return f'{tag}-{"0" * COUNTER_DIGITS}-{i:05d}'
    batch = gateway_pb2.IngestBatch(source='bench-loadgen', cluster='bench')
    for i in range(opts.batch):
        e = batch.events.events.add()
        e.id = event_id(i)
        e.timestamp_unix_ns = time.time_ns()
        e.source = 'bench-loadgen'
        e.event_type = 'bench.synthetic'
        e.metadata['cluster'] = 'bench'
        e.metadata['namespace'] = 'default'
        e.metadata['pod'] = 'bench-loadgen-7d9f8c6b5-x2k4q'
        e.severity = 2
        e.outcome = 1
    bare = len(batch.events.events[0].SerializeToString())
    payload = os.urandom(max(0, opts.event_bytes - bare - 3))
    for e in batch.events.events:
        e.payload = payload
    raw = batch.SerializeToString()
    offsets = [raw.index(event_id(i).encode()) + len(tag) + 1 for i in range(opts.batch)]
    return raw, offsets


class Recorder:
    def __init__(self, per_batch):
        self.lock = threading.Lock()
        self.per_batch = per_batch
        self.measuring = False
        self.batches_sent = 0
        self.accepted = 0
        self.ack_errors = 0
        self.error_codes = {}
        self.latencies = []
        self.stream_errors = []


def run_stream(k, opts, raw, offsets, recorder, stop_sending, gateway_pb2, done):
    window = threading.Semaphore(opts.window)
    inflight = []  # (sent_at, measured), FIFO: Acks come back in send order
    inflight_lock = threading.Lock()
    interval = (opts.batch * opts.streams / opts.rate) if opts.rate > 0 else 0.0
    channel = grpc.insecure_channel(opts.target, options=[('grpc.use_local_subchannel_pool', 1)])
    call = channel.stream_stream('/polku.v1.Gateway/StreamEvents',
                                 request_serializer=None, response_deserializer=None)

    def requests():
        n = 0
        due = time.perf_counter() + interval * k / max(1, opts.streams)
        while not stop_sending.is_set():
            if not window.acquire(timeout=0.1):
                continue
            if interval > 0:
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                due = max(due + interval, time.perf_counter() - interval * opts.window)
            if stop_sending.is_set():
                break
            if opts.unique_ids:
                buf = bytearray(raw)
                counter = f'{n * opts.streams + k:0{COUNTER_DIGITS}x}'.encode()
                for o in offsets:
                    buf[o:o + COUNTER_DIGITS] = counter
                msg = bytes(buf)
            else:
                msg = raw
            n += 1
            measured = recorder.measuring
            with inflight_lock:
                inflight.append((time.perf_counter(), measured))
            if measured:
                with recorder.lock:
                    recorder.batches_sent += 1
            yield msg

    try:
        for response in call(requests()):
            now = time.perf_counter()
            with inflight_lock:
                sent_at, measured = inflight.pop(0)
            window.release()
            if measured:
                ack = gateway_pb2.Ack.FromString(response)
                with recorder.lock:
                    recorder.latencies.append((now - sent_at) * 1000)
                    recorder.accepted += len(ack.event_ids)
                    recorder.ack_errors += len(ack.errors)
                    for err in ack.errors:
                        recorder.error_codes[err.code] = recorder.error_codes.get(err.code, 0) + 1
    except grpc.RpcError as err:
        with recorder.lock:
            recorder.stream_errors.append(f'stream {k}: {err.code().name} {err.details()}')
    finally:
        with inflight_lock:
            done[k] = sum(1 for _, m in inflight if m)
        channel.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    opts = parse_args()
    gateway_pb2 = load_stubs()
    raw, offsets = build_batch(gateway_pb2, opts, uuid.uuid4().hex[:8])
    recorder = Recorder(opts.batch)
    stop_sending = threading.Event()
    unacked = [0] * opts.streams
    threads = [threading.Thread(target=run_stream, daemon=True,
                                args=(k, opts, raw, offsets, recorder, stop_sending, gateway_pb2, unacked))
               for k in range(opts.streams)]
    for t in threads:
        t.start()
    time.sleep(opts.warmup_ms / 1000)
    recorder.measuring = True
    started, cpu0 = time.perf_counter(), time.process_time()
    print(json.dumps({'phase': 'measure-start'}), flush=True)
    time.sleep(opts.duration_ms / 1000)
    recorder.measuring = False
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(json.dumps({'phase': 'measure-end'}), flush=True)
    stop_sending.set()
    for t in threads:
        t.join(timeout=15)
    lat = sorted(recorder.latencies)
    result = {
        'batchesSent': recorder.batches_sent,
        'eventsSent': recorder.batches_sent * opts.batch,
        'eventsAccepted': recorder.accepted,
        'ackErrors': recorder.ack_errors,
        'errorCodes': recorder.error_codes,
        'batchBytes': len(raw),
        'durationS': round(elapsed, 3),
        'acceptedPerSec': round(recorder.accepted / elapsed),
        'ackLatencyMs': {'p50': round(percentile(lat, 0.5), 3), 'p99': round(percentile(lat, 0.99), 3),
                         'max': round(lat[-1] if lat else 0.0, 3)},
        'unackedBatches': sum(unacked),
        'loadgenCpuCores': round(cpu / elapsed, 3),
        'streamErrors': recorder.stream_errors,
    }
    print(json.dumps(result), flush=True)
    return 2 if recorder.stream_errors else 0


if __name__ == '__main__':
    sys.exit(main())
