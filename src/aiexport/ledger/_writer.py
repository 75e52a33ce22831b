"""One write transaction: append entries to the chain and keep the materialised state in step.

`Writer` is created by `Ledger` inside `Database.write` (the write lock is held). It reads the
chain head and the balances it needs once, applies entries in memory, checks caps, and flushes
everything with a handful of multi-row statements: that is what makes the batch path fast.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from aiexport.errors import Conflict, InputError, QuotaExceeded
from aiexport.ledger import _tables as t
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._entries import deltas, entry_hash, iso
from aiexport.rules.determination import Draw

_EXPIRY_ACTOR = "system:expiry"
_EXPIRY_CITATION = "reservation expired"


class Writer:
    """Entries appended inside one locked transaction."""

    def __init__(self, conn: Connection, now: dt.datetime) -> None:
        self.conn = conn
        self.now = now
        self.created_at = iso(now)
        self.txn = uuid.uuid4().hex
        head = conn.execute(select(t.chain_head.c.seq, t.chain_head.c.hash)).one()
        self.seq: int = head.seq
        self.hash: str = head.hash
        self.rows: list[dict[str, Any]] = []
        self.bal: dict[str, list[Any]] = {}  # account -> [committed, reserved, limit, citation]
        self.new_accounts: set[str] = set()
        self.touched: set[str] = set()
        self.new_holds: list[dict[str, Any]] = []
        self.closed_holds: list[int] = []
        self.requests: list[dict[str, Any]] = []
        self._n = 0

    # -- reading state -------------------------------------------------------------------------

    def load(self, accounts: Iterable[str]) -> None:
        """Bring the balances of `accounts` into memory (one query for all that are missing)."""
        missing = {a for a in accounts if a not in self.bal}
        if not missing:
            return
        b = t.balances.c
        q = select(b.account, b.committed, b.reserved, b.limit_micro, b.citation).where(
            b.account.in_(sorted(missing))
        )
        for row in self.conn.execute(q):
            self.bal[row.account] = [row.committed, row.reserved, row.limit_micro, row.citation]
        for a in missing - self.bal.keys():
            self.bal[a] = [0, 0, None, None]
            self.new_accounts.add(a)

    def used_micro(self, account: str) -> int:
        self.load([account])
        c, r, _, _ = self.bal[account]
        return int(c) + int(r)

    def find_request(self, key: str) -> Any:
        r = t.requests.c
        return self.conn.execute(select(t.requests).where(r.key == key)).first()

    # -- appending -----------------------------------------------------------------------------

    def append(
        self,
        kind: str,
        account: str,
        amount: int,
        *,
        actor: str,
        citation: str,
        key: str,
        order_id: str | None = None,
        expires_at: str | None = None,
        ref_seq: int | None = None,
    ) -> int:
        self.load([account])
        self.seq += 1
        self._n += 1
        row = {
            "seq": self.seq,
            "txn": self.txn,
            "kind": kind,
            "account": account,
            "amount": amount,
            "order_id": order_id,
            "actor": actor,
            "citation": citation,
            "created_at": self.created_at,
            "expires_at": expires_at,
            "ref_seq": ref_seq,
            "idem_key": key,
        }
        row["prev_hash"] = self.hash
        row["hash"] = self.hash = entry_hash(row, self.hash)
        self.rows.append(row)
        dc, dr = deltas(kind, amount, ref_seq)
        state = self.bal[account]
        state[0] += dc
        state[1] += dr
        self.touched.add(account)
        if kind == "reserve" and expires_at is not None:
            self.new_holds.append(
                {
                    "seq": self.seq,
                    "txn": self.txn,
                    "account": account,
                    "amount": amount,
                    "expires_at": expires_at,
                }
            )
        return self.seq

    def apply_draws(
        self,
        kind: str,
        draws: Sequence[Draw],
        *,
        key: str,
        actor: str,
        order_id: str | None,
        expires_at: str | None = None,
    ) -> list[int]:
        """Append one entry per draw, then check every cap the draws carry (all or nothing)."""
        micro = [to_micro(d.amount) for d in draws]
        for d, m in zip(draws, micro, strict=True):
            if m <= 0:
                raise InputError(f"draw on {d.account} must be positive, got {d.amount} TPP")
        self.load(d.account for d in draws)
        self.load(d.share_of for d in draws if d.share_of)
        seqs = [
            self.append(
                kind,
                d.account,
                m,
                actor=actor,
                citation=d.citation,
                key=f"{key}#{i}",
                order_id=order_id,
                expires_at=expires_at,
            )
            for i, (d, m) in enumerate(zip(draws, micro, strict=True))
        ]
        for d in draws:
            self.check(d, order_id)
        return seqs

    def check(self, d: Draw, order_id: str | None) -> None:
        """Refuse the whole transaction if `d`'s account is now past its limit or share."""
        state = self.bal[d.account]
        used = int(state[0]) + int(state[1])
        who = f" by order {order_id}" if order_id else ""
        if d.limit is not None:
            limit = to_micro(d.limit)
            state[2], state[3] = limit, d.citation
            if used > limit:
                before = used - to_micro(d.amount)
                raise QuotaExceeded(
                    f"drawing {d.amount} TPP from {d.account}{who} would exceed its limit of "
                    f"{d.limit} TPP ({d.citation}): {from_micro(max(limit - before, 0))} TPP "
                    "left; reduce the order or seek a license. Nothing was recorded."
                )
        if d.max_share is not None and d.share_of is not None:
            base = self.used_micro(d.share_of)
            if Decimal(used) > d.max_share * Decimal(base):
                raise QuotaExceeded(
                    f"drawing {d.amount} TPP on {d.account}{who} would take it past "
                    f"{d.max_share:%} of {d.share_of} ({d.citation}); nothing was recorded."
                )

    def close_hold(self, seq: int) -> None:
        self.closed_holds.append(seq)

    def sweep_expired(self) -> None:
        """Release every hold whose expiry has passed, as entries of this transaction."""
        h = t.holds.c
        q = (
            select(h.seq, h.account, h.amount)
            .where(h.expires_at <= self.created_at)
            .order_by(h.seq)
        )
        for row in self.conn.execute(q):
            self.append(
                "release",
                row.account,
                row.amount,
                actor=_EXPIRY_ACTOR,
                citation=_EXPIRY_CITATION,
                key=f"expiry:{row.seq}",
                ref_seq=row.seq,
            )
            self.close_hold(row.seq)

    def record_request(self, key: str, fingerprint: str, seqs: Sequence[int], start: int) -> None:
        if any(r["key"] == key for r in self.requests):
            raise Conflict(f"idempotency key {key!r} appears twice in one batch; make keys unique")
        self.requests.append(
            {
                "key": key,
                "txn": self.txn,
                "fingerprint": fingerprint,
                "start_seq": start,
                "first_seq": seqs[0] if seqs else None,
                "last_seq": seqs[-1] if seqs else None,
                "created_at": self.created_at,
            }
        )

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write entries, holds, balances, requests and the new chain head."""
        conn = self.conn
        if self.rows:
            conn.execute(t.entries.insert(), self.rows)
        if self.new_holds:
            conn.execute(t.holds.insert(), self.new_holds)
        if self.closed_holds:
            conn.execute(
                t.holds.delete().where(t.holds.c.seq == bindparam("s")),
                [{"s": s} for s in self.closed_holds],
            )
        if self.touched:
            last = {r["account"]: r["seq"] for r in self.rows}
            new: list[dict[str, Any]] = []
            old: list[dict[str, Any]] = []
            for a in sorted(self.touched):
                c, r, lim, cit = self.bal[a]
                row = {"a": a, "c": c, "r": r, "l": lim, "cit": cit, "s": last[a]}
                (new if a in self.new_accounts else old).append(row)
            b = t.balances
            if new:
                conn.execute(
                    b.insert().values(
                        account=bindparam("a"),
                        committed=bindparam("c"),
                        reserved=bindparam("r"),
                        limit_micro=bindparam("l"),
                        citation=bindparam("cit"),
                        last_seq=bindparam("s"),
                    ),
                    new,
                )
            if old:
                conn.execute(
                    update(b)
                    .where(b.c.account == bindparam("a"))
                    .values(
                        committed=bindparam("c"),
                        reserved=bindparam("r"),
                        limit_micro=bindparam("l"),
                        citation=bindparam("cit"),
                        last_seq=bindparam("s"),
                    ),
                    old,
                )
        if self.requests:
            conn.execute(t.requests.insert(), self.requests)
        if self.rows:
            conn.execute(
                update(t.chain_head)
                .where(t.chain_head.c.id == 1)
                .values(seq=self.seq, hash=self.hash)
            )
