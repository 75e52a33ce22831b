"""One write transaction: append entries to the chain and keep the materialised state in step.

`Writer` is created inside `Database.write`. Its first round trip takes the write lock (on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` already holds it) and reads the chain head, the earliest
hold expiry, whether the request's idempotency key was already used, and the balances it will
need. It applies entries in memory, checks caps, and `flush` writes everything with one multi-row
statement per table: a single reservation costs a few statements, a batch of 100,000 the same few.

A batch (`draw_batch`) is decided in one pass that works out once per distinct draw what it adds
to the chain hash's preimage and to the request's fingerprint, and checks caps once per account
at the end (a batch only adds, so usage peaks after its last request); any refusal, conflict,
share cap or bad input sends it to the request-by-request loop, which gives the exact error.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from hashlib import sha256
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection

from aiexport.errors import Conflict, InputError, QuotaExceeded
from aiexport.ledger import _sql as q
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._db import Names
from aiexport.ledger._entries import KIND_CODE, check_text, deltas, iso
from aiexport.rules.determination import Draw

_EXPIRY_ACTOR = "system:expiry"
_EXPIRY_CITATION = "reservation expired"
_CHUNK = 500
# A draw's fields in one C call: what `_draw_batch_fast` compares a draw with its account's last.
_DRAW_NO = tuple(f"#{i}" for i in range(64))  # an entry's idempotency key is its request's + this
draw_fields = attrgetter("account", "amount", "limit", "citation", "max_share", "share_of")


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
    fingerprint: bytes
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
        names: Names | None = None,
    ) -> None:
        self.conn = conn
        self.sql = q.Sql(conn.connection.driver_connection, dialect)
        self.now = now
        self.created_at = iso(now)
        self.txn = uuid.uuid4().hex
        self.bal: dict[str, list[Any]] = {}  # account -> [committed, reserved, limit, citation]
        wanted = sorted(set(accounts))[:_CHUNK]
        (seq, digest, first_expiry, prior_fp, txn_max, name_max), rows = self.sql.open(key, wanted)
        self._remember(wanted, rows)
        self.seq: int = int(seq)
        self.hash: str = digest
        self.txn_id = int(txn_max or 0) + 1
        self._names = names if names is not None else Names()
        self._next_name = int(name_max or 0) + 1
        self.new_names: list[tuple[int, str]] = []
        self.prior = self.find_request(key) if key is not None and prior_fp is not None else None
        self._first_expiry: str | None = first_expiry
        self.rows: list[tuple[Any, ...]] = []
        # Entries of `draw_batch`, narrow: (seq, account, amount, order_id, citation, idem_key,
        # link, hash), with txn, kind, actor and expiry the same for all (`_batch_const`).
        self.batch_rows: list[tuple[Any, ...]] = []
        self._batch_const: tuple[int, str, str | None] | None = None
        self.touched: dict[str, int] = {}  # account -> last seq
        self.new_holds: list[tuple[Any, ...]] = []
        self.closed_holds: list[tuple[int]] = []
        self.requests: list[tuple[Any, ...]] = []
        self._keys: set[str] = set()
        self._micro: dict[Decimal, int] = {}
        self._ok_text: set[tuple[str, str]] = set()
        self._ok_str: set[str] = set()  # texts `check_text` accepted, for `draw_batch`

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

    def _preimage_parts(
        self, kind: str, actor: str, expires_at: str | None
    ) -> tuple[bytes, bool, str, str, str, str]:
        """The constant stretches of a batch's entries: the link to the chain head, whether the
        entries are holds, and the parts of the chain hash's preimage (`_entries.hash_fields`)
        around each entry's own fields."""
        return (
            bytes.fromhex(self.hash[:16]),
            kind == "reserve" and expires_at is not None,
            f"\x1f{self.txn}\x1f{kind}\x1f",
            f"\x1f{actor}\x1f",
            f"\x1f{self.created_at}\x1f{expires_at or ''}\x1f\x1f",
            f"{kind}|",
        )

    def intern(self, texts: Iterable[str]) -> dict[str, int]:
        """The `ledger_names` ids of `texts`, looked up (or assigned) once per process.

        Returns this process's memo: use it as a plain dict after this call. New ids are written
        at `flush`, in this transaction; `Database.write` keeps them only once it commits.
        """
        ids, staged = self._names.ids, self._names.staged
        missing = sorted({x for x in texts if x not in ids and x not in staged})
        if missing:
            for i in range(0, len(missing), 10_000):
                chunk = missing[i : i + 10_000]
                if self.sql.sqlite:
                    found = self.sql.all(q.NAMES_JSON, (json.dumps(chunk),))
                else:
                    found = self.sql.all(q.NAMES_ANY, (chunk,))
                ids.update((name, int(id_)) for name, id_ in found)  # committed by others
            for text in missing:
                if text not in ids:
                    check_text(text)
                    staged[text] = self._next_name
                    self.new_names.append((self._next_name, text))
                    self._next_name += 1
        if staged:
            return {**ids, **staged}
        return ids

    def name_id(self, text: str) -> int:
        found = self._names.ids.get(text)
        if found is None:
            found = self.intern([text])[text]
        return found

    def find_request(self, key: str) -> RequestRow | None:
        row = self.sql.one(q.REQUEST, (key,))
        return None if row is None else RequestRow(*row)

    def find_requests(self, keys: Sequence[str]) -> dict[str, RequestRow]:
        """The recorded requests among `keys`, in one query whatever their number."""
        if not keys:
            return {}
        if self.sql.sqlite:
            rows = self.sql.all(q.REQUESTS_JSON, (json.dumps(list(keys)),))
        else:
            rows = self.sql.all(q.REQUESTS_ANY, (list(keys),))
        return {row[0]: RequestRow(*row) for row in rows}

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
        ids = self._names.ids
        if account not in ids or actor not in ids or citation not in ids:
            ids = self.intern((account, actor, citation))
        self.seq += 1
        seq = self.seq
        prev = self.hash
        # hash_fields(prev, fields), inlined
        digest = sha256(
            f"{prev}\x1f{seq}\x1f{self.txn}\x1f{kind}\x1f{account}\x1f{amount}"
            f"\x1f{order_id or ''}\x1f{actor}\x1f{citation}\x1f{self.created_at}"
            f"\x1f{expires_at or ''}\x1f{'' if ref_seq is None else ref_seq}\x1f{key}".encode()
        ).digest()
        self.hash = digest.hex()
        self.rows.append((seq, self.txn_id, KIND_CODE[kind], ids[account], amount, order_id,
                          ids[actor], ids[citation], expires_at, ref_seq, key,
                          bytes.fromhex(prev[:16]), digest))  # fmt: skip
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
        first = self.seq + 1
        self.draw_all(kind, draws, key, actor, order_id, expires_at)
        return list(range(first, self.seq + 1))

    def draw_all(
        self,
        kind: str,
        draws: Sequence[Draw],
        key: str,
        actor: str,
        order_id: str | None,
        expires_at: str | None,
    ) -> None:
        """`apply_draws` without its checks of `key`, `actor` and `order_id` (the caller's).

        It computes each chain hash over plain values (the same preimage as
        `_entries.hash_fields`), appends a row per entry, and keeps the balances in memory, so
        the transaction's writes wait for `flush`.
        """
        if kind == "reserve":
            col = 1
        elif kind == "commit":
            col = 0
        else:
            raise InputError(f"draws are committed or reserved, not {kind!r}")
        bal, ok, memo, rows, touched = self.bal, self._ok_text, self._micro, self.rows, self.touched
        txn, created, prev = self.txn, self.created_at, self.hash
        ids = self._names.ids
        if actor not in ids or any(d.account not in ids or d.citation not in ids for d in draws):
            ids = self.intern([actor, *(d.account for d in draws), *(d.citation for d in draws)])
        txn_id, code, actor_id = self.txn_id, KIND_CODE[kind], ids[actor]
        order = order_id or ""
        expiry = expires_at or ""
        hold = kind == "reserve" and expires_at is not None
        seq = self.seq
        amounts = []
        for i, d in enumerate(draws):
            account, citation = d.account, d.citation
            m = memo.get(d.amount)
            if m is None:
                m = memo[d.amount] = to_micro(d.amount)
            if m <= 0:
                raise InputError(f"draw on {account} must be positive, got {d.amount} TPP")
            if (account, citation) not in ok:
                check_text(account, citation)
                ok.add((account, citation))
            if account not in bal or (d.share_of and d.share_of not in bal):
                self.load([account, d.share_of or account])
            amounts.append(m)
            seq += 1
            idem = f"{key}#{i}"
            digest = sha256(
                f"{prev}\x1f{seq}\x1f{txn}\x1f{kind}\x1f{account}\x1f{m}\x1f{order}\x1f{actor}"
                f"\x1f{citation}\x1f{created}\x1f{expiry}\x1f\x1f{idem}".encode()
            ).digest()
            rows.append((seq, txn_id, code, ids[account], m, order_id, actor_id, ids[citation],
                         expires_at, None, idem, bytes.fromhex(prev[:16]), digest))  # fmt: skip
            prev = digest.hex()
            bal[account][col] += m
            touched[account] = seq
            if hold:
                self.new_holds.append((seq, txn, account, m, expires_at))
        self.seq, self.hash = seq, prev
        for d, m in zip(draws, amounts, strict=True):
            if d.max_share is not None:
                self.check(d, m, order_id)
            elif d.limit is not None:
                state = bal[d.account]
                limit = memo.get(d.limit)
                if limit is None:
                    limit = memo[d.limit] = to_micro(d.limit)
                state[2], state[3] = limit, d.citation
                used = state[0] + state[1]
                if used > limit:
                    raise refusal(d, used, m, limit, order_id)

    def draw_batch(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
    ) -> list[RequestRow | tuple[str, int, int]]:
        """`record_batch`'s loop: `_draw_batch_fast` when it can decide, else `_draw_batch_exact`.

        Both give the same entries, hashes, requests and balances; the fast path leaves the writer
        untouched whenever it gives up (a refusal, a conflict, bad input, a share cap), and the
        exact path then runs from the same state, raising the error the batch deserves.
        """
        done = self._draw_batch_fast(kind, requests, actor, expires_at, prior)
        if done is not None:
            return done
        return self._draw_batch_exact(kind, requests, actor, expires_at, prior)

    def _draw_batch_fast(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
    ) -> list[RequestRow | tuple[str, int, int]] | None:
        """The batch in one pass over plain values, or None (and nothing changed) to defer to
        `_draw_batch_exact`.

        What each distinct draw contributes (name ids, micro-TPP, its piece of the fingerprint,
        its stretches of the chain hash's preimage) is worked out once per distinct draw, so an
        entry costs one preimage format, one SHA-256 and one row tuple. Caps are checked once,
        at the end, per account: every draw here adds a positive amount to its account, so an
        account's usage only grows through the batch and is at its highest after the last
        request; if that is within the (one) limit the account's draws carry, it was within it
        after every request. Anything else - a share cap, two different limits on one account,
        an account past its limit - defers to the exact path, which checks request by request.
        """
        if kind == "reserve":
            col = 1
        elif kind == "commit":
            col = 0
        else:
            return None
        if not actor or "\x1f" in actor:
            return None
        texts = {actor}
        for r in requests:
            for d in r.draws:
                texts.add(d.account)
                texts.add(d.citation)
        ids = self.intern(texts)
        bal, txn, seq, prev = self.bal, self.txn, self.seq, self.hash
        link, hold, mid, by, tail, head = self._preimage_parts(kind, actor, expires_at)
        # account -> (account, account id, citation id, micro-TPP, fingerprint piece, preimage
        # before the order id, preimage after it, `draw_fields` of the draw it was made from)
        shapes: dict[str, tuple[Any, ...]] = {}
        limits: dict[str, tuple[int, str]] = {}  # account -> (limit, citation) of its draws
        added: dict[str, int] = {}  # account -> micro-TPP this batch adds
        touched: dict[str, int] = {}  # account -> its last entry's seq
        rows: list[tuple[Any, ...]] = []
        recorded: list[tuple[Any, ...]] = []
        holds: list[tuple[Any, ...]] = []
        keys: set[str] = set()
        old_keys = self._keys
        out: list[RequestRow | tuple[str, int, int]] = []
        sha, append = sha256, rows.append
        try:
            for r in requests:
                key, draws, order_id = r.key, r.draws, r.order_id
                if prior:
                    found = prior.get(key)
                    if found is not None:
                        fp_hex = self.fingerprint(kind, draws, order_id)
                        if found.fingerprint != bytes.fromhex(fp_hex):
                            return None
                        out.append(found)
                        continue
                if not key or "\x1f" in key or key in keys or key in old_keys:
                    return None
                if order_id is not None and (not order_id or "\x1f" in order_id):
                    return None
                keys.add(key)
                start = seq + 1
                order = order_id or ""
                fp_text = head + str(order_id)
                for i, d in enumerate(draws):
                    # Keyed by account (its str hash is cached; a Decimal's is not), then checked.
                    sig = draw_fields(d)
                    shape = shapes.get(sig[0])
                    if shape is None or shape[7] != sig:
                        made = self._batch_shape(d, ids, limits, mid, by, tail)
                        if made is None:
                            return None
                        shape = shapes[sig[0]] = made
                        added.setdefault(sig[0], 0)
                    account, account_id, citation_id, m, piece, before, after, _ = shape
                    fp_text += piece
                    seq += 1
                    idem = key + (_DRAW_NO[i] if i < 64 else f"#{i}")
                    digest = sha(f"{prev}\x1f{seq}{before}{order}{after}{idem}".encode()).digest()
                    append((seq, account_id, m, order_id, citation_id, idem, link, digest))
                    prev, link = digest.hex(), digest[:8]
                    added[account] += m
                    touched[account] = seq
                    if hold:
                        holds.append((seq, txn, account, m, expires_at))
                fp = sha(fp_text.encode()).digest()
                if seq >= start:
                    recorded.append((key, fp, start, start, seq))
                else:
                    recorded.append((key, fp, start, None, None))
                out.append((key, start, seq))
        except (InputError, Conflict):
            return None
        for account, (limit, _) in limits.items():
            state = bal[account]
            if state[0] + state[1] + added[account] > limit:
                return None
        # Decided: now, and only now, change the writer.
        for account, amount in added.items():
            bal[account][col] += amount
        for account, (limit, citation) in limits.items():
            bal[account][2], bal[account][3] = limit, citation
        self.touched.update(touched)
        self.batch_rows.extend(rows)
        self._batch_const = (ids[actor], kind, expires_at)
        old_keys.update(keys)
        self.requests.extend(recorded)
        self.new_holds.extend(holds)
        self._ok_str.update(texts)
        self.seq, self.hash = seq, prev
        return out

    def _batch_shape(
        self,
        d: Draw,
        ids: dict[str, int],
        limits: dict[str, tuple[int, str]],
        mid: str,
        by: str,
        tail: str,
    ) -> tuple[Any, ...] | None:
        """What one distinct draw contributes to `_draw_batch_fast`, or None to defer."""
        account, citation = d.account, d.citation
        if d.max_share is not None:
            return None
        if not account or not citation or "\x1f" in account or "\x1f" in citation:
            return None
        if account not in self.bal or (d.share_of and d.share_of not in self.bal):
            return None
        m = self.micro(d.amount)
        if m <= 0:
            return None
        lm: int | str = ""
        if d.limit is not None:
            lm = self.micro(d.limit)
            if limits.setdefault(account, (lm, citation)) != (lm, citation):
                return None
        piece = f"|{account},{m},{lm},{d.max_share},{d.share_of}"
        return (account, ids[account], ids[citation], m, piece,
                f"{mid}{account}\x1f{m}\x1f", f"{by}{citation}{tail}", draw_fields(d))  # fmt: skip

    def _draw_batch_exact(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
    ) -> list[RequestRow | tuple[str, int, int]]:
        """`record_batch`'s loop, request by request: per request (`key`, `draws`, `order_id`), its fingerprint, a
        replay of a recorded key, or its entries and caps; `(key, first, last)` per new request.

        One function over plain values on purpose: this is the code a batch of 100,000 entries
        runs 100,000 times. Each request's entries are appended and its caps checked before the
        next request; a refusal or conflict aborts the whole transaction. Entries go to
        `batch_rows` in their narrow form (what every entry of the batch shares is written once).
        """
        check_text(actor)
        if kind == "reserve":
            col = 1
        elif kind == "commit":
            col = 0
        else:
            raise InputError(f"draws are committed or reserved, not {kind!r}")
        texts = {actor}
        for r in requests:
            for d in r.draws:
                texts.add(d.account)
                texts.add(d.citation)
        ids = self.intern(texts)
        self._batch_const = (ids[actor], kind, expires_at)
        bal, ok, memo, touched = self.bal, self._ok_str, self._micro, self.touched
        rows = self.batch_rows
        keys, recorded, holds = self._keys, self.requests, self.new_holds
        txn, prev, seq = self.txn, self.hash, self.seq
        link, hold, mid, by, tail, head = self._preimage_parts(kind, actor, expires_at)
        out: list[RequestRow | tuple[str, int, int]] = []
        sha, append, micro = sha256, rows.append, self.micro
        for r in requests:
            key, draws, order_id = r.key, r.draws, r.order_id
            found = prior.get(key)
            if found is not None:
                if found.fingerprint != bytes.fromhex(self.fingerprint(kind, draws, order_id)):
                    raise Conflict(f"idempotency key {key!r} was used for another request")
                out.append(found)
                continue
            if (
                not key
                or "\x1f" in key
                or (order_id is not None and "\x1f" in (order_id or "\x1f"))
            ):
                check_text(key, order_id)
            if key in keys:
                raise Conflict(
                    f"idempotency key {key!r} appears twice in one batch; make keys unique"
                )
            keys.add(key)
            start = seq + 1
            order = order_id or ""
            fp_text = head + str(order_id)  # the preimage of `draws_fingerprint`, as it goes
            for i, d in enumerate(draws):
                account, citation, amount, lim = d.account, d.citation, d.amount, d.limit
                m = memo.get(amount)
                if m is None:
                    m = memo[amount] = to_micro(amount)
                if lim is None:
                    fp_text += f"|{account},{m},,{d.max_share},{d.share_of}"
                else:
                    lm = memo.get(lim)
                    if lm is None:
                        lm = micro(lim)
                    fp_text += f"|{account},{m},{lm},{d.max_share},{d.share_of}"
                if m <= 0:
                    raise InputError(f"draw on {account} must be positive, got {amount} TPP")
                if account not in ok or citation not in ok:
                    check_text(account, citation)
                    ok.update((account, citation))
                if account not in bal or (d.share_of and d.share_of not in bal):
                    self.load([account, d.share_of or account])
                seq += 1
                idem = f"{key}#{i}"
                digest = sha(
                    f"{prev}\x1f{seq}{mid}{account}\x1f{m}\x1f{order}{by}{citation}{tail}{idem}".encode()
                ).digest()
                append((seq, ids[account], m, order_id, ids[citation], idem, link, digest))
                prev, link = digest.hex(), digest[:8]
                bal[account][col] += m
                touched[account] = seq
                if hold:
                    holds.append((seq, txn, account, m, expires_at))
            fp = sha(fp_text.encode()).digest()  # = draws_fingerprint(...)
            for d in draws:
                if d.max_share is not None:
                    self.check(d, memo[d.amount], order_id)
                elif d.limit is not None:
                    state = bal[d.account]
                    limit = memo[d.limit]
                    state[2], state[3] = limit, d.citation
                    used = state[0] + state[1]
                    if used > limit:
                        raise refusal(d, used, memo[d.amount], limit, order_id)
            if seq >= start:
                recorded.append((key, fp, start, start, seq))
            else:
                recorded.append((key, fp, start, None, None))
            out.append((key, start, seq))
        self.seq, self.hash = seq, prev
        return out

    def fingerprint(self, kind: str, draws: Sequence[Draw], order_id: str | None) -> str:
        """`draws_fingerprint` (the same digest), with this transaction's memo of amounts."""
        memo = self._micro
        parts = [kind, str(order_id)]
        for d in draws:
            m = memo.get(d.amount)
            if m is None:
                m = memo[d.amount] = to_micro(d.amount)
            if d.limit is None:
                limit: int | str = ""
            else:
                limit = memo.get(d.limit) or self.micro(d.limit)
            parts.append(f"{d.account},{m},{limit},{d.max_share},{d.share_of}")
        return sha256("|".join(parts).encode()).hexdigest()

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
        self.requests.append((key, bytes.fromhex(fingerprint), start, first, last))

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write names, the transaction, entries, holds, balances, requests and the new chain
        head; on PostgreSQL, commit. Nothing may be written after `flush`.

        On PostgreSQL everything goes in one round trip (large batches `COPY` first), and the
        commit does not wait for its WAL flush: the write lock is released at once, and
        `Database.write` makes the commit durable before anyone is told of it (see `_db`).
        """
        sql = self.sql
        pg = not sql.sqlite
        written = bool(self.rows or self.batch_rows or self.requests)
        txn_id = self.txn_id
        # In key order: the requests B-tree is keyed by it, so its pages fill in sequence.
        self.requests.sort()
        copy = pg and (len(self.rows) + len(self.batch_rows) >= 1000 or len(self.requests) >= 1000)
        if copy:
            sql.bulk("ledger_entries", q.ENTRY_COLS, self.rows + self._full_batch_rows())
            sql.bulk(
                "ledger_requests",
                q.REQUEST_COLS,
                [(k, txn_id, *rest) for k, *rest in self.requests],
            )
        with sql.pipeline():
            if pg:
                sql.run(q.ASYNC_COMMIT)
            sql.many(q.INSERT_NAME, self.new_names)
            if written:
                sql.run(q.INSERT_TXN, (txn_id, self.txn, self.created_at))
            if written and not copy:
                sql.many(q.INSERT_ENTRY, self.rows)
                if self.batch_rows and sql.sqlite:
                    self._flush_batch_rows()
                elif self.batch_rows:
                    sql.many(q.INSERT_ENTRY, self._full_batch_rows())
                if len(self.requests) == 1:
                    # One statement text for every transaction, prepared once per connection
                    # (the multi-row form below names the transaction in its text).
                    key, *rest = self.requests[0]
                    sql.run(q.INSERT_REQUEST, (key, txn_id, *rest))
                else:
                    sql.many_values(
                        "INSERT INTO ledger_requests (key, txn, fingerprint, start_seq, first_seq, "
                        "last_seq) VALUES",
                        f"(%s, {txn_id:d}, %s, %s, %s, %s)",
                        self.requests,
                    )
            sql.many(q.INSERT_HOLD, self.new_holds)
            sql.many(q.DELETE_HOLD, self.closed_holds)
            sql.many(
                q.UPSERT_BALANCE,
                [(a, *self.bal[a], last) for a, last in sorted(self.touched.items())],
            )
            if self.rows or self.batch_rows:
                sql.run(q.UPDATE_HEAD, (self.seq, self.hash))
            if pg:
                # Commit in the same round trip; the caller's commit() then finds nothing to do.
                sql.run("COMMIT")

    def _full_batch_rows(self) -> list[tuple[Any, ...]]:
        if not self.batch_rows:
            return []
        assert self._batch_const is not None
        actor_id, kind, expires_at = self._batch_const
        code, txn_id = KIND_CODE[kind], self.txn_id
        return [
            (seq, txn_id, code, account, m, order, actor_id, citation, expires_at, None, idem, link,
             digest)
            for seq, account, m, order, citation, idem, link, digest in self.batch_rows
        ]  # fmt: skip

    def _flush_batch_rows(self) -> None:
        """`batch_rows` on SQLite, with what they share written into the statement once: most of
        the cost of inserting a row is binding its parameters."""
        assert self._batch_const is not None
        actor_id, kind, expires_at = self._batch_const
        code, txn_id = KIND_CODE[kind], self.txn_id
        expiry = "NULL" if expires_at is None else "'" + expires_at.replace("'", "''") + "'"
        self.sql.many_values(
            f"INSERT INTO ledger_entries ({', '.join(q.ENTRY_COLS)}) VALUES",
            f"(%s, {txn_id:d}, {code:d}, %s, %s, %s, {actor_id:d}, %s, {expiry}, NULL, %s, %s, %s)",
            self.batch_rows,
        )
