#!/usr/bin/env bash
# Set up and run the main job on bundled data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/aiexport screen --sample --out out/decisions.jsonl
