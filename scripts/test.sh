#!/usr/bin/env bash
# Set up, lint, type-check and run the whole test suite. Extra arguments go to pytest.
# PostgreSQL-backed tests run when AIEXPORT_TEST_PG_URL is set (.ci/run starts a server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
DIRS=$(for d in src tests bench scripts; do [ -d "$d" ] && echo "$d"; done)
# shellcheck disable=SC2086
.venv/bin/ruff check $DIRS
# shellcheck disable=SC2086
.venv/bin/ruff format --check $DIRS
.venv/bin/mypy
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
