"""`bench/ledger.py` drops the ledger's tables: it refuses a PostgreSQL database that holds a
ledger it did not write, unless told to wipe it (`claim_scratch`)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, inspect, text

from aiexport.ledger import Ledger

from .conftest import PG_URL, _reset_pg, draw

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
]

BENCH = Path(__file__).parents[2] / "bench" / "ledger.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ledger", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _unmark(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS bench_scratch"))
    engine.dispose()


@pytest.fixture
def bench() -> Iterator[ModuleType]:
    """`bench/ledger.py`, on a PostgreSQL database emptied and without the bench's mark (removed
    again afterwards, as the other tests expect)."""
    assert PG_URL
    _reset_pg(PG_URL)
    _unmark(PG_URL)
    yield _bench()
    _unmark(PG_URL)


def _marked(url: str) -> bool:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = "bench_scratch" in inspect(conn).get_table_names()
    engine.dispose()
    return found


def test_a_database_holding_a_ledger_is_refused_unless_wiped(bench: ModuleType) -> None:
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.commit([draw("acct", 1, 10)], key="k", actor="t")
    with pytest.raises(SystemExit, match=r"holds a ledger \(1 rows in ledger_entries\).*--wipe"):
        bench.claim_scratch(PG_URL, wipe=False)
    assert not _marked(PG_URL)
    bench.claim_scratch(PG_URL, wipe=True)  # told to: the database is the bench's from now on
    assert _marked(PG_URL)
    bench.claim_scratch(PG_URL, wipe=False)
    with Ledger(PG_URL) as ledger:
        assert ledger.balance("acct").committed == 1  # claiming wipes nothing by itself


def test_an_empty_database_is_claimed(bench: ModuleType) -> None:
    assert PG_URL
    Ledger(PG_URL).close()  # the tables, no rows
    bench.claim_scratch(PG_URL, wipe=False)
    assert _marked(PG_URL)
