# Shared by scripts/install-*.sh (sourced, not run): installs the Debian packages that are
# missing, idempotently. The sourcing script defines `say` and `fail` first.
#
#   apt_install_missing LOCK_NAME PACKAGE...
#
# One run per LOCK_NAME at a time (test files may start the same installer together: the second
# waits, then finds everything installed). Packages dpkg already lists as installed are skipped;
# `apt-get update` runs only when something is missing; root or sudo is needed only then. apt's
# output goes to stderr, so a script may keep its stdout for an answer.

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

apt_install_missing() {
  local name=$1
  shift
  if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/polku-install-${name}.lock"
    flock -w 600 9 || fail "another install-${name} run held the lock for 10 minutes"
  fi
  local missing=() p
  for p in "$@"; do
    if installed "$p"; then say "$p already installed"; else missing+=("$p"); fi
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  command -v apt-get >/dev/null 2>&1 || fail "apt-get not found; install by hand: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo; install by hand: ${missing[*]}"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Wait for another apt/dpkg run (a parallel installer) instead of failing on its lock.
  local lock=(-o DPkg::Lock::Timeout=300)
  say "installing ${missing[*]}"
  local start
  start=$(date +%s)
  "${sudo[@]}" apt-get "${lock[@]}" update -qq >&2 || fail "apt-get update failed"
  "${sudo[@]}" apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || fail "apt-get install ${missing[*]} failed"
  for p in "${missing[@]}"; do installed "$p" || fail "$p is still not installed after apt-get install"; done
  say "installed ${#missing[@]} package(s) in $(($(date +%s) - start)) s"
}
