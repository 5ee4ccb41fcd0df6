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

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# One run at a time (the Redis and NATS tests may start it together): the second waits, then finds
# everything installed.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/polku-install-redis-nats.lock"
  flock -w 600 9 || fail "another install-redis-nats run held the lock for 10 minutes"
fi

missing=()
for p in "${want[@]}"; do
  if installed "$p"; then say "$p already installed"; else missing+=("$p"); fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install by hand: ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo; install by hand: ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run (a parallel installer) instead of failing on its lock.
  lock=(-o DPkg::Lock::Timeout=300)
  say "installing ${missing[*]}"
  start=$(date +%s)
  "${sudo[@]}" apt-get "${lock[@]}" update -qq || fail "apt-get update failed"
  "${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
  for p in "${missing[@]}"; do installed "$p" || fail "$p is still not installed after apt-get install"; done
  say "installed ${#missing[@]} package(s) in $(( $(date +%s) - start )) s"
fi

# What the tests actually run: check it starts, not just that dpkg says so.
command -v redis-server >/dev/null 2>&1 || fail "redis-server not on PATH (redis-server)"
command -v redis-benchmark >/dev/null 2>&1 || fail "redis-benchmark not on PATH (redis-tools)"
command -v nats-server >/dev/null 2>&1 || fail "nats-server not on PATH (nats-server)"
say "$(redis-server --version | cut -d' ' -f1-3)"
say "nats-server $(nats-server --version 2>&1 | head -1)"
say "ready"
