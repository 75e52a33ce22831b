"""The ledger's hot-path SQL, written once; the only place that knows paramstyles and dialects.

The write path runs a handful of fixed statements per transaction. Going through the DB-API
cursor directly (rather than compiling SQLAlchemy constructs each time) keeps the ledger's own
cost per reservation well under the cost of the commit it waits for. Statements use `%s`
placeholders; `Sql` turns them into `?` for sqlite3. The SQL itself is plain enough to run
unchanged on SQLite ≥ 3.24 and PostgreSQL (`ON CONFLICT … DO UPDATE` on both).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

# Entries per chunk of a batch (`Writer.batch_chunks`): one SQLite statement of 2 + 5 x 64
# parameters each.
CHUNK_ENTRIES = 64


def _ph(n: int) -> str:
    return ", ".join(["%s"] * n)


# The stored columns (schema v2, `_tables`): texts as `ledger_names` ids, the transaction as a
# `ledger_txns` id, the kind as its index in `KINDS`, hashes as bytes.
ENTRY_COLS = (
    "seq",
    "txn",
    "kind",
    "account",
    "amount",
    "order_id",
    "actor",
    "citation",
    "expires_at",
    "ref_seq",
    "idem_key",
    "link",
    "hash",
)
REQUEST_COLS = ("key", "txn", "fingerprint", "start_seq", "first_seq", "last_seq")
# A request as read: its transaction's text id and time in place of the `ledger_txns` id.
_REQUEST_READ = (
    "SELECT r.key, x.txn, r.fingerprint, r.start_seq, r.first_seq, r.last_seq, x.created_at "
    "FROM ledger_requests r LEFT JOIN ledger_txns x ON x.id = r.txn"
)


USED = (
    "SELECT b.committed + b.reserved - COALESCE((SELECT sum(h.amount) FROM ledger_holds h "
    "WHERE h.expires_at <= %s AND h.account = b.account), 0) "
    "FROM ledger_balances b WHERE b.account = %s"
)
REQUEST_EXISTS = "SELECT 1 FROM ledger_requests WHERE key = %s"
# PostgreSQL's write lock: a transaction-scoped advisory lock, granted to waiters one at a time
# in arrival order. (A row lock on the chain head wakes every waiter at each commit to race for
# the row again: with 8 writers on 2 cores, most of a write went to that herd.)
WRITE_LOCK_KEY = 7294002
LOCK = f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})"
STATE = (
    "SELECT h.seq, h.hash, (SELECT min(expires_at) FROM ledger_holds), "
    "(SELECT fingerprint FROM ledger_requests WHERE key = %s), "
    "(SELECT max(id) FROM ledger_txns), (SELECT max(id) FROM ledger_names) "
    "FROM ledger_chain_head h WHERE h.id = 1"
)
REQUEST = f"{_REQUEST_READ} WHERE r.key = %s"
# Any number of keys in one statement: a JSON array on SQLite, an array parameter on PostgreSQL.
REQUESTS_JSON = f"{_REQUEST_READ} WHERE r.key IN (SELECT value FROM json_each(%s))"
REQUESTS_ANY = f"{_REQUEST_READ} WHERE r.key = ANY(%s)"
NAMES_JSON = "SELECT name, id FROM ledger_names WHERE name IN (SELECT value FROM json_each(%s))"
NAMES_ANY = "SELECT name, id FROM ledger_names WHERE name = ANY(%s)"
INSERT_NAME = "INSERT INTO ledger_names (id, name) VALUES (%s, %s)"
INSERT_ENTRY = (
    f"INSERT INTO ledger_entries ({', '.join(ENTRY_COLS)}) VALUES ({_ph(len(ENTRY_COLS))})"
)
# PostgreSQL: commit without waiting for the WAL flush (the lock is released at once), then
# `WAL_BARRIER` in a transaction of its own waits for a flush that covers that commit.
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO off"
WAL_BARRIER = "SELECT pg_logical_emit_message(true, 'aiexport', '')"
INSERT_TXN = "INSERT INTO ledger_txns (id, txn, created_at) VALUES (%s, %s, %s)"
INSERT_REQUEST = f"INSERT INTO ledger_requests ({', '.join(REQUEST_COLS)}) VALUES ({_ph(6)})"
EXPIRED = "SELECT seq, account, amount FROM ledger_holds WHERE expires_at <= %s ORDER BY seq"
BALANCES = (
    "SELECT account, committed, reserved, limit_micro, citation FROM ledger_balances "
    "WHERE account IN ({})"
)
INSERT_HOLD = (
    "INSERT INTO ledger_holds (seq, txn, account, amount, expires_at) VALUES (%s, %s, %s, %s, %s)"
)
DELETE_HOLD = "DELETE FROM ledger_holds WHERE seq = %s"
UPSERT_BALANCE = (
    "INSERT INTO ledger_balances (account, committed, reserved, limit_micro, citation, last_seq) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (account) DO UPDATE SET "
    "committed = excluded.committed, reserved = excluded.reserved, "
    "limit_micro = excluded.limit_micro, citation = excluded.citation, "
    "last_seq = excluded.last_seq"
)
UPDATE_HEAD = "UPDATE ledger_chain_head SET seq = %s, hash = %s WHERE id = 1"


# SQLite's form of each statement (`?` placeholders), for every `Sql` of the process.
_QMARK: dict[str, str] = {}


class Sql:
    """Run the statements above on one DB-API connection of either dialect."""

    def __init__(self, dbapi_conn: Any, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        self.raw = dbapi_conn
        self.cur = dbapi_conn.cursor()

    def pipeline(self) -> AbstractContextManager[Any]:
        """Send the statements inside in one round trip (psycopg pipeline mode) on PostgreSQL."""
        return nullcontext() if self.sqlite else self.raw.pipeline()

    def open(self, key: str | None, accounts: list[str]) -> tuple[Any, list[Any]]:
        """Take the write lock (PostgreSQL), read the head row and `accounts`' balances.

        On PostgreSQL the three statements go in one round trip; they still run one after the
        other on the server, so the reads after the lock see every earlier commit.
        """
        balances = BALANCES.format(", ".join(["%s"] * len(accounts)))
        if self.sqlite:
            state = self.one(STATE, (key,))
            return state, self.all(balances, tuple(accounts)) if accounts else []
        with self.raw.pipeline():
            lock, head, bal = self.raw.cursor(), self.raw.cursor(), self.raw.cursor()
            if self.raw.autocommit:  # `Database.write(raw=True)`: the transaction is ours
                lock.execute("BEGIN")
            lock.execute(LOCK)
            head.execute(STATE, (key,))
            if accounts:
                bal.execute(balances, tuple(accounts))
        return head.fetchone(), bal.fetchall() if accounts else []

    def first_rows(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """The first row (or None) of each statement; one round trip on PostgreSQL."""
        if self.sqlite:
            return [self.one(sql, params) for sql, params in statements]
        cursors = []
        with self.raw.pipeline():
            for sql, params in statements:
                cur = self.raw.cursor()
                cur.execute(sql, params)
                cursors.append(cur)
        return [cur.fetchone() for cur in cursors]

    def _q(self, sql: str) -> str:
        if not self.sqlite:
            return sql
        out = _QMARK.get(sql)
        if out is None:
            out = sql.replace("%s", "?")
            if len(_QMARK) < 1024:  # the fixed statements; not every chunk statement
                _QMARK[sql] = out
        return out

    def one(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        self.cur.execute(self._q(sql), params)
        return self.cur.fetchone()

    def all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        self.cur.execute(self._q(sql), params)
        return list(self.cur.fetchall())

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.cur.execute(self._q(sql), params)

    def bulk(self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Insert many rows: `COPY` on PostgreSQL (several times faster), else `executemany`."""
        if self.sqlite or len(rows) < 1000:
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({_ph(len(cols))})"
            self.many(sql, rows)
            return
        with self.cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if len(rows) == 1:
            self.cur.execute(self._q(sql), rows[0])
        elif rows:
            self.cur.executemany(self._q(sql), rows)
