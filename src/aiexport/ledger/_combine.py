"""PostgreSQL: concurrent requests' draws combined into one call (flat combining).

Every ledger write holds one lock (`_sql.LOCK`) while the server appends it, so concurrent
writers take turns; what each turn costs is mostly per statement and per transaction (executor
start-up, plan checks, commit, the WAL barrier), not per row. Combining pays those once for
many requests: a thread with a draw to make queues it; one thread at a time has the turn
(`_TurnTaking`) and sends every queued draw - its own and those of the threads that queued
while the call before ran - in one call of `ledger_draw_batch_durable` (`_pgdraw`), wakes
each of their threads with its answer, and hands the turn to the first draw queued since.
Alone, a request goes as before, by itself through `ledger_draw_durable`.

Each request's answer is what `ledger_draw_durable` would have given it on its own, in the
order the batch appended them; it is given only once the batch is durable. Should the batch
call fail, every request of it is sent again by itself (its idempotency key makes that safe:
a request the failed call did commit comes back `replay`).

Threads that share a `Ledger` combine their draws; separate processes combine theirs through
the sequencer (`_sequencer`, `aiexport ledger serve`) when one runs, else meet only in the
database. A request of one draw (the common shape) has a combiner of its own, `OneCombiner`:
its batch call is the sequencer's, `ledger_draw_set_queued`, which commits synchronously and
costs less per request than `ledger_draw_batch_durable`; alone, such a request goes by itself
through `ledger_draw_one`. Its batches of several tell the process's sequencer client that
other threads write at the same time, as a lone call that finds the lock taken tells it of other
processes: once they mostly do, it starts a sequencer (`SequencerClient.contended`), through
which the threads' requests then go. That is faster than combining them here: the combining
then runs in a process of its own, not taking turns with the threads for this one's interpreter
(8 threads, `bench/ledger.py`, two runs: 60 % and 58 % of the floor so, 46 % and 42 % combined
here alone).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence

from aiexport.ledger._db import Database
from aiexport.ledger._pgdraw import BATCH_CALL, CALL, draw_named, draw_one, request_fields
from aiexport.ledger._sequencer import IDS, KEY, call_batch

Params = tuple[str | bytes | None, ...]
Row = tuple[str | None, ...]

_RS = "\x1e"  # between requests
_US = "\x1f"  # between fields of one answer

# The most draws one batch call carries: enough to amortise a call, small enough that the
# lock is never held for long.
MAX_BATCH = 256


class _Slot:
    """A queued request; `done` is held until the request is answered, marked for retry, or
    its thread is handed the turn to send the queue (`_TurnTaking`)."""

    __slots__ = ("done", "params", "retry", "row")

    def __init__(self, params: Params) -> None:
        self.params = params
        self.row: Row | None = None
        self.retry = False
        self.done = threading.Lock()
        self.done.acquire()


class _TurnTaking(ABC):
    """Flat combining: one thread at a time has the turn, and sends every request queued - its
    own and those of the threads that came while the call before ran - as one call (`_run`),
    then wakes each of their threads with its answer and hands the turn to the first request
    queued since, if any. Alone, a request goes by itself (`_alone`).

    A thread waits on its own request (a lock released once): the answered ones return at
    once. Taking turns on one shared lock to find their answers, as this first did, cost about
    a millisecond a call in hand-offs with 8 threads, and the batches' calls ran at half the
    sequencer's rate (`bench/ledger.py`, 8 threads).
    """

    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[_Slot] = []
        self._queued = threading.Lock()
        self._turn_taken = False  # a thread is sending the queue, or about to
        self._pid = os.getpid()
        self.calls = 0  # (calls, requests) made, for the benchmark and the tests
        self.requests = 0

    def submit(self, params: Params) -> Row:
        """The answer to one request, durable."""
        if os.getpid() != self._pid:  # forked: the parent's threads and locks are not ours
            self.__init__(self.db, self.max_batch)  # type: ignore[misc]
        with self._queued:
            alone = not self._turn_taken
            self._turn_taken = True
            if not alone:
                slot = _Slot(params)
                self._queue.append(slot)
        if alone:  # no thread sending, none queued: by itself, with no slot to wait on
            self.calls += 1
            self.requests += 1
            try:
                return self._alone(params)
            finally:
                self._pass_turn()
        slot.done.acquire()  # answered, marked for retry, or handed the turn
        if slot.row is None and not slot.retry:  # handed the turn: this thread sends the queue
            try:
                while slot.row is None and not slot.retry:
                    with self._queued:
                        batch = self._queue[: self.max_batch]
                        del self._queue[: self.max_batch]
                    if batch == [slot]:  # alone: by itself, its errors its own
                        self.calls += 1
                        self.requests += 1
                        return self._alone(params)
                    self._run(batch, slot)
            finally:
                self._pass_turn()
        if slot.row is not None:
            return slot.row
        return self._alone(params)

    def _pass_turn(self) -> None:
        """Hand the turn to the first request queued, whose thread then sends the queue."""
        with self._queued:
            if not self._queue:
                self._turn_taken = False
                return
            first = self._queue[0]
        first.done.release()

    @abstractmethod
    def _alone(self, params: Params) -> Row:
        """The answer to a request sent by itself."""

    @abstractmethod
    def _run(self, batch: list[_Slot], mine: _Slot) -> None:
        """Answer the requests of `batch` (or queue some again, in front) and wake their
        threads, but `mine`'s, the caller's own."""

    @staticmethod
    def _wake(batch: list[_Slot], mine: _Slot) -> None:
        """Wake the threads of `batch`'s requests that are answered or marked for retry."""
        for s in batch:
            if s is not mine and (s.row is not None or s.retry):
                s.done.release()


