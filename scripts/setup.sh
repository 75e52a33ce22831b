#!/usr/bin/env bash
# Create .venv (if missing) and install aiexport with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
.venv/bin/python -m pip install --quiet -e '.[test]'
# The ledger's batch loop in C (setup.py) is optional: without a compiler or OpenSSL's headers the
# install succeeds and the same loop runs in Python, several times slower. Say so.
if ! .venv/bin/python -c "import aiexport.ledger._chainc" 2>/dev/null; then
  echo "setup: the compiled ledger batch loop was not built (needs gcc and libssl-dev:" \
    "apt-get install gcc libssl-dev, then rerun); the Python loop will be used" >&2
fi
