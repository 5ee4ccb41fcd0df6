#!/usr/bin/env bash
# Installs promtool (Debian's `prometheus` package ships /usr/bin/promtool) for the chart's
# monitoring tests: `promtool check rules` on the PrometheusRule's groups and `promtool test rules`
# on its alerts.
#
# Idempotent: does nothing when promtool already runs; `apt-get update` runs only when the
# package is missing. Needs root (or sudo) only when it has something to install. The package's
# service is not started (policy-rc.d refuses it in containers; nothing here needs a server).
# Usage: scripts/install-promtool.sh     (prints the path of promtool on its last line)
set -euo pipefail

say() { echo "install-promtool: $*" >&2; }

if command -v promtool >/dev/null 2>&1; then
  command -v promtool
  exit 0
fi

sudo=''
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { say "FAILED: not root and no sudo to install the prometheus package"; exit 1; }
  sudo='sudo'
fi

# One run at a time (several test files may ask together): the second waits, then finds it.
if command -v flock >/dev/null 2>&1; then
  exec 9>"${TMPDIR:-/tmp}/polku-install-promtool.lock"
  flock -w 600 9 || { say "FAILED: another run held the lock for 10 minutes"; exit 1; }
  if command -v promtool >/dev/null 2>&1; then
    command -v promtool
    exit 0
  fi
fi

say "installing the prometheus package (for promtool)"
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >&2
command -v promtool >/dev/null 2>&1 || { say "FAILED: the prometheus package installed no promtool"; exit 1; }
command -v promtool
