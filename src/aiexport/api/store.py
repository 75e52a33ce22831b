"""The service's own tables, kept in the ledger's database: keys, audit log, decisions, jobs.

The ledger's tables are the ledger's; these are the service's, with their own named, recorded
migrations (`api_migrations`), applied when the service opens a database. Rows of `api_audit`
are only ever inserted: every state change the service makes is one row naming its actor.

`api_decisions` is the service's record of committed orders and their decisions, so that an
exporter can read back its own and analysts can chart and investigate them. The ledger stays
the source of truth for quota: a decision row is written right after the ledger commit, and a
retry of the same request completes it (the ledger replays, the row is inserted then).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
)

from aiexport.ledger import Ledger

metadata = MetaData()

migrations = Table(
    "api_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", Text, nullable=False),
)

keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("exporter", Text),
    Column("secret_sha256", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("revoked_at", Text),
)

audit = Table(
    "api_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("detail", Text, nullable=False),
    Index("ix_api_audit_actor", "actor", "id"),
)

decisions = Table(
    "api_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exporter", Text, nullable=False),
    Column("order_id", Text, nullable=False),
    Column("order_date", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("consignee", Text, nullable=False),
    Column("tier", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("authority", Text, nullable=False),
    Column("tpp_total", Float, nullable=False),
    Column("rule_set", Text, nullable=False),
    Column("digest", Text, nullable=False),
    Column("ledger_key", Text, nullable=False),
    Column("order_json", Text, nullable=False),
    Column("record_json", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    UniqueConstraint("exporter", "order_id", name="uq_api_decisions_order"),
    Index("ix_api_decisions_date", "order_date"),
    Index("ix_api_decisions_consignee", "consignee"),
)

jobs = Table(
    "api_jobs",
    metadata,
    Column("job_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("progress", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("params_json", Text, nullable=False),
    Column("result_json", Text),
    Column("error", Text),
    Column("actor", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("finished_at", Text),
    Column("is_private", Boolean, nullable=False, default=False),
    Column("owner", Text),
    Column("heartbeat_at", Text),
    Index("ix_api_jobs_kind", "kind", "created_at"),
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _v1(conn: Connection) -> None:
    for table in (keys, audit, decisions, jobs):
        table.create(conn, checkfirst=True)


def _v2(conn: Connection) -> None:
    have = {c["name"] for c in inspect(conn).get_columns(jobs.name)}
    for column in ("owner", "heartbeat_at"):
        if column not in have:  # a database made by v1 before these columns existed
            conn.exec_driver_sql(f"ALTER TABLE {jobs.name} ADD COLUMN {column} TEXT")


MIGRATIONS: tuple[tuple[int, str, Callable[[Connection], None]], ...] = (
    (1, "create keys, audit, decisions and jobs", _v1),
    (2, "jobs: owner and heartbeat (a lease per server process)", _v2),
)


def migrate(ledger: Ledger) -> list[int]:
    """Apply the service's pending migrations; return the versions applied now."""

    def applied(conn: Connection) -> set[int]:
        if not inspect(conn).has_table(migrations.name):
            return set()
        return set(conn.scalars(select(migrations.c.version)))

    with ledger.db.read() as conn:
        if applied(conn) == {m[0] for m in MIGRATIONS}:
            return []

    def work(conn: Connection) -> list[int]:
        if ledger.db.dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7294002)")
        migrations.create(conn, checkfirst=True)
        done = applied(conn)
        now: list[int] = []
        for version, name, fn in MIGRATIONS:
            if version not in done:
                fn(conn)
                conn.execute(
                    migrations.insert().values(version=version, name=name, applied_at=now_iso())
                )
                now.append(version)
        return now

    return ledger.db.write(work, lock=False)


def log(
    conn: Connection,
    actor: str,
    role: str,
    action: str,
    target: str | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit row inside the caller's transaction."""
    conn.execute(
        audit.insert().values(
            at=now_iso(),
            actor=actor,
            role=role,
            action=action,
            target=target,
            detail=json.dumps(detail or {}, sort_keys=True, default=str),
        )
    )


def audit_rows(ledger: Ledger, *, limit: int, actor: str | None = None) -> Sequence[dict[str, Any]]:
    q = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if actor is not None:
        q = q.where(audit.c.actor == actor)
    with ledger.db.read() as conn:
        return [{**dict(r._mapping), "detail": json.loads(r.detail)} for r in conn.execute(q)]
