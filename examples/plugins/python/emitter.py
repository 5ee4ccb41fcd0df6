#!/usr/bin/python3
"""A POLKU emitter plugin in Python: writes every event it is sent as one JSON line.

    examples/plugins/python/gen.sh                                  # once: the gRPC stubs
    /usr/bin/python3 examples/plugins/python/emitter.py --port 9001 [--out events.jsonl]
        [--emitter-name jsonl] [--register localhost:50051]

The gateway calls it over gRPC (polku.v1.EmitterPlugin in proto/polku/v1/plugin.proto). Each
Emit batch is written to stdout, or appended to the file given by --out, one JSON object per
event with the same fields and names as the gateway's own file emitter:

    {"id": ..., "timestamp_unix_ns": "...", "source": ..., "event_type": ..., "metadata": {...},
     "payload": "<text>" (or "payload_base64" when it is not UTF-8), "route_to": [...],
     "severity": "SEVERITY_INFO", "outcome": "OUTCOME_SUCCESS"}

For demos and tests, an event whose metadata has fail=retryable or fail=permanent is not written
but reported back as failed, with that retryable flag: the gateway retries the first kind and
drops the second. Each such refusal is logged on stderr.

Logs go to stderr. SIGTERM or SIGINT (or the gateway's Shutdown call) stops it gracefully:
in-flight batches finish, it unregisters from the gateway if it registered, and exits 0.
"""

import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
from concurrent import futures

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "gen"))

try:
    import grpc
    from google.protobuf import empty_pb2
    from polku.v1 import event_pb2, plugin_pb2, plugin_pb2_grpc
except ImportError as e:  # pragma: no cover - a setup problem, explained
    sys.exit(
        f"emitter.py: {e}. Install apt python3-grpcio python3-grpc-tools "
        "(scripts/install-plugin-toolchains.sh), run examples/plugins/python/gen.sh, "
        "and start it with /usr/bin/python3."
    )

VERSION = "1.0.0"
DEFAULT_HEARTBEAT_S = 5.0
# A gateway may set the heartbeat period in RegisterResponse.message: "heartbeat_interval_ms=5000".
INTERVAL_HINT = re.compile(r"heartbeat_interval_ms\s*[=:]\s*(\d+)")
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


def log(message):
    print(f"emitter: {message}", file=sys.stderr, flush=True)


def event_to_json(event):
    """The event as the gateway's file emitter writes it (snake_case, int64 as a string)."""
    line = {
        "id": event.id,
        "timestamp_unix_ns": str(event.timestamp_unix_ns),
        "source": event.source,
        "event_type": event.event_type,
        "metadata": dict(event.metadata),
        "route_to": list(event.route_to),
        "severity": event_pb2.Severity.Name(event.severity) if event.severity in event_pb2.Severity.values() else str(event.severity),
        "outcome": event_pb2.Outcome.Name(event.outcome) if event.outcome in event_pb2.Outcome.values() else str(event.outcome),
    }
    if event.payload:
        try:
            line["payload"] = event.payload.decode("utf-8")
        except UnicodeDecodeError:
            line["payload_base64"] = base64.b64encode(event.payload).decode("ascii")
    return line


class JsonLinesEmitter(plugin_pb2_grpc.EmitterPluginServicer):
    def __init__(self, emitter_name, out_path, stopping):
        self.info = plugin_pb2.PluginInfo(
            name="python-jsonl-emitter",
            version=VERSION,
            type=plugin_pb2.PLUGIN_TYPE_EMITTER,
            description="Writes each event as one JSON line to stdout or a file",
            emitter_name=emitter_name,
        )
        self.out_path = out_path
        self.out = open(out_path, "a", encoding="utf-8") if out_path else sys.stdout
        self.lock = threading.Lock()  # one batch writes at a time: lines never interleave
        self.stopping = stopping

    def Info(self, request, context):
        return self.info

    def Health(self, request, context):
        if self.stopping.is_set():
            return plugin_pb2.PluginHealthResponse(healthy=False, message="shutting down", components={"output": False})
        return plugin_pb2.PluginHealthResponse(
            healthy=True, message=f"writing to {self.out_path or 'stdout'}", components={"output": True}
        )

    def Emit(self, request, context):
        delivered = []
        failed_ids = []
        errors = []
        for event in request.events:
            mode = event.metadata.get("fail", "")
            if mode in ("retryable", "permanent"):
                retryable = mode == "retryable"
                failed_ids.append(event.id)
                errors.append(plugin_pb2.EmitError(event_id=event.id, message=f"metadata asks to fail ({mode})", retryable=retryable))
                log(f"event {event.id} not delivered ({mode})")
            else:
                delivered.append(event)
        if delivered:
            text = "".join(json.dumps(event_to_json(e), ensure_ascii=False) + "\n" for e in delivered)
            try:
                with self.lock:
                    self.out.write(text)
                    self.out.flush()
            except (OSError, ValueError) as e:
                # Nothing of this batch is known to be written: all of it may be tried again.
                log(f"cannot write {len(delivered)} event(s): {e}")
                for event in delivered:
                    failed_ids.append(event.id)
                    errors.append(plugin_pb2.EmitError(event_id=event.id, message=f"write failed: {e}", retryable=True))
                delivered = []
        return plugin_pb2.EmitResponse(success_count=len(delivered), failed_event_ids=failed_ids, errors=errors)

    def Shutdown(self, request, context):
        # The gateway is done with us: answer, then stop the way SIGTERM does.
        log("gateway asked to shut down")
        self.stopping.set()
        return plugin_pb2.ShutdownResponse(success=True, message="bye")

    def close(self):
        with self.lock:
            if self.out is not sys.stdout:
                self.out.close()
            else:
                self.out.flush()


