#!/usr/bin/env bash
# Installs the servers the Redis Streams and NATS JetStream emitter tests and benchmarks start on
# private ports, from Debian's apt:
#
#   redis-server   redis-server and redis-cli (7.0 in bookworm); the tests start their own
#                  server with --port/--dir, the packaged service is not used
#   redis-tools    redis-benchmark, the server's own ceiling in `npm run bench:sinks`
#   nats-server    nats-server 2.9 with JetStream (-js -sd <dir>)
#
# Idempotent: packages already installed (dpkg-query) are skipped; `apt-get update` runs only when
# something is missing. Needs root (or sudo) only when it has something to install.
set -euo pipefail

want=(redis-server redis-tools nats-server)

say() { echo "install-redis-nats: $*"; }
fail() { echo "install-redis-nats: FAILED: $*" >&2; exit 1; }

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_missing redis-nats "${want[@]}"

# What the tests actually run: check it starts, not just that dpkg says so.
command -v redis-server >/dev/null 2>&1 || fail "redis-server not on PATH (redis-server)"
command -v redis-benchmark >/dev/null 2>&1 || fail "redis-benchmark not on PATH (redis-tools)"
command -v nats-server >/dev/null 2>&1 || fail "nats-server not on PATH (nats-server)"
say "$(redis-server --version | cut -d' ' -f1-3)"
say "nats-server $(nats-server --version 2>&1 | head -1)"
say "ready"
