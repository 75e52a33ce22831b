"""SQLite: a large batch's WAL copied into the database by a thread of its own, after the batch.

SQLite checkpoints - copies the WAL's pages into the database file and syncs that file - inside
the commit that takes the WAL past `wal_autocheckpoint` pages (1,000 by default). A batch of
100,000 entries writes about 2,500 pages, so its commit would also do that copy and a second
sync, after its transaction is already durable in the WAL: a tenth of the batch, spent before
the caller hears back. For a large batch `defer` turns automatic checkpoints off on the batch's
connection for its commit, and `Checkpointer.start` then runs a PASSIVE checkpoint on a
connection of its own, in a thread: readers and writers carry on meanwhile (PASSIVE never
waits for them), and a crash part-way is harmless (the WAL is still there and is replayed).
The pooled connection gets its setting back when it is returned to the pool (`install`).

Before the process forks, the thread is waited for (a child must not inherit SQLite's state
half-way through a checkpoint); `Ledger.close` waits for it too.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from contextlib import closing
from typing import Any

from sqlalchemy import Connection, Engine, event

_SAVED = "aiexport_wal_autocheckpoint"
_LIVE: weakref.WeakSet[Checkpointer] = weakref.WeakSet()


def install(engine: Engine) -> None:
    """Give each pooled connection back its `wal_autocheckpoint` when it returns to the pool."""

    @event.listens_for(engine, "checkin")
    def _restore(dbapi_conn: Any, record: Any) -> None:
        saved = record.info.pop(_SAVED, None) if record is not None else None
        if saved is not None and dbapi_conn is not None:
            dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={int(saved)}")


def defer(conn: Connection) -> None:
    """No automatic checkpoint in this connection's commits until it is back in the pool."""
    if _SAVED not in conn.info:
        conn.info[_SAVED] = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")


class Checkpointer:
    """One background checkpoint at a time for one database file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        _LIVE.add(self)

    def start(self) -> None:
        """Checkpoint the WAL in a thread (after any checkpoint still running)."""
        with self._lock:
            if self._thread is not None:
                self._thread.join()
            self._thread = threading.Thread(target=self._run, name="aiexport-checkpoint")
            self._thread.daemon = True
            self._thread.start()

    def join(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._thread.join()
                self._thread = None

    def _run(self) -> None:
        try:
            with closing(sqlite3.connect(self.path, timeout=60)) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # the next commit past `wal_autocheckpoint` pages checkpoints instead


def _join_all() -> None:
    for checkpointer in list(_LIVE):
        checkpointer.join()


os.register_at_fork(before=_join_all)
