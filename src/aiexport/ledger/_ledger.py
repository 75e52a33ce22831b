"""The quota ledger: append-only, hash-chained entries on SQLite or PostgreSQL.

Invariants (each enforced here and checked by `verify`):

1. Entries are only ever inserted. Corrections are new entries (release, void, attrition,
   adjustment) that point at what they correct.
2. Every balance, hold and the chain head are a pure function of the entries.
3. After every transaction, every account a draw touched is within the limit (and share) that
   draw carried; a transaction that would break one records nothing.
4. An idempotency key is used once: a replay returns the original receipt and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import gc
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, overload

from sqlalchemy import Connection, select
from sqlalchemy.engine import make_url

from aiexport.errors import Conflict, InputError, NotFound, QuotaExceeded
from aiexport.ledger import _registry as reg
from aiexport.ledger import _tables as t
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.ledger._checkpoint import Checkpointer
from aiexport.ledger._checkpoint import defer as defer_checkpoint
from aiexport.ledger._checkpoint import install as install_checkpoint_restore
from aiexport.ledger._combine import Combiner, OneCombiner, combinable
from aiexport.ledger._db import Database, default_db_url
from aiexport.ledger._entries import (
    GENESIS,
    KIND_CODE,
    Balance,
    Entry,
    EntryRow,
    Receipt,
    check_text,
    entry_row,
    fingerprint,
    iso,
    now_utc,
    parse_iso,
)
from aiexport.ledger._migrations import migrate
from aiexport.ledger._pgdraw import CALL
from aiexport.ledger._sequencer import SequencerClient
from aiexport.ledger._sql import REQUEST_EXISTS, USED, Sql
from aiexport.ledger._views import live_used_micro
from aiexport.ledger._writer import (
    CapReached,
    RequestRow,
    Writer,
    batch_texts,
    draws_fingerprint,
    one_fingerprint,
    refusal,
    share_refusal,
)
from aiexport.rules.determination import Draw
from aiexport.rules.quota import LicenseInfo, VeuInfo

DEFAULT_HOLD = dt.timedelta(minutes=15)
_HOT_SECONDS = 5.0
_NO_TIME = dt.timedelta(0)
_KIND_TEXT = {kind: str(code) for kind, code in KIND_CODE.items()}
_US = "\x1f"  # separates list items in `ledger_draw_packed`'s text arguments
_BIG_BATCH = 5_000  # requests: from here a batch's WAL is checkpointed after it, in a thread


@dataclass(frozen=True, slots=True)
class DrawRequest:
    """One order's draws, under its own idempotency key, for `Ledger.record_batch`."""

    key: str
    draws: tuple[Draw, ...]
    order_id: str | None = None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (as it was before, after)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class BatchReceipts(Sequence[Receipt]):
    """`record_batch`'s receipts, one per request in order, each made when it is read.

    A batch of 100,000 orders would otherwise spend a tenth of its time building receipts that
    the caller mostly counts or never reads. Equal to a list of the same receipts."""

    __slots__ = ("_done", "_txn", "_when")

    def __init__(
        self, done: list[RequestRow | tuple[str, int, int]], txn: str, when: dt.datetime
    ) -> None:
        self._done, self._txn, self._when = done, txn, when

    def __len__(self) -> int:
        return len(self._done)

    @overload
    def __getitem__(self, i: int) -> Receipt: ...
    @overload
    def __getitem__(self, i: slice) -> list[Receipt]: ...
    def __getitem__(self, i: int | slice) -> Receipt | list[Receipt]:
        if isinstance(i, slice):
            return [self._make(d) for d in self._done[i]]
        return self._make(self._done[i])

    def __iter__(self) -> Iterator[Receipt]:
        return map(self._make, self._done)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BatchReceipts({list(self)!r})"

    def _make(self, d: RequestRow | tuple[str, int, int]) -> Receipt:
        if isinstance(d, RequestRow):
            return _receipt(d, True)
        key, first, last = d
        return Receipt(key, self._txn, tuple(range(first, last + 1)), self._when)


def _accounts(draws: Sequence[Draw]) -> list[str]:
    return [d.account for d in draws] + [d.share_of for d in draws if d.share_of]


