"""Named, recorded schema migrations (in the manner of sqlite-utils' `migrations`).

Each migration has a version, a name and a function of a connection. `migrate` applies the
missing ones in order inside one write transaction that holds the ledger lock, and records each
in `ledger_migrations`; two processes opening a new database at once cannot both apply one.
Never edit a released migration: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, select

from aiexport.ledger import _tables as t
from aiexport.ledger._db import Database
from aiexport.ledger._entries import GENESIS, iso, now_utc

Migration = tuple[int, str, Callable[[Connection], None]]


def _v1_create(conn: Connection) -> None:
    for table in (
        t.entries,
        t.balances,
        t.holds,
        t.requests,
        t.chain_head,
        t.licenses,
        t.veus,
    ):
        table.create(conn, checkfirst=True)
    conn.execute(t.chain_head.insert().values(id=1, seq=0, hash=GENESIS))


MIGRATIONS: tuple[Migration, ...] = ((1, "create ledger tables", _v1_create),)


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
