"""Benchmark the quota ledger against the floor: a raw INSERT of the same rows.

For SQLite (a file in a temporary directory) and PostgreSQL (`--pg URL`, else
`$AIEXPORT_TEST_PG_URL`), measure reservations per second for one writer and for N concurrent
client processes, against two floors, each the same count of raw INSERT transactions with the
same durability (SQLite WAL + synchronous=FULL; PostgreSQL synchronous_commit=on, each
acknowledged once its commit is flushed - as each reservation is, its asynchronous commit being
followed by a synchronous barrier transaction in the same call, see `aiexport.ledger._db`):

- *same rows*: the issue's floor. Each transaction inserts the rows one reservation inserts - its
  transaction, entry, hold and request - into copies of the ledger's tables (same columns, types
  and indexes), raw: no lock, no check, no hash chain, no balance.
- *entry row alone*: a stricter floor, one entry-shaped row per transaction.

Each floor is as lean as a client can make it: on SQLite `BEGIN IMMEDIATE`, the INSERTs, `COMMIT`;
on PostgreSQL one prepared statement (the INSERTs as data-modifying CTEs) through libpq in
autocommit, so one round trip per transaction, as a reservation's call is.

Steady state: the clock starts once every client process has connected and set up (the floors
their prepared statement, the ledger one warm-up reservation: its connection's prepared
statements, the ids of the names it uses); process start-up is no part of a reservation's cost.
The timed reservations go round 100 accounts (`--accounts`; 1: one cap every client draws on,
as a country's allocation is), each new to the ledger once. A process learns an account's id the
first time it draws on it (a lookup; through the sequencer, from the answer), so `--n` is 8,000
by default (1,000 per client at 8): at 2,000 the first round of the accounts, lookups and all,
was two fifths of an 8-client run, which then measured its start more than its steady state.

On PostgreSQL, N clients that find each other writing at once start a sequencer of their own
(`aiexport.ledger._sequencer`, `SequencerClient.summon`): the first row measures that, as a user
gets it, its start (a second or two on a loaded machine, while the clients write by themselves)
inside the timed run; it is stopped after each run. The N-client runs are also made with that
turned off (`AIEXPORT_LEDGER_AUTOSERVE=0`: each client by itself), and, like the 1-writer runs,
through a sequencer already serving (`aiexport ledger serve`, started around the run and stopped
with SIGTERM), against the same floors; and N threads of one process sharing one `Ledger` (as a
server's request threads would), against N threads inserting raw: as they are (they start a
sequencer too), and with that turned off (their draws combined in the process alone).

Then the batch path: one transaction recording many orders' draws, against one `executemany` of
the same number of entry rows.

Every figure is the median of `--trials` runs (3), interleaved with the floors' as the shared
machine's load comes and goes; a ratio is the median of each run's ratio to the floor measured
just before it, printed with their range.

On PostgreSQL it drops and recreates the ledger's tables at `--pg`: it refuses a database that
holds a ledger it did not write, unless `--wipe` is given.

    .venv/bin/python bench/ledger.py                      # SQLite, and PostgreSQL if configured
    .venv/bin/python bench/ledger.py --n 2000 --clients 8 --batch 100000   # shorter, less steady
    .venv/bin/python bench/ledger.py --only postgres --accounts 1 --batch 0   # one hot cap
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path

from sqlalchemy import MetaData, Table, create_engine, inspect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.elements import quoted_name

from aiexport.ledger import DrawRequest, Ledger
from aiexport.ledger import _tables as tables
from aiexport.ledger._db import Database, _text
from aiexport.ledger._sequencer import ENV_AUTOSERVE, listening, socket_path, stop_serving
from aiexport.rules.determination import Draw

# How many accounts the timed reservations go round (`--accounts`; set before the clients fork).
ACCOUNTS = 100

# The tables a reservation inserts a row into (a transaction, its entry, its hold, its request).
ROW_TABLES = (tables.txns, tables.entries, tables.holds, tables.requests)


def _floor_ddl(url: str, of: tuple[Table, ...] = (tables.entries,)) -> list[str]:
    """DDL of `floor_*`: the ledger's own tables `of` (columns, types, indexes) renamed."""
    dialect = Database(url).engine.dialect
    meta = MetaData()
    out: list[str] = []
    for table in of:
        name = table.name.replace("ledger_", "floor_")
        floor = table.to_metadata(meta, name=name)
        for ix in floor.indexes:
            ix.name = quoted_name(str(ix.name).replace(table.name, name), None)
        out.append(str(CreateTable(floor).compile(dialect=dialect)))
        out.extend(str(CreateIndex(ix).compile(dialect=dialect)) for ix in floor.indexes)
    return out