def combinable(params: Params) -> bool:
    """Whether `ledger_draw_batch` takes this request: no share cap, at least one draw, no
    account drawn twice (the others go to `ledger_draw_durable` by themselves)."""
    accounts = params[8]
    if params[12] is not None or params[13] is not None or not isinstance(accounts, str):
        return False
    if not accounts:  # no draw at all
        return False
    names = accounts.split(_US)
    return len(set(names)) == len(names) and isinstance(params[14], str)


def batch_params(batch: Sequence[Params]) -> tuple[str, ...]:
    """`ledger_draw_batch`'s arguments: field k of every request, U+001E-separated (NULL as
    empty, the fingerprint as hex). The share fields (12, 13) are NULL in a combinable request
    and are not sent."""
    cols: list[list[str]] = [[] for _ in range(13)]
    for p in batch:
        for k in range(12):
            v = p[k]
            cols[k].append("" if v is None else v.hex() if isinstance(v, bytes) else v)
        v = p[14]
        assert isinstance(v, str)
        cols[12].append(v)
    return tuple(_RS.join(c) for c in cols)


def parse_batch(result: str | None, size: int) -> list[Row]:
    """`ledger_draw_batch`'s answer as `ledger_draw_durable`'s row per request."""
    if result is None:
        raise RuntimeError("ledger_draw_batch returned no answer")
    parts = result.split(_RS)
    if len(parts) != size:
        raise RuntimeError(f"ledger_draw_batch answered {len(parts)} requests of {size}")
    rows: list[Row] = []
    for part in parts:
        fields = part.split(_US, 6)  # the last, the ids, is U+001F-separated itself
        fields += [""] * (7 - len(fields))
        rows.append(tuple(f or None for f in fields))
    return rows


class Combiner(_TurnTaking):
    """Draws of many threads combined into batch calls of `ledger_draw_batch_durable` (see the
    module's docstring); `submit` returns `ledger_draw_durable`'s row for one request, `params`
    as `CALL` takes them."""

    def _alone(self, params: Params) -> Row:
        return self.db.call(CALL, params)

    def _run(self, batch: list[_Slot], mine: _Slot) -> None:
        """Answer every request of `batch`; those it cannot answer (the call failed, or was
        interrupted) are marked for their own threads to send again by themselves."""
        self.calls += 1
        self.requests += len(batch)
        try:
            if len(batch) == 1:
                batch[0].row = self.db.call(CALL, batch[0].params)
                return
            (result,) = self.db.call(BATCH_CALL, batch_params([s.params for s in batch]))
            for s, row in zip(batch, parse_batch(result, len(batch)), strict=True):
                s.row = row
        except Exception:  # each request is then sent again by itself (`submit`)
            pass
        finally:
            for s in batch:
                if s.row is None:
                    s.retry = True
            self._wake(batch, mine)


class OneCombiner(_TurnTaking):
    """One-draw requests (`ledger_draw_one`'s arguments) of many threads combined into calls of
    `ledger_draw_set_queued`, as the sequencer combines those of many processes
    (`_sequencer.batch_statement`): the call's commit waits for its flush. Alone, a request goes
    by itself (`draw_one`, or `draw_named` for names this process has no id for). `submit`
    returns `ledger_draw_one`'s row without its `durable` column.

    Each answer is the one `ledger_draw_one` would have given the request on its own, in the
    order of the batch, given once durable (the WAL barrier first when the call wrote
    nothing). A request whose key an earlier one of the batch has goes in the next call. Should
    the call fail, each of its requests is sent again by itself (its key makes that safe).
    """

    def _alone(self, params: Params) -> Row:
        actor, account, citation = IDS
        if (
            params[actor] is not None
            and params[account] is not None
            and params[citation] is not None
        ):
            return draw_one(self.db, params)
        return draw_named(self.db, params)

    def _run(self, batch: list[_Slot], mine: _Slot) -> None:
        """Answer the requests of `batch` on distinct keys and wake their threads (`mine`, the
        caller's, is left to it); a repeated key, and a request the call defers, are queued
        again, in front. Those it cannot answer (the call failed) are marked for their own
        threads to send by themselves."""
        seen: set[str] = set()
        now: list[tuple[_Slot, list[str]]] = []
        again: list[_Slot] = []
        for s in batch:
            fields = request_fields(s.params)
            if fields[KEY] in seen:
                again.append(s)
            else:
                seen.add(fields[KEY])
                now.append((s, fields))
        self.calls += 1
        self.requests += len(now)
        if self.db.contention is not None:  # other threads writing at once: a sequencer helps
            self.db.contention(len(now) > 1)
        try:
            answers = call_batch(self.db.call, [f for _, f in now])
            for (s, _), answer in zip(now, answers, strict=True):
                if answer is None:  # the call deferred it
                    again.append(s)
                else:
                    s.row = tuple(f or None for f in answer.split(_RS)[:7])
        except BaseException as exc:
            # Each request is then sent again by itself (`submit`); an interrupt of the
            # caller's thread goes on up once the others are free to.
            for s, _ in now:
                s.retry = s.row is None and s not in again
            if not isinstance(exc, Exception):
                raise
        finally:
            if again:
                with self._queued:
                    self._queue[:0] = again
            self._wake([s for s, _ in now], mine)
