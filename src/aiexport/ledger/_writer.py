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
The pass's per-entry loop is compiled (`_chainc.c`, built by `setup.py` where a C compiler and
OpenSSL's headers are present) and has a Python twin (`_chain_py`) that tests hold to the same
bytes. A batch's entries are kept in chunks of 64 (`_Chunks`): on SQLite one statement inserts a
chunk, binding five parameters per entry, its seq, link and hash taken from the chunk's own.
"""

from __future__ import annotations

import datetime as dt
import importlib
import uuid
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from hashlib import sha256
from operator import attrgetter
from types import ModuleType
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection

from aiexport.errors import Conflict, InputError, QuotaExceeded
from aiexport.ledger import _sql as q
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._db import Names
from aiexport.ledger._entries import KIND_CODE, check_text, deltas, iso
from aiexport.rules.determination import Draw


def _compiled() -> ModuleType | None:
    """`_chainc`, the batch loop in C, or None where it was not built (no compiler or no
    OpenSSL headers at install time): `_chain_py` then does the same in Python."""
    try:
        return importlib.import_module("aiexport.ledger._chainc")
    except ImportError:
        return None


_chainc = _compiled()
# What the batch loop returns (`_chain_py`, `_chainc.chain_batch`): entries (`_Chunks`), requests
# (`_RequestChunks`), receipts, the keys it recorded, the new chain head and seq, and per account slot the
# micro-TPP added and the last entry's seq.
_Chained = tuple[
    list[list[Any]],
    list[list[Any]],
    list["RequestRow | tuple[str, int, int]"],
    set[str],
    str,
    int,
    list[int],
    list[int],
]


def batch_texts(requests: Sequence[Any]) -> tuple[list[str], set[str], set[str], set[str]]:
    """A batch's keys, and its draws' accounts, citations and the accounts shares are of: what
    `record_batch` reads before its loop, in one pass."""
    if _chainc is not None:
        found: tuple[list[str], set[str], set[str], set[str]] = _chainc.batch_texts(requests)
        return found
    keys, accounts, citations, shared = [], set(), set(), set()
    for r in requests:
        keys.append(r.key)
        for d in r.draws:
            accounts.add(d.account)
            citations.add(d.citation)
            if d.share_of:
                shared.add(d.share_of)
    return keys, accounts, citations, shared


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


def one_fingerprint(
    kind: str, d: Draw, amount: int, limit: str | None, order_id: str | None
) -> bytes:
    """`draws_fingerprint(kind, [d], order_id)` as bytes, for one draw with no share cap whose
    amount (`amount`) and limit (`limit`, as text) the caller has in micro-TPP already: the
    one-draw path (`Ledger._draw_one`), which sends the digest as bytea."""
    return sha256(
        f"{kind}|{order_id}|{d.account},{amount},{limit or ''},{d.max_share},None".encode()
    ).digest()


# Which balance column a draw adds to: [committed, reserved].
_COLUMN = {"commit": 0, "reserve": 1}


def _balance_column(kind: str) -> int:
    if kind not in _COLUMN:
        raise InputError(f"draws are committed or reserved, not {kind!r}")
    return _COLUMN[kind]


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


def share_refusal(d: Draw, order_id: str | None) -> CapReached:
    """The error for a draw that would take `d.account` past its share of `d.share_of`."""
    who = f" by order {order_id}" if order_id else ""
    return CapReached(
        f"drawing {d.amount} TPP on {d.account}{who} would take it past "
        f"{d.max_share:%} of {d.share_of} ({d.citation}); nothing was recorded.",
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
        # Entries of `draw_batch` in chunks of at most `_sql.CHUNK_ENTRIES` (`_Chunks`), with
        # txn, kind, actor and expiry the same for all (`_batch_const`).
        self.batch_chunks: list[list[Any]] = []
        self._batch_const: tuple[int, str, str | None] | None = None
        self.touched: dict[str, int] = {}  # account -> last seq
        self.new_holds: list[tuple[Any, ...]] = []
        self.closed_holds: list[tuple[int]] = []
        self.requests: list[tuple[Any, ...]] = []  # (key, fingerprint, start, first, last)
        self.request_chunks: list[list[Any]] = []  # a batch's requests (`_RequestChunks`)
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
        """The constant stretches of a batch's entries: the chain head's hash, whether the
        entries are holds, and the parts of the chain hash's preimage (`_entries.hash_fields`)
        around each entry's own fields."""
        return (
            bytes.fromhex(self.hash),
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
                    found = self.sql.all(q.NAMES_JSON, (orjson.dumps(chunk).decode(),))
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
            rows = self.sql.all(q.REQUESTS_JSON, (orjson.dumps(list(keys)).decode(),))
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
        col = _balance_column(kind)
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
        self.check_caps(draws, order_id)

    def check_caps(self, draws: Sequence[Draw], order_id: str | None) -> None:
        """After a request's entries: refuse the whole transaction if an account it drew on is
        past the limit or share its draw carries. Each draw's amount is in the memo already."""
        bal, memo = self.bal, self._micro
        for d in draws:
            if d.max_share is not None:
                self.check(d, memo[d.amount], order_id)
            elif d.limit is not None:
                state = bal[d.account]
                limit = memo.get(d.limit)
                if limit is None:
                    limit = memo[d.limit] = to_micro(d.limit)
                state[2], state[3] = limit, d.citation
                used = state[0] + state[1]
                if used > limit:
                    raise refusal(d, used, memo[d.amount], limit, order_id)

    def draw_batch(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
        texts: set[str],
    ) -> list[RequestRow | tuple[str, int, int]]:
        """`record_batch`'s loop: `_draw_batch_fast` when it can decide, else `_draw_batch_exact`.
        `texts`: the accounts and citations of every draw in `requests`.

        Both give the same entries, hashes, requests and balances; the fast path leaves the writer
        untouched whenever it gives up (a refusal, a conflict, bad input, a share cap), and the
        exact path then runs from the same state, raising the error the batch deserves.
        """
        done = self._draw_batch_fast(kind, requests, actor, expires_at, prior, texts)
        if done is not None:
            return done
        return self._draw_batch_exact(kind, requests, actor, expires_at, prior, texts)

    def _draw_batch_fast(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
        texts: set[str],
    ) -> list[RequestRow | tuple[str, int, int]] | None:
        """The batch in one pass over plain values, or None (and nothing changed) to defer to
        `_draw_batch_exact`.

        What each distinct draw contributes (name ids, micro-TPP, its piece of the fingerprint,
        its stretches of the chain hash's preimage) is worked out once per distinct draw
        (`_batch_shape`), so an entry costs one preimage, one SHA-256 and one row tuple: in C
        (`_chainc`, when built) or in Python (`_chain_py`, which also answers replays). Caps are
        checked once, at the end, per account: every draw here adds a positive amount to its
        account, so an account's usage only grows through the batch and is at its highest after
        the last request; if that is within the (one) limit the account's draws carry, it was
        within it after every request. Anything else - a share cap, two different limits on one
        account, an account past its limit - defers to the exact path, which checks request by
        request.
        """
        if kind not in _COLUMN:
            return None
        col = _COLUMN[kind]
        if not actor or "\x1f" in actor:
            return None
        ids = self.intern({actor, *texts})
        parts = self._preimage_parts(kind, actor, expires_at)
        _, hold, mid, by, tail, head = parts
        limits: dict[str, tuple[int, str]] = {}  # account -> (limit, citation) of its draws
        slots: dict[str, int] = {}  # account -> its index in `added` and `last`

        def shape(d: Draw) -> tuple[Any, ...] | None:
            return self._batch_shape(d, ids, limits, slots, mid, by, tail)

        holds: list[tuple[Any, ...]] = []
        done: _Chained | None
        try:
            if _chainc is not None and not prior:
                done = _chainc.chain_batch(
                    requests, shape, {}, self._keys, self.seq, self.hash, head, q.CHUNK_ENTRIES,
                    holds if hold else None, self.txn, expires_at,
                )  # fmt: skip
            else:
                done = self._chain_py(kind, requests, shape, prior, parts, holds, expires_at)
        except (InputError, Conflict):
            return None
        if done is None:
            return None
        chunks, recorded, out, keys, prev, seq, added, last = done
        bal = self.bal
        for account, (limit, _) in limits.items():
            state = bal[account]
            if state[0] + state[1] + added[slots[account]] > limit:
                return None
        # Decided: now, and only now, change the writer.
        for account, k in slots.items():
            bal[account][col] += added[k]
            self.touched[account] = last[k]
        for account, (limit, citation) in limits.items():
            bal[account][2], bal[account][3] = limit, citation
        self.batch_chunks += chunks
        self._batch_const = (ids[actor], kind, expires_at)
        self._keys.update(keys)
        self.request_chunks += recorded
        self.new_holds.extend(holds)
        self._ok_str.update(texts)
        self._ok_str.add(actor)
        self.seq, self.hash = seq, prev
        return out

    def _chain_py(
        self,
        kind: str,
        requests: Sequence[Any],
        shape_of: Callable[[Draw], tuple[Any, ...] | None],
        prior: dict[str, RequestRow],
        parts: tuple[bytes, bool, str, str, str, str],
        holds: list[tuple[Any, ...]],
        expires_at: str | None,
    ) -> _Chained | None:
        """`_chainc.chain_batch` in Python (the same result), and replays of recorded keys:
        (rows, requests, receipts, keys, chain head, seq, added, last) or None to defer."""
        head_hash, hold, _, _, _, head = parts
        txn, seq, prev, old_keys = self.txn, self.seq, self.hash, self._keys
        chunks = _Chunks(head_hash, seq)
        shapes: dict[str, tuple[Any, ...]] = {}
        added: list[int] = []
        last: list[int] = []
        recorded = _RequestChunks()
        keys: set[str] = set()
        out: list[RequestRow | tuple[str, int, int]] = []
        sha, append = sha256, chunks.add
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
            if type(key) is not str or not key or "\x1f" in key or key in keys or key in old_keys:
                return None
            if order_id is not None and (
                type(order_id) is not str or not order_id or "\x1f" in order_id
            ):
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
                    made = shape_of(d)
                    if made is None:
                        return None
                    shape = shapes[sig[0]] = made
                account, account_id, citation_id, m, piece, before, after, _, k = shape[:9]
                while len(added) <= k:
                    added.append(0)
                    last.append(0)
                fp_text += piece
                seq += 1
                idem = key + (_DRAW_NO[i] if i < 64 else f"#{i}")
                digest = sha(f"{prev}\x1f{seq}{before}{order}{after}{idem}".encode()).digest()
                append(seq, account_id, m, order_id, citation_id, idem, digest)
                prev = digest.hex()
                added[k] += m
                last[k] = seq
                if hold:
                    holds.append((seq, txn, account, m, expires_at))
            recorded.add(key, sha(fp_text.encode()).digest(), start, seq)
            out.append((key, start, seq))
        return chunks.close(seq), recorded.close(), out, keys, prev, seq, added, last

    def _batch_shape(
        self,
        d: Draw,
        ids: dict[str, int],
        limits: dict[str, tuple[int, str]],
        slots: dict[str, int],
        mid: str,
        by: str,
        tail: str,
    ) -> tuple[Any, ...] | None:
        """What one distinct draw contributes to `_draw_batch_fast`, or None to defer: the
        account, its id, the citation's id, micro-TPP, the fingerprint's piece, the chain
        preimage's stretches before and after the order id, `draw_fields`, the account's slot,
        then the three texts again as UTF-8 (`_chainc`'s layout)."""
        account, citation = d.account, d.citation
        if d.max_share is not None:
            return None
        if not account or not citation or "\x1f" in account or "\x1f" in citation:
            return None
        if account not in self.bal or (d.share_of and d.share_of not in self.bal):
            return None
        m = self.micro(d.amount)
        if not 0 < m < 2**62:  # non-positive: the exact path's error; larger: its integers
            return None
        lm: int | str = ""
        if d.limit is not None:
            lm = self.micro(d.limit)
            if limits.setdefault(account, (lm, citation)) != (lm, citation):
                return None
        piece = f"|{account},{m},{lm},{d.max_share},{d.share_of}"
        before, after = f"{mid}{account}\x1f{m}\x1f", f"{by}{citation}{tail}"
        slot = slots.setdefault(account, len(slots))
        return (account, ids[account], ids[citation], m, piece, before, after, draw_fields(d),
                slot, piece.encode(), before.encode(), after.encode())  # fmt: skip

    def _draw_batch_exact(
        self,
        kind: str,
        requests: Sequence[Any],
        actor: str,
        expires_at: str | None,
        prior: dict[str, RequestRow],
        texts: set[str],
    ) -> list[RequestRow | tuple[str, int, int]]:
        """`record_batch`'s loop, request by request: per request (`key`, `draws`, `order_id`), its fingerprint, a
        replay of a recorded key, or its entries and caps; `(key, first, last)` per new request.

        One function over plain values on purpose: this is the code a batch of 100,000 entries
        runs 100,000 times. Each request's entries are appended and its caps checked before the
        next request; a refusal or conflict aborts the whole transaction. Entries go to
        `batch_chunks` (what every entry of the batch shares is written once).
        """
        check_text(actor)
        col = _balance_column(kind)
        ids = self.intern({actor, *texts})
        self._batch_const = (ids[actor], kind, expires_at)
        bal, ok, memo, touched = self.bal, self._ok_str, self._micro, self.touched
        keys, holds, recorded = self._keys, self.new_holds, _RequestChunks()
        txn, prev, seq = self.txn, self.hash, self.seq
        head_hash, hold, mid, by, tail, head = self._preimage_parts(kind, actor, expires_at)
        chunks = _Chunks(head_hash, seq)
        out: list[RequestRow | tuple[str, int, int]] = []
        sha, append, micro = sha256, chunks.add, self.micro
        for r in requests:
            key, draws, order_id = r.key, r.draws, r.order_id
            found = prior.get(key)
            if found is not None:
                if found.fingerprint != bytes.fromhex(self.fingerprint(kind, draws, order_id)):
                    raise Conflict(f"idempotency key {key!r} was used for another request")
                out.append(found)
                continue
            if (
                type(key) is not str
                or not key
                or "\x1f" in key
                or (
                    order_id is not None
                    and (type(order_id) is not str or "\x1f" in (order_id or "\x1f"))
                )
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
                append(seq, ids[account], m, order_id, ids[citation], idem, digest)
                prev = digest.hex()
                bal[account][col] += m
                touched[account] = seq
                if hold:
                    holds.append((seq, txn, account, m, expires_at))
            fp = sha(fp_text.encode()).digest()  # = draws_fingerprint(...)
            self.check_caps(draws, order_id)
            recorded.add(key, fp, start, seq)
            out.append((key, start, seq))
        self.batch_chunks += chunks.close(seq)
        self.request_chunks += recorded.close()
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
        if d.limit is not None:
            limit = self.micro(d.limit)
            state[2], state[3] = limit, d.citation
            if used > limit:
                raise refusal(d, used, amount, limit, order_id)
        if d.max_share is not None and d.share_of is not None:
            base = self.used_micro(d.share_of)
            if Decimal(used) > d.max_share * Decimal(base):
                raise share_refusal(d, order_id)

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
        written = bool(self.rows or self.batch_chunks or self.requests or self.request_chunks)
        txn_id = self.txn_id
        many = len(self.rows) + len(self.batch_chunks) * q.CHUNK_ENTRIES >= 1000
        copy = pg and (many or len(self.request_chunks) * q.CHUNK_ENTRIES >= 1000)
        requests = self.requests if sql.sqlite else self.requests + self._full_requests()
        if copy:
            sql.bulk("ledger_entries", q.ENTRY_COLS, self.rows + self._full_batch_rows())
            sql.bulk(
                "ledger_requests", q.REQUEST_COLS, [(k, txn_id, *rest) for k, *rest in requests]
            )
        with sql.pipeline():
            if pg:
                sql.run(q.ASYNC_COMMIT)
            sql.many(q.INSERT_NAME, self.new_names)
            if written:
                sql.run(q.INSERT_TXN, (txn_id, self.txn, self.created_at))
            if written and not copy:
                sql.many(q.INSERT_ENTRY, self.rows)
                if self.batch_chunks and sql.sqlite:
                    self._flush_batch_chunks()
                elif self.batch_chunks:
                    sql.many(q.INSERT_ENTRY, self._full_batch_rows())
                # One statement text for every transaction, prepared once per connection.
                sql.many(q.INSERT_REQUEST, [(k, txn_id, *rest) for k, *rest in requests])
                if self.request_chunks and sql.sqlite:
                    self._flush_request_chunks()
            sql.many(q.INSERT_HOLD, self.new_holds)
            sql.many(q.DELETE_HOLD, self.closed_holds)
            sql.many(
                q.UPSERT_BALANCE,
                [(a, *self.bal[a], last) for a, last in sorted(self.touched.items())],
            )
            if self.rows or self.batch_chunks:
                sql.run(q.UPDATE_HEAD, (self.seq, self.hash))
            if pg:
                # Commit in the same round trip; the caller's commit() then finds nothing to do.
                sql.run("COMMIT")

    def _full_batch_rows(self) -> list[tuple[Any, ...]]:
        """`batch_chunks` as whole `ledger_entries` rows (PostgreSQL's `COPY` takes rows)."""
        if not self.batch_chunks:
            return []
        assert self._batch_const is not None
        actor_id, kind, expires_at = self._batch_const
        code, txn_id = KIND_CODE[kind], self.txn_id
        rows = []
        for chunk in self.batch_chunks:
            hashes, first = chunk[0], chunk[1]
            for j in range((len(chunk) - 2) // 5):
                account, m, order, citation, idem = chunk[2 + 5 * j : 7 + 5 * j]
                at = 32 * j
                rows.append((first + j, txn_id, code, account, m, order, actor_id, citation,
                             expires_at, None, idem, hashes[at : at + 8],
                             hashes[at + 32 : at + 64]))  # fmt: skip
        return rows

    def _full_requests(self) -> list[tuple[Any, ...]]:
        """`request_chunks` as (key, fingerprint, start, first, last) rows."""
        rows = []
        for chunk in self.request_chunks:
            fps = chunk[0]
            for j in range((len(chunk) - 1) // 3):
                key, start, last = chunk[1 + 3 * j : 4 + 3 * j]
                first = None if last is None else start
                rows.append((key, fps[32 * j : 32 * j + 32], start, first, last))
        return rows

    def _flush_request_chunks(self) -> None:
        """`request_chunks` on SQLite, a statement per chunk as `_flush_batch_chunks`: a
        request's fingerprint is cut from the chunk's, its first seq is its start (or NULL with
        its last when it wrote no entry)."""

        def row(j: int, p: int) -> str:
            return (
                f"(?{p}, {self.txn_id:d}, substr(?1, {32 * j + 1}, 32), ?{p + 1}, "
                f"CASE WHEN ?{p + 2} IS NULL THEN NULL ELSE ?{p + 1} END, ?{p + 2})"
            )

        into = "ledger_requests (key, txn, fingerprint, start_seq, first_seq, last_seq)"
        self._run_chunks(self.request_chunks, 1, 3, into, row)

    def _run_chunks(
        self,
        chunks: list[list[Any]],
        head: int,
        width: int,
        into: str,
        row: Callable[[int, int], str],
    ) -> None:
        """Each chunk (`head` shared items, then `width` per row) as one `INSERT INTO {into}`
        of one `row(j, p)` per row j, whose own parameters are numbered from p: the full chunks
        in one `executemany`."""

        def statement(n: int) -> str:
            rows = ", ".join(row(j, head + 1 + width * j) for j in range(n))
            return f"INSERT INTO {into} VALUES {rows}"

        full = head + width * q.CHUNK_ENTRIES
        cur = self.sql.cur
        whole = [c for c in chunks if len(c) == full]
        if whole:  # each statement text is prepared anew (it names the transaction)
            cur.executemany(statement(q.CHUNK_ENTRIES), whole)
        for chunk in chunks:
            if len(chunk) != full:
                cur.execute(statement((len(chunk) - head) // width), chunk)

    def _flush_batch_chunks(self) -> None:
        """`batch_chunks` on SQLite, a statement per chunk whose parameters are the chunk itself:
        what the entries share is written into the statement, each entry's seq is the chunk's
        first plus its place, and its link and hash are cut from the chunk's hashes by SQLite.
        Most of the cost of inserting a row is binding its parameters: five instead of thirteen.
        """
        assert self._batch_const is not None
        actor_id, kind, expires_at = self._batch_const
        code, txn_id = KIND_CODE[kind], self.txn_id
        expiry = "NULL" if expires_at is None else "'" + expires_at.replace("'", "''") + "'"

        def row(j: int, p: int) -> str:
            return (
                f"(?2 + {j}, {txn_id:d}, {code:d}, ?{p}, ?{p + 1}, ?{p + 2}, {actor_id:d}, "
                f"?{p + 3}, {expiry}, NULL, ?{p + 4}, substr(?1, {32 * j + 1}, 8), "
                f"substr(?1, {32 * j + 33}, 32))"
            )

        into = f"ledger_entries ({', '.join(q.ENTRY_COLS)})"
        self._run_chunks(self.batch_chunks, 2, 5, into, row)


class _RequestChunks:
    """A batch's requests in `Writer.request_chunks`' form, added one at a time (the Python
    loops; `_chainc` builds the same): per chunk, the fingerprints as one `bytes`, then key,
    first seq and last seq (None when the request wrote no entry) per request."""

    __slots__ = ("chunks", "cur", "fps")

    def __init__(self) -> None:
        self.chunks: list[list[Any]] = []
        self.cur: list[Any] = [None]
        self.fps: list[bytes] = []

    def add(self, key: str, fp: bytes, start: int, last: int) -> None:
        self.cur += (key, start, last if last >= start else None)
        self.fps.append(fp)
        if len(self.fps) == q.CHUNK_ENTRIES:
            self.close()

    def close(self) -> list[list[Any]]:
        """End the current chunk; return every chunk made."""
        if self.fps:
            self.cur[0] = b"".join(self.fps)
            self.chunks.append(self.cur)
            self.cur, self.fps = [None], []
        return self.chunks


class _Chunks:
    """Entries in `Writer.batch_chunks`' form, added one at a time (the Python loops; `_chainc`
    builds the same). A chunk is one list: the hash of the entry before it and the hashes of its
    own entries as one `bytes`, its first seq, then five fields per entry: account id,
    micro-TPP, order id, citation id, idempotency key."""

    __slots__ = ("chunks", "cur", "hashes")

    def __init__(self, head_hash: bytes, seq: int) -> None:
        self.chunks: list[list[Any]] = []
        self.hashes = [head_hash]
        self.cur: list[Any] = [None, seq + 1]

    def add(
        self, seq: int, account: int, m: int, order: str | None, citation: int, idem: str, h: bytes
    ) -> None:
        self.cur += (account, m, order, citation, idem)
        self.hashes.append(h)
        if len(self.hashes) > q.CHUNK_ENTRIES:
            self.close(seq)

    def close(self, seq: int) -> list[list[Any]]:
        """End the current chunk (after entry `seq`); return every chunk made."""
        if len(self.hashes) > 1:
            self.cur[0] = b"".join(self.hashes)
            self.chunks.append(self.cur)
            self.hashes = [self.hashes[-1]]
            self.cur = [None, seq + 1]
        return self.chunks
