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

# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_missing postgres postgresql

# What the tests run: check it is there, not just that dpkg says so.
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || fail "no /usr/lib/postgresql/<version>/bin"
for b in initdb pg_ctl postgres; do [ -x "$bin/$b" ] || fail "$bin/$b missing"; done
id postgres >/dev/null 2>&1 || fail "no postgres user (the package creates it)"
say "ready: $("$bin/postgres" --version)"