# The bare reference: 8 columns and one unique index, as a lower bound on what any entry costs.
BARE_DDL = (
    "CREATE TABLE bare_entries (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, account TEXT NOT "
    "NULL, amount BIGINT NOT NULL, idem_key TEXT NOT NULL, actor TEXT NOT NULL, citation TEXT "
    "NOT NULL, created_at TEXT NOT NULL)",
    "CREATE UNIQUE INDEX ux_bare_key ON bare_entries (idem_key)",
)


def _fresh(url: str) -> None:
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        tables.metadata.drop_all(conn)
        for table in ROW_TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table.name.replace('ledger_', 'floor_')}")
        conn.exec_driver_sql("DROP TABLE IF EXISTS bare_entries")
    engine.dispose()


SCRATCH_MARK = "bench_scratch"  # a table the benchmarks leave: this database is theirs to wipe


def claim_scratch(url: str, wipe: bool) -> None:
    """Refuse a PostgreSQL database that holds a ledger the benchmarks did not write: they drop
    and recreate the ledger's tables. `wipe`: the caller has said it may go."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            names = set(inspect(conn).get_table_names())
            held = {
                table.name: conn.exec_driver_sql(f"SELECT count(*) FROM {table.name}").scalar_one()
                for table in (tables.entries, tables.licenses, tables.veus)
                if table.name in names
            }
            if not wipe and SCRATCH_MARK not in names and any(held.values()):
                found = ", ".join(f"{n:,} rows in {t}" for t, n in held.items() if n)
                raise SystemExit(
                    f"{engine.url.render_as_string()}: the benchmark drops and recreates the "
                    f"ledger's tables, and this database holds a ledger ({found}). Point --pg at "
                    "a scratch database, or pass --wipe."
                )
            conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {SCRATCH_MARK} (at TEXT)")
    finally:
        engine.dispose()


def _raw_connect(url: str):  # type: ignore[no-untyped-def]
    """A DB-API connection set up exactly as the ledger's (SQLite: WAL, synchronous=FULL, the
    same page cache, autocommit off so BEGIN is ours; PostgreSQL: synchronous_commit=on)."""
    raw = Database(url).engine.raw_connection()
    return raw.driver_connection, "?" if url.startswith("sqlite") else "%s"


def _floor_setup(url: str) -> None:
    conn, _ = _raw_connect(url)
    for stmt in _floor_ddl(url, ROW_TABLES):
        conn.execute(stmt)
    if not url.startswith("sqlite"):
        conn.commit()
    conn.close()


def _floor_worker(url: str, worker: int, n: int, ready: Barrier) -> None:
    """The strict floor: one entry row per transaction."""
    _insert_rows(url, worker, n, ready, (tables.entries,))


def _rows_floor_worker(url: str, worker: int, n: int, ready: Barrier) -> None:
    """The issue's floor: the rows one reservation inserts (its transaction, entry, hold and
    request) in one transaction."""
    _insert_rows(url, worker, n, ready, ROW_TABLES)


def _insert_rows(url: str, worker: int, n: int, ready: Barrier, into: tuple[Table, ...]) -> None:
    """`n` transactions, each inserting one reservation's row into each of the floor copies of
    `into`. SQLite: BEGIN IMMEDIATE, the INSERTs, COMMIT. PostgreSQL: one prepared statement
    (the INSERTs as data-modifying CTEs) run through libpq in autocommit, so each transaction
    is one round trip, committed synchronously - the leanest a client can make it."""
    conn, _ = _raw_connect(url)
    sqlite = url.startswith("sqlite")
    now = dt.datetime.now(dt.UTC).isoformat()
    names = [t.name.replace("ledger_", "floor_") for t in into]
    if sqlite:
        sqls = [
            f"INSERT INTO {nm} VALUES ({', '.join('?' * len(t.c))})"
            for nm, t in zip(names, into, strict=True)
        ]
    else:
        conn.autocommit = True
        pgconn = conn.pgconn
        k = 0
        parts = []
        for nm, t in zip(names, into, strict=True):
            marks = ", ".join(f"${k + j + 1}" for j in range(len(t.c)))
            k += len(t.c)
            parts.append(f"INSERT INTO {nm} VALUES ({marks})")
        sql = parts[-1]
        if len(parts) > 1:
            ctes = ", ".join(f"i{j} AS ({part})" for j, part in enumerate(parts[:-1]))
            sql = f"WITH {ctes} {parts[-1]}"
        pgconn.prepare(b"floor", sql.encode())
    ready.wait()
    for i in range(n):
        seq = worker * 10_000_000 + i + 1
        rows = [_floor_row(t, seq, i, now) for t in into]
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
            for sql, row in zip(sqls, rows, strict=True):
                conn.execute(sql, row)
            conn.execute("COMMIT")
        else:
            res = pgconn.exec_prepared(b"floor", [_param(v) for row in rows for v in row])
            if res.status != 1:  # COMMAND_OK
                raise SystemExit(res.error_message.decode())
    conn.close()


def _param(v: object) -> bytes | None:
    """A floor row's value in PostgreSQL's text format, as the ledger sends its own (`_text`)."""
    return _text(v if v is None or isinstance(v, str | bytes) else str(v), "utf-8")


def _floor_row(table: Table, seq: int, i: int, now: str) -> tuple[object, ...]:
    """The row a reservation (number `seq` of the run) inserts into `table`."""
    txn = f"{seq:032x}"
    if table is tables.txns:
        return (seq, txn, now)
    if table is tables.holds:
        return (seq, txn, f"lpp/c{i % 100}/2025", 1_000_000, now)
    if table is tables.requests:
        return (f"k{seq}", seq, hashlib.sha256(txn.encode()).digest(), seq, seq, seq)
    digest = hashlib.sha256(str(seq).encode()).digest()
    # The columns of `ledger_entries` (v2): txn, kind, account, actor, citation as ids.
    return (seq, seq, 0, i % 100 + 1, 1_000_000, f"o{seq}", 101, 102, now, None, f"k{seq}#0",
            digest[:8], digest)  # fmt: skip


def _ledger_worker(url: str, worker: int, n: int, ready: Barrier) -> None:
    ledger = Ledger(url)
    _reserve(ledger, worker, n, ready)
    ledger.close()


def _reserve(ledger: Ledger, worker: int, n: int, ready: Barrier | threading.Barrier) -> None:
    """One client's reservations: a warm-up (the connection, its prepared statements, the
    names' ids), then, once every client is ready, `n` timed ones."""
    hold = dt.timedelta(hours=1)
    ledger.reserve(
        [Draw("lpp/c0/2025", Decimal(1), Decimal(10**12), "15 CFR 740.29")],
        key=f"warm{worker}",
        actor="bench",
        hold=hold,
    )
    ready.wait()
    for i in range(n):
        ledger.reserve(
            [Draw(f"lpp/c{i % ACCOUNTS}/2025", Decimal(1), Decimal(10**12), "15 CFR 740.29")],
            key=f"w{worker}-{i}",
            actor="bench",
            order_id=f"o{worker}-{i}",
            hold=hold,
        )


