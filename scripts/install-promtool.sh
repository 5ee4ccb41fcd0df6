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

fail() { say "FAILED: $*"; exit 1; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_install_missing promtool prometheus
command -v promtool >/dev/null 2>&1 || fail "the prometheus package installed no promtool"
command -v promtool
