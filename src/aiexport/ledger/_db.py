"""Connections, with every difference between SQLite and PostgreSQL kept in this module.

Writers are serialised, on purpose: the hash chain needs one total order of entries, and a cap
check is only sound if no other writer can draw between the check and the insert.

- SQLite: WAL journal, `synchronous=FULL` (an acknowledged entry survives power loss), and every
  write transaction starts with `BEGIN IMMEDIATE`, which takes the database's single write lock
  before the first read. Readers never block and never see a half-written transaction.
  For a database file, each process keeps one connection for `write(raw=True)`, which its
  threads take turns on (a thread lock), and issues `BEGIN IMMEDIATE`/`COMMIT` on it directly: a
  pool checkout and SQLAlchemy's transaction events per write cost about as much CPU as a
  reservation's own statements. Between processes, a waiting writer is left to SQLite's busy
  handler (sleeps of growing length): queueing writers on an OS lock instead (`flock`) hands the
  lock to another process at every commit, and each then rereads the pages the last one changed;
  8 processes wrote a third fewer reservations per second that way.
- PostgreSQL: READ COMMITTED, and every write transaction first takes one transaction-scoped
  advisory lock (`_sql.LOCK`). Statements after the lock see every earlier commit, so the
  check-then-insert is atomic; no serialization failures to retry. Transient errors
  (deadlock, serialization failure, connection loss) are still retried by `Database.write`.
  The lock is not held through the commit's WAL flush: the transaction commits asynchronously and
  a synchronous barrier transaction after it (`Database._barrier`) waits for the flush before
  `write` returns, so concurrent writers share flushes and an answer is given only once durable.
  `Database.call` does the same for a reservation or commitment in one round trip: the
  procedure `ledger_draw_durable` (`_pgdraw`) commits the draw and then runs the barrier in a
  transaction of its own, in one statement with one reply.
  A plain read may see a write up to one flush before its writer is told it is durable; a crash
  in that window loses it together with everything after it (the WAL is replayed in order).
"""

from __future__ import annotations

import functools
import os
import random
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from aiexport.ledger._sql import LOCK, WAL_BARRIER

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


class _Kept(NamedTuple):
    proxy: Any  # the pool's connection proxy, checked out for good
    encoding: str
    prepared: dict[str, bytes]  # statement -> name of it prepared on this connection
    pid: int
    poller: select.poll  # its socket, registered for input (`_roundtrip` waits in it)
    pgconn: Any  # its libpq connection (`psycopg.pq.PGconn`)


def _kept(proxy: Any) -> _Kept:
    """`proxy`'s connection kept for `call`, in autocommit mode."""
    driver = proxy.driver_connection
    assert driver is not None
    driver.autocommit = True
    poller = select.poll()
    poller.register(driver.pgconn.socket, select.POLLIN)
    return _Kept(proxy, driver.info.encoding, {}, os.getpid(), poller, driver.pgconn)


class _Writing:
    """A process's SQLite connection for `write(raw=True)` and the lock its threads take turns on.

    A forked child makes its own: the parent's lock may have been held at the fork, and a SQLite
    connection must not be used in two processes.
    """

    __slots__ = ("conn", "lock", "pid")

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.conn: Connection | None = None  # checked out of the pool for good


class RawRetry(Exception):
    """A driver error from `Database.write(raw=True)`, to be retried if transient."""


class Names:
    """This process's memo of `ledger_names` (text -> id), so a write interns without a query.

    Ids are never reused or changed, but one assigned inside a transaction exists only if that
    transaction commits: writers put new ids in `staged`, and `Database.write` adds them to `ids`
    only after the commit succeeded; the ids `ledger_draw_packed` returns are added once
    `Database.call` has returned.
    """

    __slots__ = ("ids", "staged")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.staged: dict[str, int] = {}


