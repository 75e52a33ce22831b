#!/usr/bin/env bash
# Set up, lint, type-check and run the whole test suite. Extra arguments go to pytest.
# PostgreSQL-backed tests run when AIEXPORT_TEST_PG_URL is set (.ci/run starts a server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench scripts
.venv/bin/ruff format --check src tests bench scripts
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