class Registration(threading.Thread):
    """Keeps the plugin in a gateway's plugin table (polku.v1.PluginRegistry): Register, then
    Heartbeat every 5 s (or the period the gateway asks for in RegisterResponse.message); when the
    gateway no longer knows the plugin (acknowledged=false or NOT_FOUND) Register again. An
    unreachable or refusing gateway is retried with backoff (0.5 s doubling to 30 s)."""

    def __init__(self, gateway, info, advertise, token):
        super().__init__(name="registration", daemon=True)
        target = re.sub(r"^https?://", "", gateway, flags=re.I).rstrip("/")
        options = [("grpc.max_reconnect_backoff_ms", 5000)]
        if gateway.lower().startswith("https://"):
            self.channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.stub = plugin_pb2_grpc.PluginRegistryStub(self.channel)
        self.gateway = gateway
        self.info = info
        self.advertise = advertise
        self.metadata = [("authorization", f"Bearer {token}")] if token else []
        self.plugin_id = None
        self.stopped = threading.Event()

    def run(self):
        retry_s = 0.5
        interval_s = DEFAULT_HEARTBEAT_S
        while not self.stopped.is_set():
            if self.plugin_id is None:
                try:
                    res = self.stub.Register(
                        plugin_pb2.RegisterRequest(info=self.info, address=self.advertise), metadata=self.metadata, timeout=5
                    )
                    if not res.accepted:
                        raise RuntimeError(f"gateway refused the registration: {res.message or 'no reason given'}")
                    self.plugin_id = res.plugin_id
                    hint = INTERVAL_HINT.search(res.message)
                    interval_s = int(hint.group(1)) / 1000 if hint and int(hint.group(1)) > 0 else DEFAULT_HEARTBEAT_S
                    retry_s = 0.5
                    log(f"registered with {self.gateway} as {self.plugin_id} (dial {self.advertise}, heartbeat {interval_s:g} s)")
                except (grpc.RpcError, RuntimeError) as e:
                    log(f"registration failed, retrying in {retry_s:g} s: {describe(e)}")
                    self.stopped.wait(retry_s)
                    retry_s = min(retry_s * 2, 30.0)
                    continue
            if self.stopped.wait(interval_s):
                break
            try:
                res = self.stub.Heartbeat(plugin_pb2.HeartbeatRequest(plugin_id=self.plugin_id), metadata=self.metadata, timeout=5)
                lease_lost = not res.acknowledged
            except grpc.RpcError as e:
                lease_lost = e.code() == grpc.StatusCode.NOT_FOUND
                if not lease_lost:
                    log(f"heartbeat failed: {describe(e)}")  # the gateway may be restarting: keep beating
            if lease_lost:
                log("gateway no longer knows this plugin; registering again")
                self.plugin_id = None

    def stop(self):
        self.stopped.set()
        self.join(timeout=6)
        if self.plugin_id is not None:
            try:
                self.stub.Unregister(plugin_pb2.UnregisterRequest(plugin_id=self.plugin_id), metadata=self.metadata, timeout=2)
                log(f"unregistered from {self.gateway}")
            except grpc.RpcError as e:
                log(f"unregister failed (the gateway drops us when the lease runs out): {describe(e)}")
        self.channel.close()


def describe(error):
    if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
        return f"{error.code().name}: {error.details()}"
    return str(error)


def main():
    parser = argparse.ArgumentParser(description="POLKU emitter plugin: events as JSON lines")
    parser.add_argument("--port", type=int, default=9001, help="port to listen on; 0 picks a free one (default 9001)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--out", help="append JSON lines to this file instead of stdout")
    parser.add_argument("--emitter-name", default="jsonl", help="the name events use in route_to (default jsonl)")
    parser.add_argument("--register", metavar="GATEWAY", help="self-register with the gateway at host:port")
    parser.add_argument("--advertise", help="host:port the gateway should dial (default 127.0.0.1:<port>)")
    parser.add_argument("--token", help="registration token (default: $POLKU_PLUGIN_TOKEN; flags show up in ps)")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, got {args.port}")

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stopping.set())

    servicer = JsonLinesEmitter(args.emitter_name, args.out, stopping)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)],
    )
    plugin_pb2_grpc.add_EmitterPluginServicer_to_server(servicer, server)
    host = f"[{args.host}]" if ":" in args.host and not args.host.startswith("[") else args.host
    try:
        port = server.add_insecure_port(f"{host}:{args.port}")
    except RuntimeError as e:
        port = 0
        log(str(e))
    if port == 0:
        sys.exit(f"emitter: cannot listen on {host}:{args.port}")
    server.start()
    log(f"listening on {host}:{port} as emitter {args.emitter_name!r}, writing to {args.out or 'stdout'}")

    registration = None
    if args.register:
        token = args.token or os.environ.get("POLKU_PLUGIN_TOKEN")
        registration = Registration(args.register, servicer.info, args.advertise or f"127.0.0.1:{port}", token)
        registration.start()

    while not stopping.wait(1.0):  # a timed wait keeps signals prompt
        pass
    log("stopping")
    if registration:
        registration.stop()
    server.stop(grace=10).wait()
    servicer.close()
    log("stopped")


if __name__ == "__main__":
    main()
