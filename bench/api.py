"""Single decisions per second and latency over loopback, with the SQLite ledger.

Starts `aiexport serve` (uvicorn) in a subprocess on a fresh SQLite ledger, creates an exporter
key, then drives `POST /v1/decisions` from a small thread pool of keep-alive httpx clients for a
bounded number of requests, and prints decisions/s with p50 and p99 latency. Orders vary in item,
quantity, destination and consignee so that the ledger is read for real accounts.

    python bench/api.py                      # 4,000 dry-run decisions, 4 client threads
    python bench/api.py --commit             # each decision records its quota draws
    python bench/api.py --requests 10000 --threads 8

Goal (issue 7): ≥ 1,000 decisions/s and p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ITEMS = ["H100-SXM5", "H200", "L40S", "B200", "MI300X", "A100-SXM4", "H20", "RTX-4090"]
DESTS = ["IN", "BR", "FR", "SG", "MX", "AE", "JP", "VN", "CN", "DE"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _order(i: int, commit: bool) -> dict[str, object]:
    return {
        "order_id": f"B-{i}",
        "order_date": f"2025-{6 + i % 6:02d}-{1 + i % 27:02d}",
        "item": ITEMS[i % len(ITEMS)],
        "quantity": 1 + i % 50,
        "destination": DESTS[i % len(DESTS)],
        "consignee_name": f"Consignee {i % 500}",
        "end_use": "datacenter",
        "authorization": "LPP" if i % 3 == 0 else None,
        "commit": commit,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument(
        "--commit", action="store_true", help="record quota draws (a ledger write each)"
    )
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="aiexport-bench-"))
    db = f"sqlite:///{tmp / 'bench.db'}"
    exe = [sys.executable, "-m", "aiexport"]
    out = subprocess.run(
        [*exe, "keys", "create", "--role", "exporter", "--name", "bench", "--db", db],
        check=True,
        capture_output=True,
        text=True,
    )
    key = out.stdout.strip().splitlines()[-1]
    port = _port()
    server = subprocess.Popen(
        [*exe, "serve", "--db", db, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers) as c:
            for i in range(args.warmup):
                c.post("/v1/decisions", json=_order(10_000_000 + i, False)).raise_for_status()
        latencies: list[float] = []
        lock = threading.Lock()
        counter = iter(range(args.requests))
        errors: list[str] = []

        def worker() -> None:
            mine: list[float] = []
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        break
                    t = time.perf_counter()
                    r = c.post("/v1/decisions", json=_order(i, args.commit))
                    mine.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text[:200]}")
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(10)
    latencies.sort()
    n = len(latencies)
    p50 = latencies[n // 2] * 1000
    p99 = latencies[min(n - 1, int(n * 0.99))] * 1000
    mode = "commit" if args.commit else "dry run"
    print(
        f"POST /v1/decisions ({mode}), SQLite ledger, {args.threads} client threads, {n:,} requests, {os.cpu_count()} CPUs"
    )
    print(
        f"  {n / wall:,.0f} decisions/s   p50 {p50:.1f} ms   p99 {p99:.1f} ms   errors {len(errors)}"
    )
    if errors:
        print("  first error:", errors[0])
    load = os.getloadavg()[0]
    print(f"  (load average during the run: {load:.1f})")


if __name__ == "__main__":
    main()
