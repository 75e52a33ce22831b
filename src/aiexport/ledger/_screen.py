"""Record a whole screening run's draws in one transaction, decided against the locked state.

`aiexport screen --commit` must never overdraw, even with several runs at once, and a re-run of
the same file must record nothing. So the decisions themselves are made *inside* the write
transaction: `commit_screen` takes the write lock, hands the caller a `QuotaView` of the state
under that lock, and appends every draw the caller returns before releasing it (all or nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Connection

from aiexport.ledger._entries import Receipt, fingerprint, now_utc
from aiexport.ledger._ledger import Ledger, _receipt
from aiexport.ledger._views import AsOfView, TxnView, _Overlay
from aiexport.ledger._writer import Writer
from aiexport.rules.determination import Draw
from aiexport.rules.quota import LicenseInfo, QuotaView, VeuInfo

OrderDraws = tuple[str, Sequence[Draw]]
ScreenRun = Callable[[QuotaView], Sequence[OrderDraws]]


@dataclass(frozen=True, slots=True)
class ScreenCommit:
    """What `commit_screen` recorded (or, when `replayed`, had recorded the first time)."""

    receipt: Receipt
    orders: int
    entries: int

    @property
    def replayed(self) -> bool:
        return self.receipt.replayed


def commit_screen(
    ledger: Ledger,
    run: ScreenRun,
    *,
    actor: str,
    key: str,
    now: dt.datetime | None = None,
) -> ScreenCommit:
    """Decide and record a screening run atomically.

    `run(view)` decides every order against `view` and returns `(order_id, draws)` per order.
    The view has an `apply(draws)` method: call it after each order so the next order sees the
    draws before it. `run` may be called more than once (a transient database error retries the
    transaction), so it must not have side effects beyond building its result.

    `key` identifies the run, e.g. a hash of the orders file and the rule set. When the key was
    already recorded, `run` is called against the state as it stood before that first run —
    reproducing its decisions — and nothing is written.
    """

    def work(conn: Connection) -> ScreenCommit:
        w = Writer(conn, now or now_utc(), ledger.db.dialect, key, names=ledger.db.names)
        prior = w.prior
        if prior is not None:
            results = run(AsOfView(conn, int(prior.start_seq)))
            receipt = _receipt(prior, True)
            return ScreenCommit(receipt, len(results), len(receipt.seqs))
        w.sweep_expired()
        start = w.seq + 1
        results = run(TxnView(w))
        seqs: list[int] = []
        for i, (order_id, draws) in enumerate(results):
            if draws:
                seqs += w.apply_draws(
                    "commit", list(draws), key=f"{key}/{i}", actor=actor, order_id=order_id
                )
        w.record_request(key, fingerprint(("screen", key)), seqs, start)
        w.flush()
        return ScreenCommit(Receipt(key, w.txn, tuple(seqs), w.now), len(results), len(seqs))

    return ledger.db.write(work, lock=False)


class LiveView(_Overlay):
    """A dry run's view: the ledger's current state plus the run's own (unrecorded) draws."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self._ledger = ledger

    def used(self, account: str) -> Decimal:
        return self._ledger.used(account) + Decimal(self.pending.get(account, 0)) / 1_000_000

    def license(self, license_id: str) -> LicenseInfo | None:
        return self._ledger.license(license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return self._ledger.veu(veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return self._ledger.veus_for(consignee)
