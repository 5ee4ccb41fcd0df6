#!/usr/bin/env bash
# Generates the Python gRPC stubs for the plugin contract from this repository's own protos
# (proto/polku/v1/plugin.proto and event.proto) into examples/plugins/python/gen/.
# Needs apt's python3-grpc-tools (it bundles protoc and google/protobuf/*.proto): see
# scripts/install-plugin-toolchains.sh. gen/ is build output: never committed.
# Usage: examples/plugins/python/gen.sh        (PYTHON=/usr/bin/python3 by default)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"
out="$here/gen"

if ! wkt="$("$python" -c 'import os, grpc_tools; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))' 2>/dev/null)"; then
  echo "gen.sh: $python cannot import grpc_tools; run scripts/install-plugin-toolchains.sh python (apt python3-grpc-tools)" >&2
  exit 1
fi

# Generate next to the old stubs, then swap, so a running plugin never sees half a package.
tmp="$(mktemp -d "$here/.gen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
printf '*\n' > "$tmp/.gitignore" # build output: never committed, whatever the top-level .gitignore says
"$python" -m grpc_tools.protoc -I "$root/proto" -I "$wkt" \
  --python_out="$tmp" --grpc_python_out="$tmp" \
  polku/v1/event.proto polku/v1/plugin.proto
rm -rf "$out"
mv -T "$tmp" "$out"
echo "gen.sh: stubs in ${out#"$root"/}/polku/v1/" >&2
