"""The ledger's tables (SQLAlchemy Core), written once for SQLite and PostgreSQL.

Amounts are integer micro-TPP (`_amounts`), times are ISO-8601 UTC strings: both hash and compare
the same way on every backend. `entries` is the only source of truth; `balances`, `holds` and
`chain_head` are materialised from it and `verify` proves they agree. The idempotency key of a
request is the primary key of `requests`, so it is unique in the database itself; each entry
carries `<key>#<n>`. A write touches few B-trees on purpose: each is a page written (and synced)
per commit, which is most of what a reservation costs.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
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

entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
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
    Column("txn", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("start_seq", BigInteger, nullable=False),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    Column("created_at", Text, nullable=False),
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
