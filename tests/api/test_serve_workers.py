"""`aiexport serve --workers 2`: worker processes share the port and the database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ORDER


@pytest.mark.slow
def test_two_workers_serve_decisions(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    exe = [sys.executable, "-m", "aiexport"]
    out = subprocess.run(
        [*exe, "keys", "create", "--role", "exporter", "--name", "acme", "--db", db],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    key = out.stdout.strip().splitlines()[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "AIEXPORT_DB"}
    server = subprocess.Popen(
        [*exe, "serve", "--db", db, "--port", str(port), "--workers", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        headers = {"Authorization": f"Bearer {key}"}
        for i in range(20):
            r = httpx.post(f"{base}/v1/decisions", json={**ORDER, "order_id": f"W-{i}"},
                           headers=headers, timeout=10)  # fmt: skip
            assert r.status_code == 200 and r.json()["recorded"] is False
        r = httpx.post(f"{base}/v1/decisions", json={**ORDER, "commit": True}, headers=headers)
        assert r.status_code == 200 and r.json()["recorded"] is True
        assert httpx.get(f"{base}/healthz").json()["ledger_entries"] >= 1
    finally:
        server.terminate()
        server.wait(20)
