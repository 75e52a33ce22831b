"""One ledger test suite, every backend: each test taking `url` runs on SQLite and PostgreSQL.

PostgreSQL runs when `AIEXPORT_TEST_PG_URL` is set (`scripts/start-postgres.sh` prints one) and is
marked `postgres`, so `-m "not postgres"` picks SQLite only. Each PostgreSQL test starts from
empty tables.
"""

from __future__ import annotations

import gc
import multiprocessing as mp
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from aiexport.ledger import Ledger
from aiexport.ledger import _tables as tables
from aiexport.ledger._sequencer import ENV_SOCKET
from aiexport.rules.determination import Draw

from ..conftest import BACKENDS, PG_URL


def fork_context() -> mp.context.ForkContext:
    """The `fork` start method, with this process's garbage collected first.

    A forked child inherits the test session's heap, including unreachable objects left by
    earlier tests (DuckDB's and Arrow's, from multi-threaded libraries). When the child's own
    collector then frees them, their destructors run in a process where those libraries' threads
    no longer exist: the child crashed in `gc` (a segmentation fault, seen in the full suite,
    never in the ledger's tests alone). Collected here, in the parent, there is nothing left to
    free in the child."""
    gc.collect()
    return mp.get_context("fork")


def _reset_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        tables.metadata.drop_all(conn)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty ledger database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    assert PG_URL
    _reset_pg(PG_URL)
    return PG_URL


@pytest.fixture
def sock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PostgreSQL: an empty ledger, and the socket path its clients look for a sequencer at
    (`_sequencer`), one of the test's own."""
    assert PG_URL
    _reset_pg(PG_URL)
    path = tmp_path / "seq.sock"
    monkeypatch.setenv(ENV_SOCKET, str(path))
    return path


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with Ledger(url) as lg:
        yield lg


def draw(account: str, amount: int | str, limit: int | str | None = None, **kw: object) -> Draw:
    """A draw with a citation, for brevity in tests."""
    return Draw(
        account,
        Decimal(amount),
        None if limit is None else Decimal(limit),
        "test § 740.29",
        **kw,  # type: ignore[arg-type]
    )