def _receipt(row: Any, replayed: bool) -> Receipt:
    seqs = () if row.first_seq is None else tuple(range(row.first_seq, row.last_seq + 1))
    return Receipt(row.key, row.txn, seqs, parse_iso(row.created_at), replayed)


def _one_params(
    kind: str,
    key: str,
    fp: bytes,
    actor: str,
    order_id: str | None,
    txn: str,
    created: str,
    expires: str | None,
    account: str,
    amount: str,
    limit: str | None,
    citation: str,
    ids: tuple[int | None, ...],
) -> tuple[str | bytes | None, ...]:
    """`ledger_draw_one`'s arguments for one draw on `account` of `amount` micro-TPP (`limit`:
    its cap, in micro-TPP; None: none); `fp` the request's fingerprint (`draws_fingerprint`'s
    digest, as bytes); `ids` those of the actor, the account and the citation (None: not
    known, which only `ledger_draw_set_queued` takes: the sequencer's call, or `draw_named`).
    The last is the entry's hash preimage after its position, as `ledger_draw_packed` builds
    `tails[1]`."""
    tail = _US.join(("", txn, kind, account, amount, order_id or "", actor, citation, created,
                     expires or "", "", f"{key}#0"))  # fmt: skip
    a, b, c = ids
    return (key, fp, order_id, txn, created, expires, _KIND_TEXT[kind], account, amount, limit,
            citation, None if a is None else str(a), None if b is None else str(b),
            None if c is None else str(c), tail)  # fmt: skip


