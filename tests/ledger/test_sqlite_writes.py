"""SQLite's write path: the connection each process keeps for `Database.write(raw=True)`.

Threads take turns on it, a forked child makes its own, a failed transaction leaves it usable,
and `BEGIN IMMEDIATE` still makes it wait for a writer that is not this code.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest

from aiexport.errors import QuotaExceeded
from aiexport.ledger import Ledger, verify

from .conftest import draw, fork_context

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


def test_threads_share_one_kept_connection_and_never_overdraw(path: Path) -> None:
    """More threads than the pool has connections, racing on one cap."""
    cap, threads, per = 150, 24, 10
    refused: list[int] = []
    with Ledger(f"sqlite:///{path}") as ledger:

        def run(t: int) -> None:
            for i in range(per):
                try:
                    ledger.reserve(
                        [draw("lpp/hot/2025", 1, cap)], key=f"t{t}-{i}", actor="t", hold=HOUR
                    )
                except QuotaExceeded:
                    refused.append(t)

        workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert ledger.used("lpp/hot/2025") == cap
        assert len(refused) == threads * per - cap
        report = verify(ledger)
        assert report.ok, report.problems
        assert report.entries == cap


def _child_reserves(ledger: Ledger, key: str) -> None:
    ledger.reserve([draw("lpp/a/2025", 2)], key=key, actor="child", hold=HOUR)


def test_a_forked_child_writes_on_a_connection_of_its_own(path: Path) -> None:
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.reserve([draw("lpp/a/2025", 1)], key="parent-1", actor="parent", hold=HOUR)
        ctx = fork_context()
        children = [
            ctx.Process(target=_child_reserves, args=(ledger, f"child-{c}")) for c in range(3)
        ]
        for c in children:
            c.start()
        for c in children:
            c.join(timeout=60)
            assert c.exitcode == 0
        ledger.reserve([draw("lpp/a/2025", 1)], key="parent-2", actor="parent", hold=HOUR)
        assert ledger.used("lpp/a/2025") == 8
        assert verify(ledger).ok


def test_a_failed_transaction_is_rolled_back_and_the_connection_kept(path: Path) -> None:
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.reserve([draw("lpp/a/2025", 5, 10)], key="k1", actor="a", hold=HOUR)
        with pytest.raises(QuotaExceeded):
            ledger.reserve([draw("lpp/a/2025", 6, 10)], key="k2", actor="a", hold=HOUR)

        def fails(conn: object) -> None:
            driver = conn.connection.driver_connection  # type: ignore[attr-defined]
            driver.execute("INSERT INTO ledger_names (id, name) VALUES (9999, 'half-written')")
            driver.execute("INSERT INTO ledger_names (id, name) VALUES (9999, 'duplicate id')")

        with pytest.raises(sqlite3.IntegrityError):
            ledger.db.write(fails, raw=True)
        ledger.reserve([draw("lpp/a/2025", 5, 10)], key="k3", actor="a", hold=HOUR)
        assert ledger.used("lpp/a/2025") == 10
        with closing(sqlite3.connect(path)) as plain:
            found = plain.execute("SELECT count(*) FROM ledger_names WHERE id = 9999").fetchone()
            assert found == (0,)
        assert verify(ledger).ok


def test_writes_still_wait_for_a_writer_that_is_not_ours(path: Path) -> None:
    """Another program's `BEGIN IMMEDIATE` holds the lock for a while: the reservation waits
    for its commit, then sees what it wrote."""
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 3)], key="k0", actor="a", hold=HOUR)
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "UPDATE ledger_balances SET reserved = reserved + 2000000 WHERE account = 'lpp/a/2025'"
        )
        done = threading.Event()

        def commit_later() -> None:
            time.sleep(0.3)
            done.set()
            other.execute("COMMIT")

        threading.Thread(target=commit_later).start()
        with pytest.raises(QuotaExceeded):  # 1 + 2 held: no room for 1 more under 3
            ledger.reserve([draw("lpp/a/2025", 1, 3)], key="k1", actor="a", hold=HOUR)
        assert done.is_set()
        other.close()


def test_an_in_memory_database_writes_through_the_pool() -> None:
    with Ledger("sqlite://") as ledger:
        ledger.reserve([draw("lpp/a/2025", 1)], key="k", actor="a", hold=HOUR)
        assert ledger.used("lpp/a/2025") == 1
        assert verify(ledger).ok
