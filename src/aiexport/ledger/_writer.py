"""One write transaction: append entries to the chain and keep the materialised state in step.

`Writer` is created inside `Database.write`. Its first round trip takes the write lock (on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds it) and reads the chain head, the earliest
hold expiry, whether the request's idempotency key was already used, and the balances it will
need. It applies entries in memory, checks caps, and `flush` writes everything with one multi-row
statement per table: a single reservation costs a few statements, a batch of 100,000 the same few.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from hashlib import sha256
from typing import Any, NamedTuple

from sqlalchemy import Connection

from aiexport.errors import Conflict, InputError, QuotaExceeded
from aiexport.ledger import _sql as q
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._entries import check_text, deltas, iso
from aiexport.rules.determination import Draw

_EXPIRY_ACTOR = "system:expiry"
_EXPIRY_CITATION = "reservation expired"
_CHUNK = 500


def draws_fingerprint(
    kind: str,
    draws: Sequence[Draw],
    order_id: str | None,
    micro: Callable[[Decimal], int] = to_micro,
) -> str:
    """A stable digest of a draw request, to tell a true replay from a reused key."""
    parts = [kind, str(order_id)]
    for d in draws:
        limit = "" if d.limit is None else micro(d.limit)
        parts.append(f"{d.account},{micro(d.amount)},{limit},{d.max_share},{d.share_of}")
    return sha256("|".join(parts).encode()).hexdigest()


class CapReached(QuotaExceeded):
    """`QuotaExceeded`, naming the account whose cap refused the draw."""

    def __init__(self, message: str, account: str) -> None:
        super().__init__(message)
        self.account = account


def refusal(d: Draw, used: int, amount: int, limit: int, order_id: str | None) -> CapReached:
    """The error for a draw that would take `d.account` from `used - amount` past `limit`."""
    who = f" by order {order_id}" if order_id else ""
    left = from_micro(max(limit - (used - amount), 0))
    return CapReached(
        f"drawing {d.amount} TPP from {d.account}{who} would exceed its limit of {d.limit} TPP "
        f"({d.citation}): {left} TPP left; reduce the order or seek a license. "
        "Nothing was recorded.",
        d.account,
    )


class RequestRow(NamedTuple):
    """A recorded request: its idempotency key and the entries it wrote."""

    key: str
    txn: str
    fingerprint: str
    start_seq: int
    first_seq: int | None
    last_seq: int | None
    created_at: str


class Writer:
    """Entries appended inside one locked transaction."""

    def __init__(
        self,
        conn: Connection,
        now: dt.datetime,
        dialect: str,
        key: str | None = None,
        accounts: Iterable[str] = (),
    ) -> None:
        self.conn = conn
        self.sql = q.Sql(conn.connection.driver_connection, dialect)
        self.now = now
        self.created_at = iso(now)
        self.txn = uuid.uuid4().hex
        self.bal: dict[str, list[Any]] = {}  # account -> [committed, reserved, limit, citation]
        wanted = sorted(set(accounts))[:_CHUNK]
        (seq, digest, first_expiry, prior_fp), rows = self.sql.open(key, wanted)
        self._remember(wanted, rows)
        self.seq: int = int(seq)
        self.hash: str = digest
        self.prior = self.find_request(key) if key is not None and prior_fp is not None else None
        self._first_expiry: str | None = first_expiry
        self.rows: list[tuple[Any, ...]] = []
        self.touched: dict[str, int] = {}  # account -> last seq
        self.new_holds: list[tuple[Any, ...]] = []
        self.closed_holds: list[tuple[int]] = []
        self.requests: list[tuple[Any, ...]] = []
        self._keys: set[str] = set()
        self._micro: dict[Decimal, int] = {}
        self._ok_text: set[tuple[str, str]] = set()

    # -- reading state -------------------------------------------------------------------------

    def load(self, accounts: Iterable[str]) -> None:
        """Bring the balances of `accounts` into memory (one query per 500 missing)."""
        missing = sorted({a for a in accounts if a not in self.bal})
        for i in range(0, len(missing), _CHUNK):
            chunk = missing[i : i + _CHUNK]
            sql = q.BALANCES.format(", ".join(["%s"] * len(chunk)))
            self._remember(chunk, self.sql.all(sql, tuple(chunk)))

    def _remember(self, accounts: list[str], rows: list[Any]) -> None:
        for account, c, r, lim, cit in rows:
            self.bal[account] = [int(c), int(r), lim, cit]
        for a in accounts:
            if a not in self.bal:
                self.bal[a] = [0, 0, None, None]

    def used_micro(self, account: str) -> int:
        self.load([account])
        c, r, _, _ = self.bal[account]
        return int(c) + int(r)

    def find_request(self, key: str) -> RequestRow | None:
        row = self.sql.one(q.REQUEST, (key,))
        return None if row is None else RequestRow(*row)

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
        if account not in self.bal:
            self.load([account])
        self.seq += 1
        seq = self.seq
        fields = (
            seq,
            self.txn,
            kind,
            account,
            amount,
            order_id,
            actor,
            citation,
            self.created_at,
            expires_at,
            ref_seq,
            key,
        )
        prev = self.hash
        # hash_fields(prev, fields), inlined: this line runs once per entry of a batch
        self.hash = sha256(
            f"{prev}\x1f{seq}\x1f{self.txn}\x1f{kind}\x1f{account}\x1f{amount}"
            f"\x1f{order_id or ''}\x1f{actor}\x1f{citation}\x1f{self.created_at}"
            f"\x1f{expires_at or ''}\x1f{'' if ref_seq is None else ref_seq}\x1f{key}".encode()
        ).hexdigest()
        self.rows.append((*fields, prev, self.hash))
        dc, dr = deltas(kind, amount, ref_seq)
        state = self.bal[account]
        state[0] += dc
        state[1] += dr
        self.touched[account] = seq
        if kind == "reserve" and expires_at is not None:
            self.new_holds.append((seq, self.txn, account, amount, expires_at))
        return seq

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
        check_text(key, actor, order_id)
        bal, ok, micro = self.bal, self._ok_text, self.micro
        amounts = []
        for d in draws:
            m = micro(d.amount)
            if m <= 0:
                raise InputError(f"draw on {d.account} must be positive, got {d.amount} TPP")
            if (d.account, d.citation) not in ok:
                check_text(d.account, d.citation)
                ok.add((d.account, d.citation))
            if d.account not in bal or (d.share_of and d.share_of not in bal):
                self.load([d.account, d.share_of or d.account])
            amounts.append(m)
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
            for i, (d, m) in enumerate(zip(draws, amounts, strict=True))
        ]
        for d, m in zip(draws, amounts, strict=True):
            if d.limit is not None or d.max_share is not None:
                self.check(d, m, order_id)
        return seqs

    def fingerprint(self, kind: str, draws: Sequence[Draw], order_id: str | None) -> str:
        """`draws_fingerprint` with this transaction's memo of amounts."""
        return draws_fingerprint(kind, draws, order_id, self.micro)

    def micro(self, amount: Decimal) -> int:
        """`to_micro`, remembered: a batch repeats the same amounts and limits many times."""
        found = self._micro.get(amount)
        if found is None:
            found = self._micro[amount] = to_micro(amount)
        return found

    def check(self, d: Draw, amount: int, order_id: str | None) -> None:
        """Refuse the whole transaction if `d`'s account is now past its limit or share."""
        state = self.bal[d.account]
        used = int(state[0]) + int(state[1])
        who = f" by order {order_id}" if order_id else ""
        if d.limit is not None:
            limit = self.micro(d.limit)
            state[2], state[3] = limit, d.citation
            if used > limit:
                raise refusal(d, used, amount, limit, order_id)
        if d.max_share is not None and d.share_of is not None:
            base = self.used_micro(d.share_of)
            if Decimal(used) > d.max_share * Decimal(base):
                raise CapReached(
                    f"drawing {d.amount} TPP on {d.account}{who} would take it past "
                    f"{d.max_share:%} of {d.share_of} ({d.citation}); nothing was recorded.",
                    d.account,
                )

    def close_hold(self, seq: int) -> None:
        self.closed_holds.append((seq,))

    def sweep_expired(self) -> None:
        """Release every hold whose expiry has passed, as entries of this transaction."""
        if self._first_expiry is None or self._first_expiry > self.created_at:
            return
        for seq, account, amount in self.sql.all(q.EXPIRED, (self.created_at,)):
            self.append(
                "release",
                account,
                int(amount),
                actor=_EXPIRY_ACTOR,
                citation=_EXPIRY_CITATION,
                key=f"expiry:{seq}",
                ref_seq=int(seq),
            )
            self.close_hold(int(seq))

    def record_request(self, key: str, fingerprint: str, seqs: Sequence[int], start: int) -> None:
        if key in self._keys:
            raise Conflict(f"idempotency key {key!r} appears twice in one batch; make keys unique")
        self._keys.add(key)
        first, last = (seqs[0], seqs[-1]) if seqs else (None, None)
        self.requests.append((key, self.txn, fingerprint, start, first, last, self.created_at))

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write entries, holds, balances, requests and the new chain head; on PostgreSQL,
        commit. Nothing may be written after `flush`."""
        sql = self.sql
        sql.bulk("ledger_entries", q.ENTRY_COLS, self.rows)
        sql.bulk("ledger_requests", q.REQUEST_COLS, self.requests)
        with sql.pipeline():
            sql.many(q.INSERT_HOLD, self.new_holds)
            sql.many(q.DELETE_HOLD, self.closed_holds)
            sql.many(
                q.UPSERT_BALANCE,
                [(a, *self.bal[a], last) for a, last in sorted(self.touched.items())],
            )
            if self.rows:
                sql.run(q.UPDATE_HEAD, (self.seq, self.hash))
            if not sql.sqlite:
                # Commit in the same round trip; the caller's commit() then finds nothing to do.
                sql.run("COMMIT")