class Ledger:
    """A quota ledger on one database. Also a `QuotaView` for the decision engine."""

    # PostgreSQL: reservations and commitments through `ledger_draw_packed` (see `_pgdraw`),
    # and those of one draw with known names through `ledger_draw_one`.
    server_draws = True
    one_draws = True

    def __init__(self, url: str | None = None) -> None:
        self.db = Database(url or default_db_url())
        self._refused: dict[str, float] = {}
        self._checkpointer: Checkpointer | None = None
        # PostgreSQL: concurrent threads' draws combined into one call (`_combine`).
        self.combiner = Combiner(self.db)
        self.one_combiner = OneCombiner(self.db)
        # PostgreSQL: one-draw requests through `aiexport ledger serve` when it runs here.
        self.sequencer = None if self.db.is_sqlite else SequencerClient(self.db.url, self.db)
        if self.sequencer is not None:  # started when this process keeps meeting other writers
            self.db.contention = self.sequencer.contended
        path = make_url(self.db.url).database if self.db.is_sqlite else None
        if path and path != ":memory:":
            self._checkpointer = Checkpointer(path)
            install_checkpoint_restore(self.db.engine)
        migrate(self.db)

    @property
    def url(self) -> str:
        return self.db.url

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.join()
        if self.sequencer is not None:
            self.sequencer.close()
        self.db.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- QuotaView -----------------------------------------------------------------------------

    def used(self, account: str, now: dt.datetime | None = None) -> Decimal:
        """TPP drawn from `account`: committed plus holds still live at `now` (default: now)."""
        with self.db.read() as conn:
            return from_micro(live_used_micro(conn, account, iso(now or now_utc())))

    def license(self, license_id: str) -> LicenseInfo | None:
        with self.db.read() as conn:
            return reg.get_license(conn, license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        with self.db.read() as conn:
            return reg.get_veu(conn, veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        with self.db.read() as conn:
            return reg.veus_for(conn, consignee)

    # -- reading -------------------------------------------------------------------------------

    def balance(self, account: str) -> Balance:
        """The state of one account; `NotFound` if nothing was ever drawn on it."""
        found = self.balances(account=account)
        if not found:
            raise NotFound(f"no entries for account {account!r}; see `aiexport ledger balance`")
        return found[0]

    def balances(self, *, prefix: str | None = None, account: str | None = None) -> list[Balance]:
        b = t.balances.c
        q = select(t.balances).order_by(b.account)
        if account is not None:
            q = q.where(b.account == account)
        elif prefix:
            q = q.where(b.account.startswith(prefix, autoescape=True))
        with self.db.read() as conn:
            return [
                Balance(
                    r.account,
                    from_micro(r.committed),
                    from_micro(r.reserved),
                    None if r.limit_micro is None else from_micro(r.limit_micro),
                    r.citation,
                )
                for r in conn.execute(q)
            ]

    def history(self, account: str) -> list[Entry]:
        """The entries of one account, in chain order (a scan: entries have no account index)."""
        e = t.entries.c
        with self.db.read() as conn:
            found = conn.scalar(select(t.names.c.id).where(t.names.c.name == account))
            if found is None:
                return []
            q = t.entry_select(with_prev=True).where(e.account == found).order_by(e.seq)
            return [
                Entry.from_row(entry_row(r, GENESIS if r.prev is None else bytes(r.prev).hex()))
                for r in conn.execute(q)
            ]

    def entries(self, batch: int = 10_000) -> Iterator[Entry]:
        """Every entry in chain order, read in pages."""
        for row in self.iter_rows(batch):
            yield Entry.from_row(row)

    def iter_rows(self, batch: int = 10_000) -> Iterator[EntryRow]:
        """Every entry in chain order with its texts, each with the hash of the one read before
        it as `prev_hash` (the chain as stored; `verify` checks it)."""
        e = t.entries.c
        last, prev = 0, GENESIS
        while True:
            with self.db.read() as conn:
                q = t.entry_select().where(e.seq > last).order_by(e.seq).limit(batch)
                rows = conn.execute(q).all()
            if not rows:
                return
            for r in rows:
                row = entry_row(r, prev)
                prev = row.hash
                yield row
            last = rows[-1].seq

    def head(self) -> tuple[int, str]:
        """The chain head: the last entry's position and hash. Publish it to anchor the chain."""
        with self.db.read() as conn:
            row = conn.execute(select(t.chain_head.c.seq, t.chain_head.c.hash)).one()
            return int(row.seq), str(row.hash)

    def licenses(self) -> list[LicenseInfo]:
        with self.db.read() as conn:
            return reg.list_licenses(conn)

    def veus(self) -> list[VeuInfo]:
        with self.db.read() as conn:
            return reg.list_veus(conn)

    # -- writing -------------------------------------------------------------------------------

    def transact(
        self,
        key: str,
        fp: str,
        body: Callable[[Writer], Sequence[int]],
        *,
        now: dt.datetime | None = None,
        accounts: Sequence[str] = (),
        raw: bool = False,
    ) -> Receipt:
        """Run `body` in one locked transaction under idempotency `key`: every write's core.

        `raw`: `body` uses only the writer's DB-API methods (see `Database.write`)."""
        if not key:
            raise InputError("an idempotency key is required for every ledger write")
        try:
            return self._transact(key, fp, body, now, accounts, raw)
        except CapReached as exc:
            self._refused[exc.account] = time.monotonic()
            raise

    def _refuse_early(
        self, draws: Sequence[Draw], key: str, order_id: str | None, now: dt.datetime | None
    ) -> None:
        """Refuse without the write lock a draw on an account recently found full.

        When a cap is exhausted, many writers keep asking; each would take the write lock only
        to be refused. A refusal writes nothing, so deciding it on a consistent snapshot is
        sound: the request is refused as of that snapshot, when it would indeed have overdrawn.
        Only accounts refused in the last few seconds are checked, so the common path pays
        nothing. A replayed key is never refused here.
        """
        if not self._refused:
            return
        recent = time.monotonic() - _HOT_SECONDS
        if not any(self._refused.get(d.account, 0.0) > recent for d in draws):
            return
        when = iso(now or now_utc())
        capped = [d for d in draws if d.limit is not None]
        with self.db.read() as conn:
            sql = Sql(conn.connection.driver_connection, self.db.dialect)
            rows = sql.first_rows(
                [(REQUEST_EXISTS, (key,))] + [(USED, (when, d.account)) for d in capped]
            )
        if rows[0] is not None:
            return
        for d, row in zip(capped, rows[1:], strict=True):
            amount, limit = to_micro(d.amount), to_micro(d.limit)  # type: ignore[arg-type]
            used = (0 if row is None else int(row[0])) + amount
            if used > limit:
                self.db.flush_wal()  # refuse only on state that is durable
                raise refusal(d, used, amount, limit, order_id)

    def _transact(
        self,
        key: str,
        fp: str,
        body: Callable[[Writer], Sequence[int]],
        now: dt.datetime | None,
        accounts: Sequence[str],
        raw: bool = False,
    ) -> Receipt:

        def work(conn: Connection) -> Receipt:
            w = Writer(conn, now or now_utc(), self.db.dialect, key, accounts, self.db.names)
            prior = w.prior
            if prior is not None:
                if prior.fingerprint != bytes.fromhex(fp):
                    raise Conflict(
                        f"idempotency key {key!r} was already used for a different request; "
                        "use a new key for a new request"
                    )
                return _receipt(prior, True)
            w.sweep_expired()
            start = w.seq + 1
            seqs = list(body(w))
            w.record_request(key, fp, seqs, start)
            w.flush()
            return Receipt(key, w.txn, tuple(seqs), w.now)

        return self.db.write(work, lock=False, raw=raw)

    def reserve(
        self,
        draws: Sequence[Draw],
        *,
        key: str,
        actor: str,
        order_id: str | None = None,
        hold: dt.timedelta = DEFAULT_HOLD,
        now: dt.datetime | None = None,
    ) -> Receipt:
        """Hold TPP on every account in `draws` at once, until `commit_reservation` or expiry."""
        if hold <= _NO_TIME:
            raise InputError("a reservation needs a positive hold period")
        when = now or now_utc()
        return self._draw("reserve", draws, key, actor, order_id, when, iso(when + hold), now)

    def commit(
        self,
        draws: Sequence[Draw],
        *,
        key: str,
        actor: str,
        order_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> Receipt:
        """Draw on every account in `draws` at once, with no hold first."""
        return self._draw("commit", draws, key, actor, order_id, now or now_utc(), None, now)

    def _draw(
        self,
        kind: str,
        draws: Sequence[Draw],
        key: str,
        actor: str,
        order_id: str | None,
        when: dt.datetime,
        expires: str | None,
        now: dt.datetime | None,
    ) -> Receipt:
        """`reserve` (with `expires`) or `commit`: in the server's function where it can, else
        in a transaction of `apply_draws`. `now`: the caller's, None for the clock."""

        def body(w: Writer) -> list[int]:
            return w.apply_draws(
                kind, draws, key=key, actor=actor, order_id=order_id, expires_at=expires
            )

        self._refuse_early(draws, key, order_id, now)
        fp = None
        if (
            len(draws) == 1
            and draws[0].share_of is None
            and self.one_draws
            and self.server_draws
            and not self.db.is_sqlite
        ):
            done = self._draw_one(kind, draws[0], key, actor, order_id, when, expires)
        else:
            fp = draws_fingerprint(kind, draws, order_id)
            done = self._draw_in_server(kind, draws, key, actor, order_id, when, expires, fp)
        if done is not None:
            return done
        fp = fp or draws_fingerprint(kind, draws, order_id)
        return self.transact(key, fp, body, now=when, accounts=_accounts(draws), raw=True)

    def _draw_one(
        self,
        kind: str,
        d: Draw,
        key: str,
        actor: str,
        order_id: str | None,
        when: dt.datetime,
        expires: str | None,
    ) -> Receipt | None:
        """PostgreSQL, one draw with no share cap (the common request): `ledger_draw_one`'s
        arguments, built once - the fingerprint hashed once, as bytes (`one_fingerprint`), each
        amount converted once - sent through the sequencer or the thread combiner. None when the
        general path must answer (a replayed key, lapsed holds first).

        The client's own work here, around its round trip, costs about 110 us of CPU per
        reservation in place against about 40 us in a tight loop (the interpreter's caches are
        cold after each wait for the server): the less code runs here, the better
        (`bench/ledger.py`, 1 writer)."""
        if not key:
            raise InputError("an idempotency key is required for every ledger write")
        account, citation = d.account, d.citation
        check_text(key, actor, order_id, account, citation)
        amount = to_micro(d.amount)
        if amount <= 0:
            raise InputError(f"draw on {account} must be positive, got {d.amount} TPP")
        limit = None if d.limit is None else str(to_micro(d.limit))
        fp = one_fingerprint(kind, d, amount, limit, order_id)
        txn = uuid.uuid4().hex
        known = self.db.names.ids
        ids = (known.get(actor), known.get(account), known.get(citation))
        one = _one_params(kind, key, fp, actor, order_id, txn, iso(when), expires, account,
                          str(amount), limit, citation, ids)  # fmt: skip
        # Through the sequencer, with other processes' requests, when one is serving; else with
        # this process's other threads' (`OneCombiner`), or by itself. Each call gives the names
        # this process has no id for (another process's, or new ones) theirs, and returns them.
        row = self.sequencer.call(one) if self.sequencer else None
        if row is None:
            row = self.one_combiner.submit(one)
        return self._answer(row, key, txn, when, (d,), (amount,), order_id,
                            (actor, account, citation))  # fmt: skip

    def _draw_in_server(
        self,
        kind: str,
        draws: Sequence[Draw],
        key: str,
        actor: str,
        order_id: str | None,
        when: dt.datetime,
        expires: str | None,
        fp: str,
    ) -> Receipt | None:
        """PostgreSQL: `apply_draws` as one call of `ledger_draw_packed`, for the requests
        `_draw_one` does not take (several draws, a share cap); None when the general path must
        answer (not PostgreSQL, a replayed key, lapsed holds to sweep first).

        Lists go as U+001F-separated text (`_pgdraw`), with the `ledger_names` ids this process
        knows; the ids the call returns are committed once it returns, and are remembered."""
        if self.db.is_sqlite or not self.server_draws:
            return None
        if not key:
            raise InputError("an idempotency key is required for every ledger write")
        check_text(key, actor, order_id)
        amounts = []
        for d in draws:
            check_text(d.account, d.citation)
            m = to_micro(d.amount)
            if m <= 0:
                raise InputError(f"draw on {d.account} must be positive, got {d.amount} TPP")
            amounts.append(m)
        known = self.db.names.ids
        txn = uuid.uuid4().hex
        created = iso(when)
        accounts = [d.account for d in draws]
        citations = [d.citation for d in draws]
        texts = [actor, *accounts, *citations]
        shared = any(d.share_of is not None for d in draws)
        params = (
            kind,
            key,
            bytes.fromhex(fp),
            actor,
            order_id,
            txn,
            created,
            expires,
            _US.join(accounts),
            _US.join(map(str, amounts)),
            _US.join("" if d.limit is None else str(to_micro(d.limit)) for d in draws),
            _US.join(citations),
            _US.join("" if d.max_share is None else str(d.max_share) for d in draws)
            if shared
            else None,
            _US.join(d.share_of or "" for d in draws) if shared else None,
            _US.join(str(known.get(x, "")) for x in texts),
        )
        # With other threads' draws, when some are waiting (`_combine`).
        row = self.combiner.submit(params) if combinable(params) else self.db.call(CALL, params)
        return self._answer(row, key, txn, when, draws, amounts, order_id, texts)

    def _answer(
        self,
        row: tuple[str | None, ...],
        key: str,
        txn: str,
        when: dt.datetime,
        draws: Sequence[Draw],
        amounts: Sequence[int],
        order_id: str | None,
        texts: Sequence[str],
    ) -> Receipt | None:
        """The receipt for a server draw's answer `row`, or its refusal raised; None when the
        general path must answer. The ids it returns for `texts` are remembered."""
        status, first, last, idx, used, lim, ids = row
        if ids is not None:
            self.db.names.ids.update(zip(texts, map(int, ids.split(_US)), strict=True))
        if status == "ok":
            seqs = () if first is None or last is None else tuple(range(int(first), int(last) + 1))
            return Receipt(key, txn, seqs, when)
        if status not in ("limit", "share"):
            return None
        assert idx is not None and used is not None and lim is not None
        i = int(idx)
        d = draws[i]
        if status == "limit":
            exc = refusal(d, int(used), amounts[i], int(lim), order_id)
        else:
            exc = share_refusal(d, order_id)
        self._refused[exc.account] = time.monotonic()
        raise exc

    def commit_reservation(
        self, reservation: str, *, key: str, actor: str, now: dt.datetime | None = None
    ) -> Receipt:
        """Turn the live holds of the reservation made under key `reservation` into commitments."""
        return self._settle(reservation, "commit", key=key, actor=actor, now=now)

    def release(
        self, reservation: str, *, key: str, actor: str, now: dt.datetime | None = None
    ) -> Receipt:
        """End the live holds of the reservation made under key `reservation`."""
        return self._settle(reservation, "release", key=key, actor=actor, now=now)

    def _settle(
        self, reservation: str, kind: str, *, key: str, actor: str, now: dt.datetime | None
    ) -> Receipt:
        def body(w: Writer) -> list[int]:
            req = w.find_request(reservation)
            if req is None:
                raise NotFound(f"no reservation under key {reservation!r}")
            h = t.holds.c
            rows: list[Any] = []
            if req.first_seq is not None:
                q = select(t.holds).where(h.seq.between(req.first_seq, req.last_seq))
                swept = {s for (s,) in w.closed_holds}  # lapsed, released by this transaction
                rows = [r for r in w.conn.execute(q.order_by(h.seq)) if r.seq not in swept]
            if not rows:
                raise Conflict(
                    f"reservation {reservation!r} has no live holds: it expired, or was already "
                    "committed or released; reserve again"
                )
            seqs = []
            for i, r in enumerate(rows):
                src = w.conn.execute(t.entry_select().where(t.entries.c.seq == r.seq)).one()
                seqs.append(
                    w.append(
                        kind,
                        r.account,
                        r.amount,
                        actor=actor,
                        citation=src.citation,
                        key=f"{key}#{i}",
                        order_id=src.order_id,
                        ref_seq=r.seq,
                    )
                )
                w.close_hold(r.seq)
            return seqs

        return self.transact(key, fingerprint((kind, reservation)), body, now=now)

    def void(
        self, commitment: str, *, key: str, actor: str, reason: str, now: dt.datetime | None = None
    ) -> Receipt:
        """Reverse every commitment recorded under key `commitment`."""

        def body(w: Writer) -> list[int]:
            req = w.find_request(commitment)
            if req is None or req.first_seq is None:
                raise NotFound(f"no commitment under key {commitment!r}")
            e = t.entries.c
            rows = w.conn.execute(
                t.entry_select()
                .where(e.seq.between(req.first_seq, req.last_seq), e.kind == KIND_CODE["commit"])
                .order_by(e.seq)
            ).all()
            done = set(
                w.conn.scalars(
                    select(e.ref_seq).where(
                        e.kind == KIND_CODE["void"], e.ref_seq.in_([r.seq for r in rows])
                    )
                )
            )
            if not rows or done:
                raise Conflict(f"{commitment!r} has no commitments left to void")
            return [
                w.append(
                    "void",
                    r.account,
                    r.amount,
                    actor=actor,
                    citation=reason,
                    key=f"{key}#{i}",
                    order_id=r.order_id,
                    ref_seq=r.seq,
                )
                for i, r in enumerate(rows)
            ]

        return self.transact(key, fingerprint(("void", commitment, reason)), body, now=now)

    def attrition(
        self,
        account: str,
        amount: Decimal,
        *,
        key: str,
        actor: str,
        citation: str,
        order_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> Receipt:
        """Stop counting `amount` TPP of chips lost, damaged, failed, relocated or resold."""
        micro = to_micro(amount)
        if micro <= 0:
            raise InputError("attrition must be a positive amount of TPP")

        def body(w: Writer) -> list[int]:
            w.load([account])
            c = int(w.bal[account][0])
            if micro > c:
                raise Conflict(
                    f"attrition of {amount} TPP exceeds the {from_micro(c)} TPP committed on "
                    f"{account}"
                )
            return [
                w.append(
                    "attrition",
                    account,
                    micro,
                    actor=actor,
                    citation=citation,
                    key=f"{key}#0",
                    order_id=order_id,
                )
            ]

        fp = fingerprint(("attrition", account, micro, citation, order_id))
        return self.transact(key, fp, body, now=now)

    def adjust(
        self,
        account: str,
        amount: Decimal,
        *,
        key: str,
        actor: str,
        citation: str,
        now: dt.datetime | None = None,
    ) -> Receipt:
        """Record a signed correction by an operator; `citation` says why."""
        micro = to_micro(amount)
        if micro == 0:
            raise InputError("an adjustment of zero changes nothing; give a non-zero amount")

        def body(w: Writer) -> list[int]:
            return [
                w.append(
                    "adjustment", account, micro, actor=actor, citation=citation, key=f"{key}#0"
                )
            ]

        return self.transact(key, fingerprint(("adjustment", account, micro, citation)), body)

    def record_batch(
        self,
        requests: Sequence[DrawRequest],
        *,
        actor: str,
        kind: str = "commit",
        now: dt.datetime | None = None,
    ) -> BatchReceipts:
        """Record many orders' draws in ONE transaction: all of them, or none.

        Each request keeps its own idempotency key: requests already recorded are returned as
        replays and not written again. Caps are checked after each request, in order.
        """
        if kind not in ("commit", "reserve"):
            raise InputError("a batch records commitments or reservations")

        keys, accounts, citations, shared = batch_texts(requests)
        # SQLite: a large batch's WAL is checkpointed after it, in a thread (see `_checkpoint`).
        checkpointer = self._checkpointer if len(keys) >= _BIG_BATCH else None

        def work(conn: Connection, find: bool) -> BatchReceipts:
            if checkpointer is not None:
                defer_checkpoint(conn)
            w = Writer(conn, now or now_utc(), self.db.dialect, names=self.db.names)
            prior = w.find_requests(keys) if find else {}
            w.sweep_expired()
            w.load(accounts | shared)
            expires = iso(w.now + DEFAULT_HOLD) if kind == "reserve" else None
            done = w.draw_batch(kind, requests, actor, expires, prior, accounts | citations)
            w.flush()
            return BatchReceipts(done, w.txn, w.now)

        # Every object the batch makes lives until it commits: a collection would find nothing.
        with _gc_paused():
            # First as if no key were recorded yet (the common case: looking 100,000 keys up
            # costs a tenth of the batch). A recorded key then fails the requests' insert (their
            # key is the primary key) or, its draws counted twice, a cap: nothing was written,
            # and the batch is decided again with the recorded keys read first, for the answer
            # it deserves (replays, or the refusal or conflict that stands).
            again: tuple[type[Exception], ...] = (
                QuotaExceeded,
                Conflict,
                *self.db.duplicate_key_errors(),
            )
            # A deferred checkpoint needs a pooled connection: the setting is restored when it
            # goes back to the pool, and the kept connection never does.
            raw = checkpointer is None
            try:
                out = self.db.write(lambda conn: work(conn, False), lock=False, raw=raw)
            except again:
                out = self.db.write(lambda conn: work(conn, True), lock=False, raw=raw)
        if checkpointer is not None:
            checkpointer.start()
        return out

    # -- registries ----------------------------------------------------------------------------

    def add_license(
        self,
        info: LicenseInfo,
        *,
        actor: str,
        allocation_limit: Decimal | None,
        citation: str,
        allocation_country: str | None = None,
        counts: bool = True,
        now: dt.datetime | None = None,
    ) -> Receipt:
        """Register a granted license and count its TPP against `allocation/<country>`.

        `allocation_country` is the country whose allocation the license counts against (the
        destination unless the rule set aliases it); `allocation_limit` is that allocation in
        force (from the rule set), or None when the license counts without being capped.
        `counts=False` registers a license that no allocation concerns (Tier 1, D:5).
        Registering the same license again changes nothing and returns the first receipt.
        """
        row = reg.license_row(info)
        country = (allocation_country or row["destination"]).upper()
        draw = Draw(f"allocation/{country}", info.tpp, allocation_limit, citation)
        key = f"license:{info.license_id}"

        def body(w: Writer) -> list[int]:
            seqs: list[int] = []
            if counts:
                seqs = w.apply_draws(
                    "commit", [draw], key=key, actor=actor, order_id=f"license:{info.license_id}"
                )
            extra = {
                "actor": actor,
                "created_at": w.created_at,
                "entry_seq": seqs[0] if seqs else None,
            }
            reg.insert_once(w.conn, t.licenses, "license_id", row, extra)
            return seqs

        fp = fingerprint(("license", sorted(row.items()), counts, country))
        return self.transact(key, fp, body, now=now)

    def add_veu(self, info: VeuInfo, *, actor: str, now: dt.datetime | None = None) -> bool:
        """Register a Data Center VEU; return False when the same record was already there."""
        row = reg.veu_row(info)
        created = iso(now or now_utc())

        def work(conn: Connection) -> bool:
            return reg.insert_once(
                conn, t.veus, "veu_id", row, {"actor": actor, "created_at": created}
            )

        return self.db.write(work)