def _threaded(url: str, threads: int, n: int, floor: bool) -> tuple[float, str]:
    """`threads` threads of one process: each its own raw connection (`floor`), or all one
    `Ledger`, whose draws are then combined (`aiexport.ledger._combine`). Reservations/s, and
    how the draws were combined."""
    per = n // threads
    ready = threading.Barrier(threads + 1)
    ledger = None if floor else Ledger(url)

    def run(w: int) -> None:
        if ledger is None:
            _insert_rows(url, w, per, ready, ROW_TABLES)  # type: ignore[arg-type]
        else:
            _reserve(ledger, w, per, ready)

    pool = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for th in pool:
        th.start()
    ready.wait(timeout=120)
    start = time.perf_counter()
    calls0 = 0 if ledger is None else ledger.combiner.calls + ledger.one_combiner.calls
    requests0 = 0 if ledger is None else ledger.combiner.requests + ledger.one_combiner.requests
    for th in pool:
        th.join()
    rate = per * threads / (time.perf_counter() - start)
    how = ""
    if ledger is not None:
        calls = ledger.combiner.calls + ledger.one_combiner.calls - calls0
        requests = ledger.combiner.requests + ledger.one_combiner.requests - requests0
        through = ledger.sequencer.calls if ledger.sequencer else 0
        how = f"{through:,} of {per * threads:,} through a sequencer" if through else ""
        if calls:
            how += (", the others " if how else "") + (
                f"combined in the process, {requests / calls:.1f} draws per call"
            )
        ledger.close()
    return rate, how


def started(target, url: str, clients: int, n: int) -> tuple[list[BaseProcess], int]:  # type: ignore[no-untyped-def]
    """`clients` processes running `target`, `n // clients` reservations each, once every one
    is connected and set up (the moment the clock starts); and that count per client."""
    ctx = mp.get_context("fork")
    per = n // clients
    ready = ctx.Barrier(clients + 1)
    procs = [ctx.Process(target=target, args=(url, w, per, ready)) for w in range(clients)]
    for p in procs:
        p.start()
    ready.wait(timeout=120)
    return list(procs), per


