#!/usr/bin/env bash
# Builds the Go CSV ingestor plugin offline, GOPATH-style, against Debian's Go packages:
#
#   1. generates the Go code for proto/polku/v1/{event,plugin}.proto with grpc_tools' protoc
#      (apt python3-grpc-tools) driving /usr/bin/protoc-gen-go and /usr/bin/protoc-gen-go-grpc,
#      into .build/gopath/src/github.com/polku/polku/gen/go/... (the protos' go_package paths);
#   2. `go build`s csv_ingestor.go with GO111MODULE=off GOPATH=.build/gopath:/usr/share/gocode
#      (grpc and protobuf from golang-google-grpc-dev, golang-google-protobuf-dev)
#      into .build/csv-ingestor.
#
# Needs what scripts/install-plugin-toolchains.sh go installs. .build/ is build output: never
# committed. Usage: examples/plugins/go/build.sh       (prints the binary's path on its last line)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"
build="$here/.build"
gopath="$build/gopath"

fail() { echo "build.sh: $*" >&2; exit 1; }
command -v go >/dev/null 2>&1 || fail "go not found; run scripts/install-plugin-toolchains.sh go (apt golang-go)"
for b in protoc-gen-go protoc-gen-go-grpc; do
  [ -x "/usr/bin/$b" ] || fail "/usr/bin/$b not found; run scripts/install-plugin-toolchains.sh go (apt $b)"
done
wkt="$("$python" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))' 2>/dev/null)" \
  || fail "$python cannot import grpc_tools; run scripts/install-plugin-toolchains.sh go (apt python3-grpc-tools)"

mkdir -p "$build"
# Whatever the top-level .gitignore says, nothing in .build/ is committed.
printf '*\n' > "$build/.gitignore"

# 1. Generate into a fresh directory, then swap it in.
gen="$(mktemp -d "$build/.gen.XXXXXX")"
trap 'rm -rf "$gen"' EXIT
# google/protobuf/empty.proto as the modern Go package (grpc_tools' copy names the old one).
empty='Mgoogle/protobuf/empty.proto=google.golang.org/protobuf/types/known/emptypb'
"$python" -m grpc_tools.protoc -I "$root/proto" -I "$wkt" \
  --plugin=protoc-gen-go=/usr/bin/protoc-gen-go --plugin=protoc-gen-go-grpc=/usr/bin/protoc-gen-go-grpc \
  --go_out="$gen" --go_opt="$empty" --go-grpc_out="$gen" --go-grpc_opt="$empty" \
  polku/v1/event.proto polku/v1/plugin.proto
mkdir -p "$gopath/src/github.com/polku/polku"
rm -rf "$gopath/src/github.com/polku/polku/gen"
mv -T "$gen/github.com/polku/polku/gen" "$gopath/src/github.com/polku/polku/gen"

# 2. Build. The build cache makes rebuilds quick; without a home directory it lives in .build/.
export GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOFLAGS=
if [ -z "${GOCACHE:-}" ] && { [ -z "${HOME:-}" ] || [ ! -w "${HOME:-/nonexistent}" ]; }; then
  export GOCACHE="$build/cache"
fi
(cd "$here" && go build -o "$build/csv-ingestor.tmp" ./csv_ingestor.go)
mv -f "$build/csv-ingestor.tmp" "$build/csv-ingestor"
echo "build.sh: built with $(go version | cut -d' ' -f3)" >&2
echo "$build/csv-ingestor"
