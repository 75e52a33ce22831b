"""A fast read-only `QuotaView` for services: one snapshot per decision on a raw DB-API connection.

`Ledger` is itself a `QuotaView`, but each of its reads is a SQLAlchemy transaction of its own
(~2–3 ms with the pool checkout, `BEGIN`, compiled statement and result wrapping), and a decision
makes several. A service deciding thousands of orders per second needs the same answers for a
fraction of that, and needs them consistent with one another.

`FastView.snapshot()` opens one read transaction on a pooled connection and answers every read of
the decision from it with the ledger's own hot-path SQL (`_sql.USED`) and row parsers
(`_registry`), memoised for the life of the snapshot (on SQLite, for as long as nothing
changes; see `FastView`):

- SQLite: a deferred `BEGIN` — the first read fixes the WAL snapshot; writers never block it.
- PostgreSQL: `REPEATABLE READ, READ ONLY`, so all reads see one snapshot too.

The answers are those `Ledger.used` / `license` / `veu` / `veus_for` give (holds past their
expiry at the snapshot's `now` do not count), and a snapshot is an `_Overlay`: `apply(draws)` adds
a dry run's own draws on top, as `LiveView` does, so it serves batch dry runs as well.
It never writes; recording still goes through `commit_screen` under the write lock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import namedtuple
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from aiexport.ledger import _registry as reg
from aiexport.ledger._amounts import from_micro
from aiexport.ledger._entries import iso
from aiexport.ledger._ledger import Ledger
from aiexport.ledger._sql import USED, Sql
from aiexport.ledger._views import _Overlay
from aiexport.rules.quota import LicenseInfo, VeuInfo

_LICENSE_COLS = ("license_id", "destination", "consignee", "tpp", "valid_from", "valid_until")
_VEU_COLS = (
    "veu_id",
    "kind",
    "holder",
    "holder_name",
    "hq_country",
    "countries",
    "valid_from",
    "valid_until",
)
_LicenseRow = namedtuple("_LicenseRow", _LICENSE_COLS)  # type: ignore[misc]
_VeuRow = namedtuple("_VeuRow", _VEU_COLS)  # type: ignore[misc]

LICENSE = f"SELECT {', '.join(_LICENSE_COLS)} FROM ledger_licenses WHERE license_id = %s"
VEU = f"SELECT {', '.join(_VEU_COLS)} FROM ledger_veus WHERE veu_id = %s"
VEUS_FOR = f"SELECT {', '.join(_VEU_COLS)} FROM ledger_veus WHERE holder = %s ORDER BY veu_id"
HEAD = "SELECT seq, hash FROM ledger_chain_head WHERE id = 1"
NEXT_EXPIRY = "SELECT min(expires_at) FROM ledger_holds WHERE expires_at > %s"
_MEMO_MAX = 100_000
_PG_BEGIN = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class Memo:
    """Answers read on one connection, good while the database and the set of lapsed holds stay
    as they were: for one `version` (SQLite's `data_version`) and `since <= now < until`."""

    __slots__ = ("licenses", "since", "until", "used", "version", "veus", "veus_for")

    def __init__(self, version: int = -1, since: str = "", until: str | None = "") -> None:
        self.version = version
        self.since = since
        self.until = until  # the next hold expiry after `since`; None when no hold is live
        self.used: dict[str, int] = {}
        self.veus_for: dict[str, tuple[VeuInfo, ...]] = {}
        self.licenses: dict[str, LicenseInfo | None] = {}
        self.veus: dict[str, VeuInfo | None] = {}

    def holds(self, version: int, now: str) -> bool:
        return (
            version == self.version
            and self.since <= now
            and (self.until is None or now < self.until)
            and len(self.used) < _MEMO_MAX
        )


class Snapshot(_Overlay):
    """Every read of one decision (or one dry-run batch) from one read transaction."""

    def __init__(self, sql: Sql, now: str, memo: Memo | None = None) -> None:
        super().__init__()
        memo = memo or Memo()
        self._sql = sql
        self._now = now
        self._used = memo.used
        self._veus_for = memo.veus_for
        self._licenses = memo.licenses
        self._veus = memo.veus

    def used_micro(self, account: str) -> int:
        """Committed plus live holds at the snapshot's `now`, in micro-TPP, without `pending`."""
        got = self._used.get(account)
        if got is None:
            row = self._sql.one(USED, (self._now, account))
            got = self._used[account] = 0 if row is None else int(row[0])
        return got

    def used(self, account: str) -> Decimal:
        return from_micro(self.used_micro(account) + self.pending.get(account, 0))

    def license(self, license_id: str) -> LicenseInfo | None:
        if license_id not in self._licenses:
            row = self._sql.one(LICENSE, (license_id,))
            self._licenses[license_id] = None if row is None else reg._license(_LicenseRow(*row))
        return self._licenses[license_id]

    def veu(self, veu_id: str) -> VeuInfo | None:
        if veu_id not in self._veus:
            row = self._sql.one(VEU, (veu_id,))
            self._veus[veu_id] = None if row is None else reg._veu(_VeuRow(*row))
        return self._veus[veu_id]

    def head(self) -> tuple[int, str]:
        """The chain head, as `Ledger.head`: the last entry's position and hash."""
        seq, hash_ = self._sql.one(HEAD)
        return int(seq), str(hash_)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        got = self._veus_for.get(consignee)
        if got is None:
            rows = self._sql.all(VEUS_FOR, (consignee,))
            got = self._veus_for[consignee] = tuple(reg._veu(_VeuRow(*r)) for r in rows)
        return list(got)


def _iso_now() -> str:
    """`iso(now_utc())`, without strftime (a tenth of a decision's reads)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class _Conn:
    __slots__ = ("memo", "proxied")

    def __init__(self, proxied: Any) -> None:
        self.proxied = proxied
        self.memo = Memo()


class FastView:
    """Read-only snapshots of one ledger for the service's hot path; see the module docstring.

    Keeps up to `keep` connections checked out of the ledger's pool between snapshots (a pool
    checkout and return costs more than the reads of a decision); a connection that fails is
    dropped, never reused. `close()` returns them.

    On SQLite each kept connection also keeps its answers from one snapshot to the next while
    nothing changed: `PRAGMA data_version` (read first, which also fixes the snapshot) moves
    whenever any other connection or process commits, and the answers of `used` change with time
    only when a live hold lapses, so they are kept until the next hold expiry. A kept connection
    never writes, so every change to the database moves its `data_version`.
    """

    def __init__(self, ledger: Ledger, *, keep: int = 4) -> None:
        self.ledger = ledger
        self._engine = ledger.db.engine
        self._sqlite = ledger.db.is_sqlite
        self._keep = keep
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()

    def _take(self) -> _Conn:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _Conn(self._engine.raw_connection())

    def _give(self, conn: _Conn) -> None:
        with self._lock:
            if len(self._idle) < self._keep:
                self._idle.append(conn)
                return
        conn.proxied.close()

    @contextmanager
    def snapshot(self, now: dt.datetime | None = None) -> Iterator[Snapshot]:
        """One read transaction; holds expiring at or before `now` (default: now) do not count."""
        conn = self._take()
        raw = conn.proxied.driver_connection
        when = iso(now) if now is not None else _iso_now()
        try:
            sql = Sql(raw, "sqlite" if self._sqlite else "postgresql")
            if self._sqlite:
                sql.run("BEGIN")
                version = int(sql.one("PRAGMA data_version")[0])
                if not conn.memo.holds(version, when):
                    until = sql.one(NEXT_EXPIRY, (when,))[0]
                    conn.memo = Memo(version, when, until)
                memo = conn.memo
            else:
                sql.run(_PG_BEGIN)
                memo = Memo()
        except BaseException:
            conn.proxied.invalidate()
            raise
        try:
            yield Snapshot(sql, when, memo)
        finally:
            # The decision may have failed (bad input, a rule it breaks): the connection is
            # still good if it rolls back; only one that cannot is dropped.
            try:
                if not self._sqlite:
                    raw.rollback()
                elif raw.in_transaction:
                    raw.execute("ROLLBACK")
                sql.cur.close()
            except BaseException:
                conn.proxied.invalidate()
                raise
            self._give(conn)

    def close(self) -> None:
        """Return the kept connections to the ledger's pool."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.proxied.close()
