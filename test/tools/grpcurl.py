#!/usr/bin/python3
"""A small grpcurl-alike that knows a server ONLY through server reflection, strictly.

Takes grpcurl's own syntax for what POLKU's README uses:

    grpcurl.py -plaintext [-d '<json>' | -d @] host:port list [service]
    grpcurl.py -plaintext host:port describe [symbol ...]
    grpcurl.py -plaintext [-d '<json>' | -d @] host:port package.Service/Method

Every descriptor comes from the server's reflection service (grpc.reflection.v1, falling back to
v1alpha when the server does not implement v1, as grpcurl does; POLKU_GRPCURL_REFLECTION=v1alpha
forces one) and goes into a fresh descriptor_pool.DescriptorPool(), file by file, imports first.
With protobuf's C++/upb implementation that pool is strict: a file whose imports are missing, or
whose map entry is malformed, raises, as grpcurl, Postman and buf do. Request messages are built
from the reflected descriptors (message_factory) and sent over a generic channel; responses print
as JSON like grpcurl's (camelCase names, 2-space indent, default values left out). For streaming
methods -d holds several JSON objects one after another, as grpcurl reads them.

The reflection protos themselves are compiled with `python3 -m grpc_tools.protoc
--descriptor_set_out` from proto/grpc/reflection into a temp dir (Debian's python3-grpcio has no
grpc_reflection); `grpcurl.py --compile-reflection-protos FILE` does it once and
POLKU_GRPCURL_PROTOSET=FILE reuses it, as the tests do. Exit codes as grpcurl's: 0, 1 for usage and resolution failures, 64 + the gRPC
status code when the call fails.
"""

import json
import os
import queue
import subprocess
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.internal import api_implementation

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROTO_DIR = os.path.join(REPO, "proto")
REFLECTION_FILES = {
    "v1": "grpc/reflection/v1/reflection.proto",
    "v1alpha": "grpc/reflection/v1alpha/reflection.proto",
}


class Fail(Exception):
    """A failure grpcurl reports on stderr, with its exit code."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def message_class(pool, full_name):
    descriptor = pool.FindMessageTypeByName(full_name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def compile_reflection_protos(out):
    """Compiles both reflection protos into the FileDescriptorSet `out` (grpc_tools' own protoc)."""
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_DIR}", f"--descriptor_set_out={out}", *REFLECTION_FILES.values()],
        check=True,
    )


