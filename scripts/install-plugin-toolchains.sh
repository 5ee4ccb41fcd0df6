#!/usr/bin/env bash
# Installs what the Python and Go example plugins (examples/plugins/python, examples/plugins/go)
# need to be generated, built and run, from Debian's apt (no PyPI or Go proxy here):
#
#   python3-grpcio python3-grpc-tools       Python plugins; grpc_tools bundles its own protoc,
#                                           which also drives the Go code generators below
#   golang-go golang-google-grpc-dev        Go plugins, built GOPATH-style (GO111MODULE=off)
#   golang-google-protobuf-dev              against /usr/share/gocode
#   protoc-gen-go protoc-gen-go-grpc
#   golang-github-golang-protobuf-1-5-dev   grpc-go's codec goes through github.com/golang/protobuf;
#                                           apt's default for it (1-3-dev, v1.3.5) predates the
#                                           protobuf APIv2 that protoc-gen-go 1.28 generates and
#                                           panics on those messages. 1-5-dev replaces it.
#
# Idempotent: packages already installed (dpkg-query) are skipped; `apt-get update` runs only when
# something is missing. Needs root (or sudo) only when it has something to install.
# Usage: scripts/install-plugin-toolchains.sh [python|go|all]     (default all)
set -euo pipefail

what="${1:-all}"
python_pkgs=(python3-grpcio python3-grpc-tools)
go_pkgs=(golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc)
case "$what" in
  python) want=("${python_pkgs[@]}") ;;
  go) want=("${python_pkgs[@]}" "${go_pkgs[@]}") ;; # the Go build runs grpc_tools.protoc
  all) want=("${python_pkgs[@]}" "${go_pkgs[@]}") ;;
  *) echo "usage: $0 [python|go|all]" >&2; exit 2 ;;
esac

say() { echo "install-plugin-toolchains: $*"; }
fail() { echo "install-plugin-toolchains: FAILED: $*" >&2; exit 1; }

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_missing plugin-toolchains "${want[@]}"

# What the example builds actually run: check it works, not just that dpkg says so.
/usr/bin/python3 -c 'import grpc, grpc_tools.protoc' 2>/dev/null \
  || fail "/usr/bin/python3 cannot import grpc and grpc_tools (python3-grpcio, python3-grpc-tools)"
say "python: $(/usr/bin/python3 -c 'import grpc; print("grpcio", grpc.__version__)')"
if [ "$what" != python ]; then
  command -v go >/dev/null 2>&1 || fail "go not on PATH (golang-go)"
  for b in protoc-gen-go protoc-gen-go-grpc; do
    [ -x "/usr/bin/$b" ] || fail "/usr/bin/$b missing ($b)"
  done
  [ -d /usr/share/gocode/src/google.golang.org/grpc ] || fail "/usr/share/gocode/src/google.golang.org/grpc missing (golang-google-grpc-dev)"
  [ -d /usr/share/gocode/src/google.golang.org/protobuf ] || fail "/usr/share/gocode/src/google.golang.org/protobuf missing (golang-google-protobuf-dev)"
  # v1.4+ of github.com/golang/protobuf is a shim over APIv2 (proto/wrappers.go); v1.3 is not.
  [ -f /usr/share/gocode/src/github.com/golang/protobuf/proto/wrappers.go ] \
    || fail "/usr/share/gocode/src/github.com/golang/protobuf is v1.3 (golang-github-golang-protobuf-1-3-dev); install golang-github-golang-protobuf-1-5-dev"
  say "go: $(go version)"
fi
say "ready"
