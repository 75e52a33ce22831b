"""Benchmark the quota ledger against the floor: a raw INSERT of the same rows.

For SQLite (a file in a temporary directory) and PostgreSQL (`--pg URL`, else
`$AIEXPORT_TEST_PG_URL`), measure reservations per second for one writer and for N concurrent
client processes, and the same count of raw single-row INSERT transactions into a table shaped
like `ledger_entries` (same indexes, same durability: SQLite WAL + synchronous=FULL, PostgreSQL
synchronous_commit=on). Then the batch path: one transaction recording many orders' draws.

    .venv/bin/python bench/ledger.py                      # SQLite, and PostgreSQL if configured
    .venv/bin/python bench/ledger.py --n 4000 --clients 8 --batch 100000
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import multiprocessing as mp
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine

from aiexport.ledger import DrawRequest, Ledger
from aiexport.ledger import _tables as tables
from aiexport.rules.determination import Draw

FLOOR_DDL = (
    "CREATE TABLE floor_entries (seq BIGINT PRIMARY KEY, txn TEXT NOT NULL, kind TEXT NOT NULL, "
    "account TEXT NOT NULL, amount BIGINT NOT NULL, order_id TEXT, actor TEXT NOT NULL, "
    "citation TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT, ref_seq BIGINT, "
    "idem_key TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
    "CREATE INDEX ix_floor_account ON floor_entries (account, seq)",
)
SQLITE_FLOOR_DDL = (FLOOR_DDL[0].replace("seq BIGINT PRIMARY KEY", "seq INTEGER PRIMARY KEY"),)


def _fresh(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        tables.metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS floor_entries")
    engine.dispose()


def _raw_connect(url: str):  # type: ignore[no-untyped-def]
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, timeout=120)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn, "?"
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")), "%s"


def _floor_setup(url: str) -> None:
    conn, _ = _raw_connect(url)
    ddl = (*SQLITE_FLOOR_DDL, FLOOR_DDL[1]) if url.startswith("sqlite") else FLOOR_DDL
    for stmt in ddl:
        conn.execute(stmt)
    if not url.startswith("sqlite"):
        conn.commit()
    conn.close()


def _floor_worker(url: str, worker: int, n: int) -> None:
    conn, ph = _raw_connect(url)
    sql = f"INSERT INTO floor_entries VALUES ({', '.join([ph] * 14)})"
    sqlite = url.startswith("sqlite")
    now = dt.datetime.now(dt.UTC).isoformat()
    for i in range(n):
        seq = worker * 10_000_000 + i + 1
        digest = hashlib.sha256(str(seq).encode()).hexdigest()
        row = (seq, "t" * 32, "reserve", f"lpp/c{i % 100}/2025", 1_000_000, f"o{seq}", "bench",
               "15 CFR 740.29", now, now, None, f"k{seq}#0", digest, digest)  # fmt: skip
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(sql, row)
            conn.execute("COMMIT")
        else:
            conn.execute(sql, row)
            conn.commit()
    conn.close()


def _ledger_worker(url: str, worker: int, n: int) -> None:
    ledger = Ledger(url)
    hold = dt.timedelta(hours=1)
    for i in range(n):
        ledger.reserve(
            [Draw(f"lpp/c{i % 100}/2025", Decimal(1), Decimal(10**12), "15 CFR 740.29")],
            key=f"w{worker}-{i}",
            actor="bench",
            order_id=f"o{worker}-{i}",
            hold=hold,
        )
    ledger.close()


def _timed(target, url: str, clients: int, n: int) -> float:  # type: ignore[no-untyped-def]
    ctx = mp.get_context("fork")
    per = n // clients
    procs = [ctx.Process(target=target, args=(url, w, per)) for w in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"{target.__name__} failed")
    return per * clients / (time.perf_counter() - start)


def _batch(url: str, entries: int) -> float:
    _fresh(url)
    ledger = Ledger(url)
    requests = [
        DrawRequest(
            f"b{i}",
            (
                Draw(f"lpp/c{i % 1000}/2025", Decimal(7), Decimal(10**12), "15 CFR 740.29"),
                Draw(f"aia/c{i % 1000}", Decimal(7), None, "15 CFR 740.30"),
            ),
            f"o{i}",
        )
        for i in range(entries // 2)
    ]
    start = time.perf_counter()
    ledger.record_batch(requests, actor="bench")
    rate = entries / (time.perf_counter() - start)
    ledger.close()
    return rate


def _batch_floor(url: str, entries: int) -> float:
    """The same number of entry-shaped rows in one transaction with one executemany."""
    _fresh(url)
    _floor_setup(url)
    conn, ph = _raw_connect(url)
    now = dt.datetime.now(dt.UTC).isoformat()
    digest = hashlib.sha256(b"x").hexdigest()
    rows = [
        (
            i + 1,
            "t" * 32,
            "commit",
            f"lpp/c{i % 1000}/2025",
            7_000_000,
            f"o{i}",
            "bench",
            "15 CFR 740.29",
            now,
            None,
            None,
            f"b{i}#0",
            digest,
            digest,
        )
        for i in range(entries)
    ]
    sql = f"INSERT INTO floor_entries VALUES ({', '.join([ph] * 14)})"
    start = time.perf_counter()
    if url.startswith("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
    else:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)
        conn.commit()
    rate = entries / (time.perf_counter() - start)
    conn.close()
    return rate


def bench(name: str, url: str, n: int, clients: int, batch: int) -> None:
    for k, label in ((1, "1 writer"), (clients, f"{clients} clients")):
        _fresh(url)
        _floor_setup(url)
        floor = _timed(_floor_worker, url, k, n)
        _fresh(url)
        Ledger(url).close()
        ours = _timed(_ledger_worker, url, k, n)
        print(
            f"{name:<10} {label:<11} reservations/s {ours:>9,.0f}   raw INSERT floor/s "
            f"{floor:>9,.0f}   ratio {ours / floor:>5.0%}",
            flush=True,
        )
    if batch:
        floor = _batch_floor(url, batch)
        rate = _batch(url, batch)
        print(
            f"{name:<10} batch       entries/s      {rate:>9,.0f}   raw executemany/s  "
            f"{floor:>9,.0f}   ratio {rate / floor:>5.0%}   ({batch:,} entries, one transaction)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="reservations per measurement")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--batch", type=int, default=100_000, help="entries in the batch run (0: skip)")
    ap.add_argument("--pg", default=os.environ.get("AIEXPORT_TEST_PG_URL"))
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgres":
            bench("sqlite", f"sqlite:///{tmp}/bench.db", args.n, args.clients, args.batch)
    if args.pg and args.only != "sqlite":
        bench("postgres", args.pg, args.n, args.clients, args.batch)
    elif not args.pg:
        print("postgres   skipped: pass --pg URL or set AIEXPORT_TEST_PG_URL")


if __name__ == "__main__":
    main()
