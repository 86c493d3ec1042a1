#!/usr/bin/env bash
# Sets up this machine and runs the embedded platform with the `hello` example deployed.
# The platform home defaults to ~/.fnmesh (set FNMESH_HOME to change it); Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fn up --example hello "$@"