def _timed(target, url: str, clients: int, n: int) -> float:  # type: ignore[no-untyped-def]
    procs, per = started(target, url, clients, n)
    start = time.perf_counter()
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


def _batch_floor(url: str, entries: int, bare: bool = False) -> float:
    """The same number of entry-shaped rows in one transaction with one executemany: into a
    copy of the ledger's entry table, or (`bare`) into `BARE_DDL`'s 8 columns."""
    _fresh(url)
    conn, ph = _raw_connect(url)
    for stmt in BARE_DDL if bare else _floor_ddl(url):
        conn.execute(stmt)
    if not url.startswith("sqlite"):
        conn.commit()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    rows = []
    prev = bytes(32)
    for i in range(entries):
        digest = hashlib.sha256(prev + str(i).encode()).digest()
        if bare:
            row: tuple[object, ...] = (i + 1, "commit", f"lpp/c{i % 1000}/2025", 7_000_000,
                                       f"b{i // 2}#{i % 2}", "bench", "15 CFR 740.29", now)  # fmt: skip
        else:
            # The columns of `ledger_entries` (v2): txn, kind, account, actor, citation as ids.
            row = (i + 1, 1, 1, i % 1000 + 1, 7_000_000, f"o{i // 2}", 2001, 2002 + i % 2, None,
                   None, f"b{i // 2}#{i % 2}", prev[:8], digest)  # fmt: skip
        rows.append(row)
        prev = digest
    table = "bare_entries" if bare else "floor_entries"
    sql = f"INSERT INTO {table} VALUES ({', '.join([ph] * len(rows[0]))})"
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


def _ratios(ours: list[float], floors: list[float]) -> str:
    """The median of the trials' ratios (each ours against the floor measured just before it,
    as the machine's load comes and goes), and their range."""
    each = [o / f for o, f in zip(ours, floors, strict=True)]
    if len(each) == 1:
        return f"ratio {each[0]:>4.0%}"
    return f"ratio {statistics.median(each):>4.0%} ({min(each):.0%}-{max(each):.0%})"


@contextmanager
def _no_autoserve() -> Iterator[None]:
    """Clients forked while the block runs never start a sequencer."""
    before = os.environ.get(ENV_AUTOSERVE)
    os.environ[ENV_AUTOSERVE] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ[ENV_AUTOSERVE]
        else:
            os.environ[ENV_AUTOSERVE] = before


