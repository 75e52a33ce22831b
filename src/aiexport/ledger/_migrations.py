"""Named, recorded schema migrations (in the manner of sqlite-utils' `migrations`).

Each migration has a version, a name and a function of a connection. `migrate` applies the
missing ones in order inside one write transaction that holds the ledger lock, and records each
in `ledger_migrations`; two processes opening a new database at once cannot both apply one.
Never edit a released migration: add the next one. The tables a released migration creates are
frozen here as they were (`_V1`), so that a new database still goes through every version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
    select,
)

from aiexport.ledger import _tables as t
from aiexport.ledger._db import Database
from aiexport.ledger._entries import GENESIS, KIND_CODE, iso, now_utc
from aiexport.ledger._pgdraw import (
    LEDGER_DRAW,
    LEDGER_DRAW_BATCH,
    LEDGER_DRAW_DURABLE,
    LEDGER_DRAW_ONE,
    LEDGER_DRAW_ONE_FN,
    LEDGER_DRAW_PACKED,
    LEDGER_DRAW_SET,
    LEDGER_DRAW_SET_NAMED,
    LEDGER_DRAW_SET_QUEUED,
    LEDGER_DRAW_SET_SYNC,
)

Migration = tuple[int, str, Callable[[Connection], None]]

_V1 = MetaData()
_Seq = BigInteger().with_variant(Integer(), "sqlite")
_v1_entries = Table(
    "ledger_entries",
    _V1,
    Column("seq", _Seq, primary_key=True, autoincrement=False),
    Column("txn", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("order_id", Text),
    Column("actor", Text, nullable=False),
    Column("citation", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text),
    Column("ref_seq", BigInteger),
    Column("idem_key", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("ix_ledger_entries_account", "account", "seq"),
)
_v1_requests = Table(
    "ledger_requests",
    _V1,
    Column("key", Text, primary_key=True),
    Column("txn", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("start_seq", BigInteger, nullable=False),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    Column("created_at", Text, nullable=False),
    sqlite_with_rowid=False,
)


def _v1_create(conn: Connection) -> None:
    _v1_entries.create(conn, checkfirst=True)
    for table in (t.balances, t.holds):
        table.create(conn, checkfirst=True)
    _v1_requests.create(conn, checkfirst=True)
    for table in (t.chain_head, t.licenses, t.veus):
        table.create(conn, checkfirst=True)
    conn.execute(t.chain_head.insert().values(id=1, seq=0, hash=GENESIS))


_COPY_CHUNK = 20_000


def _chunks(conn: Connection, sql: str) -> Iterator[list[Any]]:
    result = conn.exec_driver_sql(sql)
    while rows := result.fetchmany(_COPY_CHUNK):
        yield list(rows)


def _v2_narrow_entries(conn: Connection) -> None:
    """Entries and requests to the v2 shape (`_tables`): texts interned, hashes as bytes.

    Every entry keeps its position, texts and hash, so the chain verifies exactly as before (the
    hash covers the same texts); a v1 entry that had been tampered with stays evident.
    """
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_ledger_entries_account")
    conn.exec_driver_sql("ALTER TABLE ledger_entries RENAME TO ledger_entries_v1")
    conn.exec_driver_sql("ALTER TABLE ledger_requests RENAME TO ledger_requests_v1")
    if conn.dialect.name == "postgresql":
        # PostgreSQL names a primary key's index after the table; free the names for v2.
        conn.exec_driver_sql(
            "ALTER INDEX IF EXISTS ledger_entries_pkey RENAME TO ledger_entries_v1_pkey"
        )
        conn.exec_driver_sql(
            "ALTER INDEX IF EXISTS ledger_requests_pkey RENAME TO ledger_requests_v1_pkey"
        )
    for table in (t.names, t.txns, t.entries, t.requests):
        table.create(conn)
    names: dict[str, int] = {}
    txns: dict[str, int] = {}
    new_names: list[dict[str, Any]] = []
    new_txns: list[dict[str, Any]] = []

    def name(text: str) -> int:
        found = names.get(text)
        if found is None:
            found = names[text] = len(names) + 1
            new_names.append({"id": found, "name": text})
        return found

    def txn(text: str, created_at: str) -> int:
        found = txns.get(text)
        if found is None:
            found = txns[text] = len(txns) + 1
            new_txns.append({"id": found, "txn": text, "created_at": created_at})
        return found

    def flush(table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.execute(table.insert(), rows)
            rows.clear()

    cols = (
        "seq, txn, kind, account, amount, order_id, actor, citation, created_at, expires_at, "
        "ref_seq, idem_key, prev_hash, hash"
    )
    for rows in _chunks(conn, f"SELECT {cols} FROM ledger_entries_v1 ORDER BY seq"):
        out = [
            {
                "seq": r[0],
                "txn": txn(r[1], r[8]),
                "kind": KIND_CODE.get(r[2], -1),
                "account": name(r[3]),
                "amount": r[4],
                "order_id": r[5],
                "actor": name(r[6]),
                "citation": name(r[7]),
                "expires_at": r[9],
                "ref_seq": r[10],
                "idem_key": r[11],
                "link": bytes.fromhex(r[12])[:8],
                "hash": bytes.fromhex(r[13]),
            }
            for r in rows
        ]
        flush(t.names, new_names)
        flush(t.txns, new_txns)
        conn.execute(t.entries.insert(), out)
    cols = "key, txn, fingerprint, start_seq, first_seq, last_seq, created_at"
    for rows in _chunks(conn, f"SELECT {cols} FROM ledger_requests_v1 ORDER BY key"):
        out = [
            {
                "key": r[0],
                "txn": txn(r[1], r[6]),
                "fingerprint": bytes.fromhex(r[2]),
                "start_seq": r[3],
                "first_seq": r[4],
                "last_seq": r[5],
            }
            for r in rows
        ]
        flush(t.txns, new_txns)
        conn.execute(t.requests.insert(), out)
    conn.exec_driver_sql("DROP TABLE ledger_entries_v1")
    conn.exec_driver_sql("DROP TABLE ledger_requests_v1")


def _postgres(sql: str) -> Callable[[Connection], None]:
    """A migration that creates server-side functions (`_pgdraw`) on PostgreSQL and does
    nothing on SQLite, which has none."""

    def apply(conn: Connection) -> None:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(sql)

    return apply


MIGRATIONS: tuple[Migration, ...] = (
    (1, "create ledger tables", _v1_create),
    (2, "narrow entries: interned names, transactions table, hashes as bytes", _v2_narrow_entries),
    (
        3,
        "postgresql: ledger_draw appends a request's draws in one statement",
        _postgres(LEDGER_DRAW),
    ),
    (
        4,
        "postgresql: ledger_draw_packed, fewer statements per request",
        _postgres(LEDGER_DRAW_PACKED),
    ),
    (
        5,
        "postgresql: ledger_draw_durable, draw and WAL barrier in one call",
        _postgres(LEDGER_DRAW_DURABLE),
    ),
    (
        6,
        "postgresql: ledger_draw_batch, many requests' draws in one call",
        _postgres(LEDGER_DRAW_BATCH),
    ),
    (
        7,
        "postgresql: ledger_draw_one_durable, one draw in one plain statement",
        _postgres(LEDGER_DRAW_ONE),
    ),
    (
        8,
        "postgresql: ledger_draw_set_durable, many one-draw requests in one call",
        _postgres(LEDGER_DRAW_SET),
    ),
    (
        9,
        "postgresql: ledger_draw_one, synchronous commit when the lock is free",
        _postgres(LEDGER_DRAW_ONE_FN),
    ),
    (
        10,
        "postgresql: ledger_draw_set_sync, the sequencer's batches",
        _postgres(LEDGER_DRAW_SET_SYNC),
    ),
    (
        11,
        "postgresql: ledger_draw_set_named, batches that give new names their ids",
        _postgres(LEDGER_DRAW_SET_NAMED),
    ),
    (
        12,
        "postgresql: ledger_draw_set_queued, batches that say whether they waited for the lock",
        _postgres(LEDGER_DRAW_SET_QUEUED),
    ),
)


def applied(conn: Connection) -> list[int]:
    if not inspect(conn).has_table(t.schema_migrations.name):
        return []
    return list(conn.scalars(select(t.schema_migrations.c.version).order_by("version")))


def migrate(db: Database) -> list[int]:
    """Apply pending migrations; return the versions applied now (empty when up to date)."""
    with db.read() as conn:
        if applied(conn) == [m[0] for m in MIGRATIONS]:
            return []

    def work(conn: Connection) -> list[int]:
        if db.dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7294001)")
        t.schema_migrations.create(conn, checkfirst=True)
        done = set(applied(conn))
        now = []
        for version, name, fn in MIGRATIONS:
            if version in done:
                continue
            fn(conn)
            conn.execute(
                t.schema_migrations.insert().values(
                    version=version, name=name, applied_at=iso(now_utc())
                )
            )
            now.append(version)
        return now

    return db.write(work, lock=False)