def reflection_messages(version):
    """ServerReflectionRequest/Response classes, from the vendored reflection protos compiled by protoc
    (once per run; POLKU_GRPCURL_PROTOSET names a set compiled already, as the tests pass it)."""
    protoset = os.environ.get("POLKU_GRPCURL_PROTOSET")
    with tempfile.TemporaryDirectory() as tmp:
        if not protoset:
            protoset = os.path.join(tmp, "reflection.protoset")
            compile_reflection_protos(protoset)
        with open(protoset, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    package = f"grpc.reflection.{version}"
    return message_class(pool, f"{package}.ServerReflectionRequest"), message_class(pool, f"{package}.ServerReflectionResponse")


class Reflection:
    """One ServerReflectionInfo stream for the whole run (as grpcurl keeps one), one request at a time."""

    def __init__(self, channel, version):
        self.Request, self.Response = reflection_messages(version)
        self.version = version
        self.requests = queue.Queue()
        call = channel.stream_stream(
            f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self.Response.FromString,
        )
        self.responses = call(iter(self.requests.get, None))
        self.pool = descriptor_pool.DescriptorPool()
        self.received = {}  # file name -> FileDescriptorProto, not yet in the pool
        self.added = set()

    def close(self):
        self.requests.put(None)

    def ask(self, **request):
        self.requests.put(self.Request(**request))
        response = next(self.responses)
        if response.WhichOneof("message_response") == "error_response":
            err = response.error_response
            raise Fail(f"{status_name(err.error_code)}: {err.error_message}")
        return response

    def services(self):
        return sorted(s.name for s in self.ask(list_services="").list_services_response.service)

    def _take(self, response):
        for raw in response.file_descriptor_response.file_descriptor_proto:
            file = descriptor_pb2.FileDescriptorProto.FromString(raw)
            if file.name not in self.added:
                self.received.setdefault(file.name, file)
        return descriptor_pb2.FileDescriptorProto.FromString(response.file_descriptor_response.file_descriptor_proto[0]).name

    def _add(self, name, path=()):
        """Adds `name` to the pool, its imports first; asks file_by_filename for any not yet sent."""
        if name in self.added:
            return
        if name in path:
            raise Fail(f"import cycle: {' -> '.join(path + (name,))}")
        if name not in self.received:
            self._take(self.ask(file_by_filename=name))
        file = self.received[name]
        for dependency in file.dependency:
            self._add(dependency, path + (name,))
        self.pool.Add(file)  # strict: raises on anything a real protobuf runtime would refuse
        self.added.add(name)
        del self.received[name]

    def resolve(self, symbol):
        """The pool, after the file declaring `symbol` and its imports were added."""
        try:
            self._add(self._take(self.ask(file_containing_symbol=symbol)))
        except Fail as err:
            raise Fail(f'Failed to resolve symbol "{symbol}": {err}') from None
        return self.pool

    def service(self, name):
        return self.resolve(name).FindServiceByName(name)


def status_name(code):
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return str(code)




def grpc_code_name(code):
    """grpcurl's spelling of a status: NOT_FOUND -> NotFound."""
    return "".join(part.capitalize() for part in code.name.split("_"))


def describe_method(m):
    stream_in = "stream " if m.client_streaming else ""
    stream_out = "stream " if m.server_streaming else ""
    return f"rpc {m.name} ( {stream_in}.{m.input_type.full_name} ) returns ( {stream_out}.{m.output_type.full_name} );"


def describe_message(d, indent=""):
    lines = [f"{indent}message {d.name} {{"]
    for f in d.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            kind = f"map<{type_name(key)}, {type_name(value)}>"
        else:
            label = "repeated " if f.label == f.LABEL_REPEATED else ""
            kind = label + type_name(f)
        lines.append(f"{indent}  {kind} {f.name} = {f.number};")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


SCALARS = {v: k[len("TYPE_") :].lower() for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def type_name(f):
    if f.message_type is not None:
        return "." + f.message_type.full_name
    if f.enum_type is not None:
        return "." + f.enum_type.full_name
    return SCALARS[f.type]


def describe(reflection, symbol):
    pool = reflection.resolve(symbol)
    for kind, find in (("service", pool.FindServiceByName), ("message", pool.FindMessageTypeByName), ("enum", pool.FindEnumTypeByName)):
        try:
            d = find(symbol)
        except KeyError:
            continue
        if kind == "service":
            # Every method's request and response can be built: what a caller needs.
            for m in d.methods:
                message_class(pool, m.input_type.full_name)
                message_class(pool, m.output_type.full_name)
            body = "\n".join(f"  {describe_method(m)}" for m in d.methods)
            return f"{symbol} is a service:\nservice {d.name} {{\n{body}\n}}"
        if kind == "message":
            message_class(pool, symbol)
            return f"{symbol} is a message:\n{describe_message(d)}"
        values = "\n".join(f"  {v.name} = {v.number};" for v in d.values)
        return f"{symbol} is an enum:\nenum {d.name} {{\n{values}\n}}"
    if "." in symbol:
        service_name, method_name = symbol.rsplit(".", 1)
        try:
            m = pool.FindServiceByName(service_name).methods_by_name[method_name]
            return f"{symbol} is a method:\n{describe_method(m)}"
        except KeyError:
            pass
    raise Fail(f'Symbol "{symbol}" is not a service, message, enum or method')


def json_messages(data):
    """The JSON objects in -d, one after another (whitespace between them), as grpcurl reads them."""
    decoder = json.JSONDecoder()
    out, i = [], 0
    while True:
        while i < len(data) and data[i].isspace():
            i += 1
        if i == len(data):
            return out
        try:
            value, i = decoder.raw_decode(data, i)
        except json.JSONDecodeError as err:
            raise Fail(f"Error invoking method: bad JSON in request data: {err}") from None
        out.append(value)


def invoke(channel, reflection, target, data):
    service_name, _, method_name = target.replace("/", ".").rpartition(".")
    if not service_name:
        raise Fail(f'Invalid method name "{target}"')
    service = reflection.service(service_name)
    method = service.methods_by_name.get(method_name)
    if method is None:
        raise Fail(f'service "{service_name}" does not include a method named "{method_name}"')
    pool = reflection.pool
    Request = message_class(pool, method.input_type.full_name)
    Response = message_class(pool, method.output_type.full_name)
    requests = []
    for obj in json_messages(data) if data is not None else []:
        try:
            requests.append(json_format.ParseDict(obj, Request()))
        except json_format.ParseError as err:
            raise Fail(f"Error invoking method \"{target}\": {err}") from None
    if not method.client_streaming:
        if len(requests) > 1:
            raise Fail(f'Error invoking method "{target}": method is unary but -d holds {len(requests)} messages')
        if not requests:
            requests = [Request()]
    path = f"/{service.full_name}/{method.name}"
    kwargs = dict(request_serializer=lambda m: m.SerializeToString(), response_deserializer=Response.FromString)
    kind = ("stream" if method.client_streaming else "unary") + "_" + ("stream" if method.server_streaming else "unary")
    call = getattr(channel, kind)(path, **kwargs)
    try:
        if method.client_streaming:
            result = call(iter(requests), timeout=30)
        else:
            result = call(requests[0], timeout=30)
        responses = result if method.server_streaming else [result]
        for response in responses:
            print(json_format.MessageToJson(response, preserving_proto_field_name=False, indent=2))
    except grpc.RpcError as err:
        print(f"ERROR:\n  Code: {grpc_code_name(err.code())}\n  Message: {err.details()}", file=sys.stderr)
        raise Fail("", 64 + err.code().value[0]) from None


def parse_args(argv):
    usage = "usage: grpcurl.py -plaintext [-d DATA|-d @] host:port (list [service] | describe [symbol...] | service/method)"
    plaintext, data, rest = False, None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-plaintext", "--plaintext"):
            plaintext = True
        elif a in ("-d", "--d"):
            if i + 1 == len(argv):
                raise Fail(usage)
            data = argv[i + 1]
            i += 1
        elif a.startswith("-") and len(a) > 1:
            raise Fail(f"unsupported flag {a}\n{usage}")
        else:
            rest.append(a)
        i += 1
    if not plaintext:
        raise Fail("only -plaintext is supported here")
    if not rest:
        raise Fail(usage)
    if data == "@":
        data = sys.stdin.read()
    return data, rest[0], rest[1:]


def main(argv):
    data, address, command = parse_args(argv)
    channel = grpc.insecure_channel(address)
    forced = os.environ.get("POLKU_GRPCURL_REFLECTION")
    versions = [forced] if forced else ["v1", "v1alpha"]
    reflection = None
    try:
        for version in versions:
            reflection = Reflection(channel, version)
            try:
                services = reflection.services()
                break
            except grpc.RpcError as err:
                reflection.close()
                if err.code() != grpc.StatusCode.UNIMPLEMENTED or version == versions[-1]:
                    raise Fail(f"Failed to list services: {err.code().name}: {err.details()}") from None
        if not command or command[0] == "list":
            if len(command) > 1:
                service = reflection.service(command[1])
                print("\n".join(m.full_name for m in service.methods))
            else:
                print("\n".join(services))
        elif command[0] == "describe":
            symbols = command[1:] or services
            print("\n".join(describe(reflection, s) for s in symbols))
        else:
            if len(command) > 1:
                raise Fail(f"too many arguments: {' '.join(command)}")
            invoke(channel, reflection, command[0], data)
    finally:
        if reflection is not None:
            reflection.close()
        channel.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compile-reflection-protos"]:
        compile_reflection_protos(sys.argv[2])
        sys.exit(0)
    if api_implementation.Type() == "python":
        print("warning: pure-Python protobuf; its descriptor pool checks less than grpcurl does", file=sys.stderr)
    try:
        main(sys.argv[1:])
    except Fail as err:
        if str(err):
            print(str(err), file=sys.stderr)
        sys.exit(err.code)
