"""Schema migrations: a database written by the v1 code opens, migrates once, and still verifies.

`data/ledger-v1.db` was written by the ledger as released with schema v1 (one of every kind of
entry, holds, a batch, a lapsed hold); `data/ledger-v1.json` is what that code reported for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from aiexport.ledger import MIGRATIONS, DrawRequest, Ledger, _pgdraw, verify
from aiexport.ledger import _tables as t
from aiexport.ledger._migrations import _V1

from .conftest import BACKENDS, PG_URL, _reset_pg, draw

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "ledger-v1.json").read_text())
T0 = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)


def _v1_on_postgres(url: str) -> None:
    """The v1 file's tables and rows, copied as they are into an empty PostgreSQL database."""
    _reset_pg(url)
    source = create_engine(f"sqlite:///{DATA / 'ledger-v1.db'}")
    target = create_engine(url)
    with source.connect() as src, target.begin() as dst:
        _V1.create_all(dst)  # v1's entries and requests; the other tables are unchanged in v2
        for table in (t.balances, t.holds, t.chain_head, t.licenses, t.veus, t.schema_migrations):
            table.create(dst)
        for name in ("ledger_entries", "ledger_requests", "ledger_balances", "ledger_holds",
                     "ledger_chain_head", "ledger_migrations"):  # fmt: skip
            result = src.exec_driver_sql(f"SELECT * FROM {name}")
            cols = list(result.keys())
            rows = [dict(zip(cols, r, strict=True)) for r in result]
            if rows:
                marks = ", ".join(f":{c}" for c in cols)
                dst.execute(text(f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})"), rows)
    source.dispose()
    target.dispose()


@pytest.fixture(params=BACKENDS)
def v1_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        shutil.copy(DATA / "ledger-v1.db", tmp_path / "ledger.db")
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    assert PG_URL
    _v1_on_postgres(PG_URL)
    return PG_URL


def _versions(url: str) -> list[tuple[int, str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT version, name FROM ledger_migrations ORDER BY version"))
        out = [(int(v), str(n)) for v, n in rows]
    engine.dispose()
    return out


def test_a_v1_database_migrates_once_and_verifies(v1_url: str) -> None:
    assert [v for v, _ in _versions(v1_url)] == [1]
    with Ledger(v1_url) as ledger:
        assert _versions(v1_url) == [(v, name) for v, name, _ in MIGRATIONS]
        report = verify(ledger)
        assert report.ok, report.problems
        assert report.entries == EXPECTED["entries"]
        assert list(ledger.head()) == EXPECTED["head"]
        balances = {b.account: [str(b.committed), str(b.reserved)] for b in ledger.balances()}
        assert balances == EXPECTED["balances"]
        # Receipts and replays from before the migration are kept.
        again = ledger.reserve(
            [draw("lpp/acme/2025", "1.5", 1000), draw("allocation/IN", "1.5", 5000)],
            key="r1",
            actor="alice",
            order_id="o1",
            now=T0,
        )
        assert again.replayed and again.seqs == (1, 2)
        batch = ledger.record_batch(
            [
                DrawRequest(
                    "b3", (draw("lpp/c0/2025", 2, 100), draw("allocation/IN", 2, 5000)), "ob3"
                )
            ],
            actor="batch",
        )
        assert batch[0].replayed
        history = ledger.history("aia/acme")
        assert [e.kind for e in history] == ["commit", "void", "commit", "attrition"]
        assert history[0].prev_hash == next(
            e.hash for e in ledger.entries() if e.seq == history[0].seq - 1
        )
        # New writes continue the same chain (the lapsed hold is swept first).
        ledger.commit([draw("aia/acme", 1)], key="after", actor="erin", order_id="o9")
        assert ledger.balance("lpp/beta/2025").reserved == Decimal(0)
        report = verify(ledger, expect_head=(EXPECTED["head"][0], EXPECTED["head"][1]))
        assert report.ok and report.entries > EXPECTED["entries"]
    with Ledger(v1_url) as ledger:  # a second open finds nothing to migrate
        assert _versions(v1_url) == [(v, name) for v, name, _ in MIGRATIONS]
        assert verify(ledger).ok


def test_tampering_with_migrated_entries_is_still_named(v1_url: str) -> None:
    Ledger(v1_url).close()
    engine = create_engine(v1_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET amount = amount + 1 WHERE seq = 7"))
    engine.dispose()
    with Ledger(v1_url) as ledger:
        first = verify(ledger).problems[0]
        assert (first.kind, first.seq) == ("edited", 7)


# The SQL of released PostgreSQL migrations, as released: a database that applied a migration
# must hold what a fresh one gets, so a released migration's text never changes (a new
# migration replaces what must change). SHA-256 prefixes of each text.
RELEASED_SQL = {
    "LEDGER_DRAW": "1b1aea362acd4517",  # 3
    "LEDGER_DRAW_PACKED": "3c6ae447eeaa8c15",  # 4
    "LEDGER_DRAW_DURABLE": "1d03221e69976b6d",  # 5
    "LEDGER_DRAW_BATCH": "c122c93178ba46d3",  # 6
    "LEDGER_DRAW_ONE": "97e5a1f0f0c8d1e9",  # 7
    "LEDGER_DRAW_SET": "c42243bb1a84eec7",  # 8
    "LEDGER_DRAW_ONE_FN": "dbf68268b7ac9173",  # 9
    "LEDGER_DRAW_SET_SYNC": "a1847b403ea72dd7",  # 10
    "LEDGER_DRAW_SET_NAMED": "d7a2ee7ab8a6004c",  # 11
    "LEDGER_DRAW_SET_QUEUED": "d34520092a4a483a",  # 12
}


@pytest.mark.parametrize("name", sorted(RELEASED_SQL))
def test_released_migration_sql_is_unchanged(name: str) -> None:
    text = getattr(_pgdraw, name)
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == RELEASED_SQL[name]
