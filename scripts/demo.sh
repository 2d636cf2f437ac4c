#!/usr/bin/env bash
# Run the end-to-end demo on the embedded defaults (no server needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/python -m examples.demo.flow "$@"
