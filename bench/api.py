"""Single decisions per second and latency over loopback, with the SQLite ledger.

Starts `aiexport serve` (uvicorn) in a subprocess on a fresh SQLite ledger, creates an exporter
key, then drives `POST /v1/decisions` from a small pool of client threads for a bounded number of
requests, and prints decisions/s with p50 and p99 latency. Orders vary in item, quantity,
destination and consignee so that the ledger is read for real accounts.

The client is deliberately thin (one keep-alive socket per thread, request bytes built before the
clock starts, a minimal HTTP/1.1 response reader) so that on a small machine it leaves the CPU to
the server. Its ceiling is measured first, against `GET /healthz` with the same threads and
request count, and printed as the floor: no endpoint can be served faster than that on this
machine. Server and client CPU per request (from /proc) say where the time went.

    python bench/api.py                      # 4,000 dry-run decisions, 4 client threads
    python bench/api.py --commit             # each decision records its quota draws
    python bench/api.py --requests 10000 --threads 8 --workers 2

Goal (issue 7): ≥ 1,000 decisions/s and p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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


def _request(method: str, path: str, key: str, body: dict[str, object] | None = None) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


class Conn:
    """One keep-alive HTTP/1.1 connection that sends prepared bytes and reads one response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def send(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv()
        head = buf[:end].decode("latin-1")
        status = int(head[9:12])
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        start = end + 4
        while len(buf) < start + length:
            buf += self._recv()
        self.buf = buf[start + length :]
        return status, buf[start : start + length]

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk

    def close(self) -> None:
        self.sock.close()


@dataclass
class Run:
    latencies: list[float]
    wall: float
    errors: list[str]
    server_cpu: float
    client_cpu: float
    load: tuple[float, float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    def pct(self, q: float) -> float:
        xs = self.latencies
        return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000

    def line(self) -> str:
        n = len(self.latencies)
        return (
            f"{self.rate:7,.0f} req/s   p50 {self.pct(0.5):5.1f} ms   p99 {self.pct(0.99):5.1f} ms"
            f"   errors {len(self.errors)}   CPU/request: server {self.server_cpu / n * 1e3:.2f} ms,"
            f" client {self.client_cpu / n * 1e3:.2f} ms   load {self.load[0]:.1f}→{self.load[1]:.1f}"
        )


def _cpu_seconds(pids: list[int]) -> float:
    """User+system CPU of the server processes (and their children: uvicorn workers)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    seen = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total / tick


def drive(port: int, requests: list[bytes], threads: int, server_pid: int) -> Run:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(len(requests)))
    conns = [Conn(port) for _ in range(threads)]
    start = threading.Barrier(threads + 1)

    def worker(conn: Conn) -> None:
        mine: list[float] = []
        bad: list[str] = []
        start.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t = time.perf_counter()
            status, body = conn.send(requests[i])
            mine.append(time.perf_counter() - t)
            if status != 200:
                bad.append(f"{status} {body[:200]!r}")
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    pool = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for th in pool:
        th.start()
    load0 = os.getloadavg()[0]
    cpu0, ccpu0 = _cpu_seconds([server_pid]), time.process_time()
    start.wait()
    t0 = time.perf_counter()
    for th in pool:
        th.join()
    wall = time.perf_counter() - t0
    cpu1, ccpu1 = _cpu_seconds([server_pid]), time.process_time()
    for c in conns:
        c.close()
    latencies.sort()
    return Run(latencies, wall, errors, cpu1 - cpu0, ccpu1 - ccpu0, (load0, os.getloadavg()[0]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
    cmd = [*exe, "serve", "--db", db, "--port", str(port)]
    if args.workers != 1:
        cmd += ["--workers", str(args.workers)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            try:
                c = Conn(port)
                ok = c.send(_request("GET", "/healthz", key))[0] == 200
                c.close()
                if ok:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        warm = [
            _request("POST", "/v1/decisions", key, _order(10_000_000 + i, False))
            for i in range(args.warmup)
        ]
        drive(port, warm, args.threads, server.pid)
        health = [_request("GET", "/healthz", key)] * args.requests
        floor = drive(port, health, args.threads, server.pid)
        orders = [
            _request("POST", "/v1/decisions", key, _order(i, args.commit))
            for i in range(args.requests)
        ]
        run = drive(port, orders, args.threads, server.pid)
        sample = Conn(port)
        status, body = sample.send(orders[0])
        sample.close()
        assert status == 200 and "status" in json.loads(body), body[:200]
    finally:
        server.terminate()
        server.wait(10)
    mode = "commit" if args.commit else "dry run"
    print(
        f"bench/api.py: {args.requests:,} requests, {args.threads} client threads, "
        f"{args.workers} server worker(s), SQLite ledger, {os.cpu_count()} CPUs"
    )
    print(f"  GET /healthz (floor)        {floor.line()}")
    print(f"  POST /v1/decisions ({mode}) {run.line()}")
    print(
        f"  => {run.rate:,.0f} decisions/s, p50 {run.pct(0.5):.1f} ms, p99 {run.pct(0.99):.1f} ms "
        f"(floor {floor.rate:,.0f} req/s; goal ≥ 1,000 decisions/s and p99 ≤ 20 ms)"
    )
    if run.errors:
        print("  first error:", run.errors[0])


if __name__ == "__main__":
    main()
