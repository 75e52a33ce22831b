"""Connections, with every difference between SQLite and PostgreSQL kept in this module.

Writers are serialised, on purpose: the hash chain needs one total order of entries, and a cap
check is only sound if no other writer can draw between the check and the insert.

- SQLite: WAL journal, `synchronous=FULL` (an acknowledged entry survives power loss), and every
  write transaction starts with `BEGIN IMMEDIATE`, which takes the database's single write lock
  before the first read. Readers never block and never see a half-written transaction.
- PostgreSQL: READ COMMITTED, and every write transaction first locks the one `ledger_chain_head`
  row (`SELECT … FOR UPDATE`). Statements after the lock see every earlier commit, so the
  check-then-insert is atomic; no serialization failures to retry. Transient errors
  (deadlock, serialization failure, connection loss) are still retried by `Database.write`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from aiexport.ledger._sql import LOCK

T = TypeVar("T")

ENV_DB = "AIEXPORT_DB"
DEFAULT_URL = "sqlite:///aiexport.db"
CACHE_KIB = -65536  # SQLite `cache_size`: negative means KiB
_RETRYABLE_PG = {"40001", "40P01", "55P03"}


def default_db_url() -> str:
    """The ledger URL: `$AIEXPORT_DB`, else `aiexport.db` in the working directory."""
    return os.environ.get(ENV_DB) or DEFAULT_URL


def _normalise(url: str) -> str:
    """Accept plain `postgresql://` and `postgres://` URLs and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if "://" not in url:
        return f"sqlite:///{url}"
    return url


class Database:
    """An engine plus the two kinds of unit of work: `read()` and `write()`."""

    def __init__(self, url: str) -> None:
        self.url = _normalise(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine: Engine = _make_engine(self.url, self.dialect)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction over one consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(self, work: Callable[[Connection], T], *, attempts: int = 20, lock: bool = True) -> T:
        """Run `work` in one write transaction holding the ledger's write lock; retry transients.

        `work` must be safe to rerun: it is called again from scratch after a retryable failure.
        """
        for attempt in range(attempts):
            try:
                with self.engine.connect() as conn:
                    conn = conn.execution_options(aiexport_write=True)
                    with conn.begin():
                        if lock:
                            self.lock(conn)
                        return work(conn)
            except (OperationalError, DBAPIError) as exc:
                if attempt == attempts - 1 or not self._retryable(exc):
                    raise
                time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    def lock(self, conn: Connection) -> None:
        """Take the global write lock inside the current transaction."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql(LOCK)

    def _retryable(self, exc: DBAPIError) -> bool:
        if self.is_sqlite:
            return "locked" in str(exc.orig) or "busy" in str(exc.orig)
        code = getattr(exc.orig, "sqlstate", None)
        return code in _RETRYABLE_PG or bool(exc.connection_invalidated)

    def dispose(self) -> None:
        self.engine.dispose()


def _make_engine(url: str, dialect: str) -> Engine:
    if dialect != "sqlite":
        return create_engine(url)
    engine = create_engine(
        url,
        connect_args={"timeout": 120, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        # Up to 64 MiB of page cache (allocated as used): a batch of 100,000 entries then stays
        # in memory until its commit instead of spilling pages to the WAL mid-transaction.
        cur.execute(f"PRAGMA cache_size={CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("aiexport_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
