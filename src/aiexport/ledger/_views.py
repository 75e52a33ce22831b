"""`QuotaView`s over the ledger: live, inside a write transaction, and as of an earlier entry.

The decision engine only reads through `QuotaView`; these adapters let it decide against the
ledger's committed state (`Ledger` itself), against the state inside a transaction that holds
the write lock (`TxnView`, used by `commit_screen`), or against the state just before an earlier
transaction (`AsOfView`, used to reproduce a replayed run's decisions exactly).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal

from sqlalchemy import Connection, func, select

from aiexport.ledger import _registry as reg
from aiexport.ledger import _tables as t
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._entries import KINDS, deltas
from aiexport.ledger._sql import USED, Sql
from aiexport.ledger._writer import Writer
from aiexport.rules.determination import Draw
from aiexport.rules.quota import LicenseInfo, VeuInfo


class _Overlay:
    """Draws the caller has decided but not yet recorded, added on top of a base view.

    A screen run decides orders one after another; each decision must see the draws of the
    orders before it in the same file. `apply` is the same method `MemoryQuota` has.
    """

    def __init__(self) -> None:
        self.pending: dict[str, int] = defaultdict(int)

    def apply(self, draws: Iterable[Draw]) -> None:
        for d in draws:
            self.pending[d.account] += to_micro(d.amount)


class TxnView(_Overlay):
    """The ledger as seen inside a locked write transaction, plus the caller's pending draws."""

    def __init__(self, writer: Writer) -> None:
        super().__init__()
        self._w = writer

    def used(self, account: str) -> Decimal:
        return from_micro(self._w.used_micro(account) + self.pending.get(account, 0))

    def license(self, license_id: str) -> LicenseInfo | None:
        return reg.get_license(self._w.conn, license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return reg.get_veu(self._w.conn, veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return reg.veus_for(self._w.conn, consignee)


class AsOfView(_Overlay):
    """The ledger as it stood just before entry `before_seq` was appended."""

    def __init__(self, conn: Connection, before_seq: int) -> None:
        super().__init__()
        self._conn = conn
        self._before = before_seq
        self._cache: dict[str, int] | None = None

    def used(self, account: str) -> Decimal:
        if self._cache is None:
            self._cache = self._totals()
        return from_micro(self._cache.get(account, 0) + self.pending.get(account, 0))

    def _totals(self) -> dict[str, int]:
        """Every account's use before `before_seq`, summed in one pass over the entries (they
        have no account index; one scan serves the whole replay)."""
        e, n = t.entries.c, t.names.c
        has_ref = e.ref_seq.is_not(None)
        q = (
            select(n.name, e.kind, has_ref, func.sum(e.amount))
            .select_from(t.entries.join(t.names, n.id == e.account))
            .where(e.seq < self._before)
            .group_by(n.name, e.kind, has_ref)
        )
        totals: dict[str, int] = defaultdict(int)
        for name, kind, ref, amount in self._conn.execute(q):
            dc, dr = deltas(KINDS[kind], int(amount), 1 if ref else None)
            totals[name] += dc + dr
        return totals

    def license(self, license_id: str) -> LicenseInfo | None:
        return reg.get_license(self._conn, license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return reg.get_veu(self._conn, veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return reg.veus_for(self._conn, consignee)


def live_used_micro(conn: Connection, account: str, now: str) -> int:
    """Committed plus held, leaving out holds already past their expiry but not yet swept."""
    sql = Sql(conn.connection.driver_connection, conn.dialect.name)
    row = sql.one(USED, (now, account))
    return 0 if row is None else int(row[0])