class Database:
    """An engine plus the two kinds of unit of work: `read()` and `write()`."""

    def __init__(self, url: str) -> None:
        self.url = _normalise(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.engine: Engine = _make_engine(self.url, self.dialect)
        self.names = Names()
        self._local = threading.local()
        self._kept_lock = threading.Lock()
        self._all_kept: list[_Kept] = []
        self._on_disk = self.is_sqlite and _on_disk(self.url)
        self._writing: _Writing | None = None
        # Every `_Writing` of this process and of a parent: a parent's connection is never closed
        # by a child, only kept from the garbage collector (which would return it to the pool).
        self._all_writing: list[_Writing] = []
        # PostgreSQL: told, after each call this process makes by itself, whether another
        # writer was there at the same moment - the write lock taken (`_pgdraw.draw_one`,
        # `draw_named`), other threads' requests in the batch (`_combine.OneCombiner`); the
        # ledger's sequencer client listens (`SequencerClient.contended`).
        self.contention: Callable[[bool], None] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction over one consistent snapshot."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def write(
        self,
        work: Callable[[Connection], T],
        *,
        attempts: int = 20,
        lock: bool = True,
        raw: bool = False,
    ) -> T:
        """Run `work` in one write transaction holding the ledger's write lock; retry transients.

        `work` must be safe to rerun: it is called again from scratch after a retryable failure.
        `raw`: `work` talks only to the DB-API connection (a `Writer` and its `Sql`), and on
        PostgreSQL the transaction is run in autocommit mode with explicit `BEGIN`/`COMMIT`
        sent in the Writer's pipelines: no round trip of its own for either. On a SQLite file
        it runs on the process's kept connection, with no pool checkout or SQLAlchemy
        transaction (`_write_kept`).
        """
        for attempt in range(attempts):
            self.names.staged.clear()
            try:
                if raw and self._on_disk:
                    out = self._write_kept(work)
                else:
                    out = self._write_pooled(work, lock, raw)
                if self.names.staged:
                    self.names.ids.update(self.names.staged)
                    self.names.staged.clear()
                return out
            except (OperationalError, DBAPIError, RawRetry) as exc:
                if attempt == attempts - 1 or not self._retryable(exc):
                    if isinstance(exc, RawRetry):
                        raise exc.__cause__ from None  # type: ignore[misc]
                    raise
                time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    def duplicate_key_errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors for an insert that breaks a unique key (raised as they are by
        `write(raw=True)`)."""
        if self.is_sqlite:
            return (sqlite3.IntegrityError,)
        import psycopg

        return (psycopg.errors.UniqueViolation,)

    def _write_pooled(self, work: Callable[[Connection], T], lock: bool, raw: bool) -> T:
        with self.engine.connect() as conn:
            conn = conn.execution_options(aiexport_write=True)
            if raw and not self.is_sqlite:
                return self._write_raw(conn, work)
            try:
                with conn.begin():
                    if lock:
                        self.lock(conn)
                    out = work(conn)
            except BaseException:
                self._barrier(conn, quiet=True)
                raise
            self._barrier(conn)
            return out

    def _write_kept(self, work: Callable[[Connection], T]) -> T:
        """SQLite file, `write(raw=True)`: `work` in a transaction begun and ended here on this
        process's kept connection, one thread at a time; sqlite3 errors come out as `RawRetry`."""
        writing = self._writing
        if writing is None or writing.pid != os.getpid():
            writing = self._writing = _Writing()
            self._all_writing.append(writing)
        with writing.lock:
            if writing.conn is None:
                writing.conn = self.engine.connect()
            conn = writing.conn
            driver = conn.connection.driver_connection
            assert driver is not None
            try:
                driver.execute("BEGIN IMMEDIATE")
                try:
                    out = work(conn)
                    driver.execute("COMMIT")
                except BaseException:
                    if driver.in_transaction:
                        try:
                            driver.execute("ROLLBACK")
                        except sqlite3.Error:
                            writing.conn = None
                            conn.invalidate()
                    raise
                return out
            except sqlite3.Error as exc:
                raise RawRetry(exc) from exc

    def call(self, sql: str, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
        """PostgreSQL: `sql`, a statement that answers only once durable (`ledger_draw_durable`
        takes the write lock, commits the draw asynchronously, then runs the WAL barrier in a
        transaction of its own), in an implicit transaction. Returns `sql`'s first row, as
        text. Transient errors are retried as `write` retries them.

        One round trip through libpq (`psycopg.pq`, `_roundtrip`): `sql` prepared, then a sync.
        `%s` in `sql` are its parameters, sent as text (bytes as bytea). Prepared, it is not
        parsed or planned again; through libpq directly, the client's CPU per call is about half
        what it was through a cursor."""
        import psycopg

        for attempt in range(20):
            kept = self._kept_connection()
            try:
                return _roundtrip(kept, sql, params)
            except psycopg.Error as exc:
                driver = kept.proxy.driver_connection
                if driver.closed or driver.broken:
                    self._drop_kept()
                elif driver.info.transaction_status != 0:
                    driver.execute("ROLLBACK")
                if attempt == 19 or not self._retryable(RawRetry(exc)):
                    raise
                time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
        raise AssertionError("unreachable")

    def _kept_connection(self) -> _Kept:
        """This thread's connection for `call`, kept out of the pool and in autocommit mode (a
        checkout and return per call costs more than the call's own client work)."""
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None or kept.pid != os.getpid():
            kept = _kept(self.engine.raw_connection())
            self._local.kept = kept
            with self._kept_lock:
                self._all_kept.append(kept)
        return kept

    def _drop_kept(self) -> None:
        kept = getattr(self._local, "kept", None)
        self._local.kept = None
        if kept is not None:
            with self._kept_lock:
                self._all_kept.remove(kept)
            kept.proxy.invalidate()

    def _write_raw(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        import psycopg

        driver = conn.connection.driver_connection
        assert driver is not None
        driver.autocommit = True
        try:
            try:
                out = work(conn)
            except BaseException:
                try:
                    _end_raw(driver)
                except Exception:
                    conn.invalidate()
                raise
            _end_raw(driver)
            return out
        except psycopg.Error as exc:
            if driver.closed or driver.broken:
                conn.invalidate()
            raise RawRetry(exc) from exc
        finally:
            if not conn.invalidated:
                driver.autocommit = False

    def _barrier(self, conn: Connection, *, quiet: bool = False) -> None:
        """PostgreSQL: wait until the WAL is flushed past everything this write did or saw.

        Write transactions commit without waiting for their flush (`_sql.ASYNC_COMMIT`), so the
        write lock is free again as soon as the commit is processed; this transaction of its own
        writes a WAL record and commits synchronously, and PostgreSQL flushes the WAL in order,
        so when it returns every commit before it is durable. Concurrent writers' barriers share
        flushes: group commit, with no lock held. It runs after a refusal, a replay or a conflict
        too, since those answers were read from state that may not have been flushed yet.
        `quiet`: after an error, the original error is the one to report.
        """
        if self.is_sqlite:
            return
        try:
            flush_wal(conn.connection.driver_connection)
        except Exception:
            if not quiet:
                raise

    def flush_wal(self) -> None:
        """`_barrier` on a connection of its own (for answers decided outside `write`)."""
        if self.is_sqlite:
            return
        with self.engine.connect() as conn:
            flush_wal(conn.connection.driver_connection)

    def lock(self, conn: Connection) -> None:
        """Take the global write lock inside the current transaction."""
        if self.dialect == "postgresql":
            conn.exec_driver_sql(LOCK)

    def _retryable(self, exc: DBAPIError | RawRetry) -> bool:
        orig = exc.args[0] if isinstance(exc, RawRetry) else exc.orig
        if self.is_sqlite:
            return "locked" in str(orig) or "busy" in str(orig)
        code = getattr(orig, "sqlstate", None)
        if isinstance(exc, RawRetry):
            import psycopg

            return code in _RETRYABLE_PG or isinstance(orig, psycopg.OperationalError)
        return code in _RETRYABLE_PG or bool(exc.connection_invalidated)

    def dispose(self) -> None:
        with self._kept_lock:
            kept, self._all_kept = self._all_kept, []
        for k in kept:
            if k.pid == os.getpid():
                try:
                    k.proxy.driver_connection.autocommit = False
                    k.proxy.close()
                except Exception:
                    k.proxy.invalidate()
        pid = os.getpid()
        for writing in self._all_writing:
            if writing.pid == pid and writing.conn is not None:
                writing.conn.close()
                writing.conn = None
        self._all_writing = [w for w in self._all_writing if w.pid != pid]
        self._writing = None
        self.engine.dispose()


def flush_wal(raw: Any) -> None:
    """Commit a transaction that writes one WAL record, synchronously (see `Database._barrier`)."""
    if raw.info.transaction_status != 0:  # not idle: a failed or unfinished transaction
        raw.rollback()
    raw.execute(WAL_BARRIER)
    raw.commit()


def _roundtrip(
    kept: _Kept, sql: str, params: tuple[str | bytes | None, ...]
) -> tuple[str | None, ...]:
    """`Database.call`'s round trip on `kept`'s libpq connection (non-blocking, as psycopg
    leaves it): `sql`, prepared, in its own implicit transaction (libpq's asynchronous calls:
    Bind, Execute and Sync in one message, then the results; waiting in poll(2), so a signal
    is handled while the server works). A failed statement raises its psycopg error once the
    connection is idle again.

    Pipeline mode, as this was first written, cost the client about 40 µs more per call (its
    entry and exit, the explicit sync and its result): on one writer, a tenth of a reservation's
    own client work. Waiting in the connection's own poll object, not select(2) (which builds
    its descriptor sets at each call), and no call the common case does not need: about 10 µs
    less client CPU per call, as little as libpq's blocking `PQexecPrepared` costs
    (`bench/ledger.py`)."""
    pq = _pq()
    pgconn = kept.pgconn
    draw = _prepared(kept, sql)
    code = kept.encoding
    row: tuple[str | None, ...] | None = None
    error: Exception | None = None
    try:
        pgconn.send_query_prepared(
            draw, [v.encode(code) if type(v) is str else _text(v, code) for v in params]
        )
        while pgconn.flush():
            select.select([], [pgconn.socket], [])
        while True:
            while pgconn.is_busy():
                kept.poller.poll()
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # the end of the statement's results
                break
            status = result.status
            if status == pq.ExecStatus.TUPLES_OK:
                if row is None and result.ntuples:
                    row = tuple(
                        None if (v := result.get_value(0, k)) is None else bytes(v).decode(code)
                        for k in range(result.nfields)
                    )
            elif status != pq.ExecStatus.COMMAND_OK:
                error = error or _error(result, code)
    except BaseException:
        # Results left unread (an I/O error, an interrupt): the connection is of no more use;
        # closed, the next call replaces it.
        kept.proxy.driver_connection.close()
        raise
    if error is not None:
        raise error
    if row is None:
        from psycopg import errors

        raise errors.OperationalError("the ledger call returned no row")
    return row


@functools.cache
def _pq() -> Any:
    """`psycopg.pq`, imported once needed (a SQLite ledger never loads psycopg)."""
    from psycopg import pq

    return pq


def _text(value: str | bytes | None, encoding: str) -> bytes | None:
    """A parameter in PostgreSQL's text format (bytes as bytea's hex form)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return b"\\x" + value.hex().encode()
    return value.encode(encoding)


def _prepared(kept: _Kept, sql: str) -> bytes:
    """The name of `sql` prepared on `kept` (`%s` its parameters), preparing it the first time."""
    from psycopg import pq

    name = kept.prepared.get(sql)
    if name is None:
        name = f"aiexport_{len(kept.prepared)}".encode()
        parts = sql.split("%s")
        numbered = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))
        result = kept.proxy.driver_connection.pgconn.prepare(name, numbered.encode(kept.encoding))
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise _error(result, kept.encoding)
        kept.prepared[sql] = name
    return name


def _error(result: Any, encoding: str) -> Exception:
    """The psycopg exception for a failed statement's result, by its SQLSTATE."""
    from psycopg import errors, pq

    state = result.error_field(pq.DiagnosticField.SQLSTATE)
    try:
        kind = errors.lookup(state.decode()) if state else errors.OperationalError
    except KeyError:
        kind = errors.DatabaseError
    message = result.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or result.error_message
    return kind(bytes(message).decode(encoding, "replace").strip())


def _end_raw(driver: Any) -> None:
    """End a `write(raw=True)` transaction: roll back what was not committed (a replay, a
    refusal, an error), then the WAL barrier; one round trip."""
    open_block = driver.info.transaction_status != 0
    with driver.pipeline():
        if open_block:
            driver.execute("ROLLBACK")
        driver.execute(WAL_BARRIER)


def _on_disk(url: str) -> bool:
    """Whether a SQLite URL names a database file (not `:memory:`, whose pool gives each thread
    a database of its own; a `file:` URI is treated the same, its options not interpreted)."""
    u = make_url(url)
    name = u.database or ":memory:"
    return name != ":memory:" and not name.startswith("file:") and not u.query.get("uri")


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
