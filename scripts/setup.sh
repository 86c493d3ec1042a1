#!/usr/bin/env bash
# Prepares a fresh machine: system packages, a virtualenv in .venv, fnmesh installed
# editable with its test tools. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for tool in git:git wrk:wrk openssl:openssl promtool:prometheus; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Runs a command, showing its output only when it fails.
quietly() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    cat "$log"
    rm -f "$log"
    echo "setup: failed: $*" >&2
    exit 1
  fi
  rm -f "$log"
}

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.fnmesh-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "setup: installing fnmesh and its dependencies into .venv"
  quietly .venv/bin/pip install -q --disable-pip-version-check --upgrade pip
  quietly .venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
  touch "$stamp"
else
  # new sub-packages are picked up by re-running the editable install (fast, no deps)
  quietly .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
fi
