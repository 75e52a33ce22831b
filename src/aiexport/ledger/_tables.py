"""The ledger's tables (SQLAlchemy Core), written once for SQLite and PostgreSQL.

Amounts are integer micro-TPP (`_amounts`), times are ISO-8601 UTC strings: both hash and compare
the same way on every backend. These are the tables of the current schema (v2); the v1 tables
are kept, frozen, in `_migrations`. `entries` is the only source of truth; `balances`, `holds` and
`chain_head` are materialised from it and `verify` proves they agree. The idempotency key of a
request is the primary key of `requests`, so it is unique in the database itself; each entry
carries `<key>#<n>`. A write touches few B-trees on purpose: each is a page written (and synced)
per commit, which is most of what a reservation costs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    SmallInteger,
    Table,
    Text,
    select,
)

metadata = MetaData()

# BIGINT on PostgreSQL; INTEGER on SQLite, where an INTEGER PRIMARY KEY *is* the rowid, saving a
# B-tree (and a page write per commit) for every table keyed by position.
Seq = BigInteger().with_variant(Integer(), "sqlite")

schema_migrations = Table(
    "ledger_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", Text, nullable=False),
)

# Schema v2 (migration 2). An entry row holds only what varies per entry: texts repeated across
# entries (accounts, actors, citations) are interned in `ledger_names`, and what every entry of a
# transaction shares (its id and time) is in `ledger_txns`. `kind` is its index in `KINDS`; the
# hash is 32 raw bytes. The chain hash still covers the *texts* (see `_entries.hash_fields`), so
# editing a name, a transaction or an entry is evident. `link` repeats the first 8 bytes of the
# previous entry's hash: not needed to detect tampering, only to tell `verify` which entry of a
# broken link was touched. No secondary index: a B-tree per entry costs a quarter of a batch;
# `history` and `AsOfView` scan instead (rare reads; balances are materialised).
names = Table(
    "ledger_names",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False, unique=True),
)

txns = Table(
    "ledger_txns",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=False),
    Column("txn", Text, nullable=False),
    Column("created_at", Text, nullable=False),
)

entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("txn", BigInteger, nullable=False),
    Column("kind", SmallInteger, nullable=False),
    Column("account", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("order_id", Text),
    Column("actor", BigInteger, nullable=False),
    Column("citation", BigInteger, nullable=False),
    Column("expires_at", Text),
    Column("ref_seq", BigInteger),
    Column("idem_key", Text, nullable=False),
    Column("link", LargeBinary, nullable=False),
    Column("hash", LargeBinary, nullable=False),
)

balances = Table(
    "ledger_balances",
    metadata,
    Column("account", Text, primary_key=True),
    Column("committed", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("limit_micro", BigInteger),
    Column("citation", Text),
    Column("last_seq", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

holds = Table(
    "ledger_holds",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("txn", Text, nullable=False),
    Column("account", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("expires_at", Text, nullable=False),
    Index("ix_ledger_holds_expires", "expires_at"),
)

requests = Table(
    "ledger_requests",
    metadata,
    Column("key", Text, primary_key=True),
    Column("txn", BigInteger, nullable=False),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("start_seq", BigInteger, nullable=False),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    sqlite_with_rowid=False,
)

chain_head = Table(
    "ledger_chain_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", Text, nullable=False),
)

licenses = Table(
    "ledger_licenses",
    metadata,
    Column("license_id", Text, primary_key=True),
    Column("destination", Text, nullable=False),
    Column("consignee", Text),
    Column("tpp", BigInteger, nullable=False),
    Column("valid_from", Text, nullable=False),
    Column("valid_until", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("entry_seq", BigInteger),
)

veus = Table(
    "ledger_veus",
    metadata,
    Column("veu_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("holder_name", Text),
    Column("hq_country", Text, nullable=False),
    Column("countries", Text, nullable=False),
    Column("valid_from", Text, nullable=False),
    Column("valid_until", Text),
    Column("actor", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Index("ix_ledger_veus_holder", "holder"),
)


def entry_select(with_prev: bool = False) -> Select[Any]:
    """Entries with their texts resolved, under the column names `_entries.EntryRow` has, and
    (`with_prev`) the hash of the entry before each as `prev`, for reads that skip entries.

    Outer joins: an entry whose name or transaction row went missing still appears (with NULL
    texts), so `verify` reports it as edited rather than silently skipping it.
    """
    e, x = entries.c, txns.alias("x")
    account, actor, citation = names.alias("na"), names.alias("nb"), names.alias("nc")
    joined = (
        entries.outerjoin(x, x.c.id == e.txn)
        .outerjoin(account, account.c.id == e.account)
        .outerjoin(actor, actor.c.id == e.actor)
        .outerjoin(citation, citation.c.id == e.citation)
    )
    cols: list[Any] = []
    if with_prev:
        before = entries.alias("p")
        joined = joined.outerjoin(before, before.c.seq == e.seq - 1)
        cols.append(before.c.hash.label("prev"))
    return select(
        e.seq,
        x.c.txn,
        e.kind,
        account.c.name.label("account"),
        e.amount,
        e.order_id,
        actor.c.name.label("actor"),
        citation.c.name.label("citation"),
        x.c.created_at,
        e.expires_at,
        e.ref_seq,
        e.idem_key,
        e.link,
        e.hash,
        *cols,
    ).select_from(joined)