@contextmanager
def _sequencer(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """`aiexport ledger serve` on `url` while the block runs (its clients find it by
    themselves), stopped as an operator stops it (SIGTERM)."""
    path = socket_path(Database(url).url)
    with tempfile.TemporaryFile("w+") as log:  # a file: a pipe left unread could fill and block
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiexport", "ledger", "serve", "--db", url], stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            while not listening(path):  # a stale socket may be there before it binds its own
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise SystemExit(f"the sequencer did not start: {log.read()}")
                time.sleep(0.05)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def bench(name: str, url: str, n: int, clients: int, batch: int, trials: int = 3) -> None:
    """Each figure: `trials` runs, interleaved (floors, then ours), their median printed; a
    ratio is the median of the runs' ratios, with their range."""
    for k, label in ((1, "1 writer"), (clients, f"{clients} clients")):
        floors, rows_floors, ours, direct, sequenced = [], [], [], [], []
        started_by_clients = 0
        for _ in range(trials):
            _fresh(url)
            _floor_setup(url)
            floors.append(_timed(_floor_worker, url, k, n))
            _fresh(url)
            _floor_setup(url)
            rows_floors.append(_timed(_rows_floor_worker, url, k, n))
            _fresh(url)
            Ledger(url).close()
            ours.append(_timed(_ledger_worker, url, k, n))
            if not url.startswith("sqlite"):
                # The clients may have started a sequencer (`SequencerClient.summon`): stopped.
                started_by_clients += stop_serving(socket_path(Database(url).url))
                if k > 1:  # one writer never finds the lock taken: never starts one
                    _fresh(url)
                    Ledger(url).close()
                    with _no_autoserve():
                        direct.append(_timed(_ledger_worker, url, k, n))
                _fresh(url)
                Ledger(url).close()
                with _sequencer(url):
                    sequenced.append(_timed(_ledger_worker, url, k, n))
        print(
            f"{name:<10} {label:<11} reservations/s {statistics.median(ours):>9,.0f}   raw INSERT "
            f"floor/s: same rows {statistics.median(rows_floors):>7,.0f} "
            f"{_ratios(ours, rows_floors)}, entry row alone {statistics.median(floors):>7,.0f} "
            f"{_ratios(ours, floors)}",
            flush=True,
        )
        if direct:
            print(
                f"{name:<10} {label:<11} reservations/s {statistics.median(direct):>9,.0f}   "
                f"each by itself ({ENV_AUTOSERVE}=0: no sequencer): same rows "
                f"{_ratios(direct, rows_floors)}, entry row alone {_ratios(direct, floors)}; "
                f"above, the clients started one in {started_by_clients} of {trials} runs",
                flush=True,
            )
        if sequenced:
            print(
                f"{name:<10} {label:<11} reservations/s {statistics.median(sequenced):>9,.0f}   "
                f"through the sequencer (aiexport ledger serve): same rows "
                f"{_ratios(sequenced, rows_floors)}, entry row alone {_ratios(sequenced, floors)}",
                flush=True,
            )
    if not url.startswith("sqlite"):
        # Threads sharing one Ledger, as a server's request threads do (`_combine`).
        # They start a sequencer (`SequencerClient.summon`), as processes do; then, that turned
        # off, they combine their draws in the process.
        rows_floors, ours, hows, alone, alone_hows = [], [], [], [], []
        for _ in range(trials):
            _fresh(url)
            _floor_setup(url)
            rows_floors.append(_threaded(url, clients, n, floor=True)[0])
            _fresh(url)
            rate, how = _threaded(url, clients, n, floor=False)
            ours.append(rate)
            hows.append(how)
            stop_serving(socket_path(Database(url).url))
            _fresh(url)
            with _no_autoserve():
                rate, how = _threaded(url, clients, n, floor=False)
            alone.append(rate)
            alone_hows.append(how)
        label = f"{clients} threads"
        print(
            f"{name:<10} {label:<11} reservations/s {statistics.median(ours):>9,.0f}"
            f"   raw INSERT floor/s: same rows {statistics.median(rows_floors):>7,.0f} "
            f"{_ratios(ours, rows_floors)}   (one process, one Ledger; {hows[-1]})",
            flush=True,
        )
        print(
            f"{name:<10} {label:<11} reservations/s {statistics.median(alone):>9,.0f}"
            f"   combined in the process only ({ENV_AUTOSERVE}=0): same rows "
            f"{_ratios(alone, rows_floors)}   ({alone_hows[-1]})",
            flush=True,
        )
    if batch:
        floors, rates, bares = [], [], []
        for _ in range(trials):
            floors.append(_batch_floor(url, batch))
            rates.append(_batch(url, batch))
            bares.append(_batch_floor(url, batch, bare=True))
        floor, rate, bare = (statistics.median(x) for x in (floors, rates, bares))
        print(
            f"{name:<10} batch       entries/s      {rate:>9,.0f}   raw executemany/s  "
            f"{floor:>9,.0f}   ratio {rate / floor:>5.0%}   ({batch:,} entries, one transaction; "
            f"median of {trials}, ours {min(rates):,.0f} to {max(rates):,.0f}; "
            f"bare 8-column table {bare:,.0f}/s, ratio {rate / bare:.0%})",
            flush=True,
        )


def main() -> None:
    global ACCOUNTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=8000, help="reservations per measurement")
    ap.add_argument("--trials", type=int, default=3, help="runs per figure (the median)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--accounts", type=int, default=ACCOUNTS, help="accounts drawn on, in turn")
    ap.add_argument("--batch", type=int, default=100_000, help="entries in the batch run (0: skip)")
    ap.add_argument("--pg", default=os.environ.get("AIEXPORT_TEST_PG_URL"))
    ap.add_argument("--only", choices=["sqlite", "postgres"])
    ap.add_argument("--wipe", action="store_true", help="drop a ledger found at --pg")
    args = ap.parse_args()
    ACCOUNTS = args.accounts
    if args.pg and args.only != "sqlite":
        claim_scratch(args.pg, args.wipe)
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "postgres":
            bench(
                "sqlite", f"sqlite:///{tmp}/bench.db", args.n, args.clients, args.batch, args.trials
            )
    if args.pg and args.only != "sqlite":
        bench("postgres", args.pg, args.n, args.clients, args.batch, args.trials)
    print("load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if not args.pg:
        print("postgres   skipped: pass --pg URL or set AIEXPORT_TEST_PG_URL")


if __name__ == "__main__":
    main()
