#!/usr/bin/env bash
# Installs the PostgreSQL server the PostgresEmitter tests and `npm run bench:sinks` start (each on
# its own temp data folder and private port, as the `postgres` user: the server refuses root), from
# Debian's apt. The tests find the binaries under /usr/lib/postgresql/<version>/bin; the package's
# own cluster (pg_ctlcluster, port 5432) is never used.
#
# Idempotent: nothing happens when the package is installed; `apt-get update` runs only when it is
# missing. Needs root (or sudo) only when it has something to install.
set -euo pipefail

say() { echo "install-postgres: $*"; }
fail() { echo "install-postgres: FAILED: $*" >&2; exit 1; }

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/polku-install-postgres.lock"
  flock -w 600 9 || fail "another install-postgres run held the lock for 10 minutes"
fi

if installed postgresql; then
  say "postgresql already installed"
else
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install PostgreSQL by hand"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo; install postgresql by hand"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  lock=(-o DPkg::Lock::Timeout=300)
  say "installing postgresql"
  "${sudo[@]}" apt-get "${lock[@]}" update -qq || fail "apt-get update failed"
  "${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends postgresql >/dev/null \
    || fail "apt-get install postgresql failed"
  installed postgresql || fail "postgresql is still not installed after apt-get install"
fi

# What the tests run: check it is there, not just that dpkg says so.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || fail "no /usr/lib/postgresql/<version>/bin"
for b in initdb pg_ctl postgres; do [ -x "$bin/$b" ] || fail "$bin/$b missing"; done
id postgres >/dev/null 2>&1 || fail "no postgres user (the package creates it)"
say "ready: $("$bin/postgres" --version)"
