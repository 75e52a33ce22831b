"""PostgreSQL: draws of concurrent threads combined into one call (`_combine`,
`ledger_draw_batch`) write what the same draws write one by one, never overdraw, and fall back
to one call each when the batch call fails."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, text

from aiexport.errors import InputError, QuotaExceeded
from aiexport.ledger import Ledger, verify
from aiexport.ledger import _tables as t
from aiexport.ledger._combine import combinable
from aiexport.ledger._pgdraw import BATCH_CALL, SET_CALL

from .conftest import PG_URL, _reset_pg, draw, fork_context
from .test_pgdraw import TABLES

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
]

T0 = dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


Script = Callable[[Ledger], list[Callable[[], object]]]


def _script(ledger: Ledger) -> list[Callable[[], object]]:
    """Draws of every shape the batch takes, and of every answer it gives."""
    return [
        lambda: ledger.commit([], key="e1", actor="erin", now=T0),  # no draw: not combined
        lambda: ledger.reserve(  # new names
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=T0
        ),
        lambda: ledger.reserve(  # two accounts, one drawn earlier in the batch, one new
            [draw("lpp/a/2025", 2, 10), draw("allocation/IN", 3, 100)],
            key="r2",
            actor="alice",
            order_id="o2",
            hold=HOUR,
            now=T0,
        ),
        lambda: ledger.commit(  # no order, no limit on the second draw
            [draw("allocation/IN", 4, 100), draw("aia/a", 4)], key="c1", actor="bob", now=T0
        ),
        lambda: ledger.commit(  # refused on its second draw (as the batch left the balance)
            [draw("aia/a", 1), draw("lpp/a/2025", 7, 10)], key="c2", actor="bob", now=T0
        ),
        lambda: ledger.commit(  # the next one goes on after a refusal
            [draw("lpp/a/2025", 6, 10)], key="c3", actor="bob", now=T0
        ),
        lambda: ledger.reserve(  # a key earlier in the same batch: a replay
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=T0
        ),
        lambda: ledger.reserve(  # r2's hold has lapsed by then: swept first, by the Python path
            [draw("lpp/a/2025", 1, 10)], key="r3", actor="alice", now=T0 + 2 * HOUR
        ),
    ]


def _answer(op: Callable[[], object]) -> str:
    try:
        return repr(op())
    except QuotaExceeded as exc:
        return str(exc)


def _rows() -> dict[str, Any]:
    assert PG_URL
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        rows = {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
            for table, key in TABLES.items()
        }
        # Names compared as a set: new texts get the next ids in the order they are met.
        rows["ledger_names"] = sorted(r[1] for r in rows["ledger_names"])
        rows["ledger_entries"] = [tuple(r) for r in conn.execute(t.entry_select().order_by("seq"))]
    engine.dispose()
    return rows


def test_racing_threads_never_overdraw() -> None:
    """8 threads x 150 reservations of 1 TPP on a cap of 500: exactly 500 acknowledged, each
    recorded, the balance their sum, the chain intact."""
    assert PG_URL
    _reset_pg(PG_URL)
    acks: list[str] = []
    refused = [0]
    lock = threading.Lock()
    with Ledger(PG_URL) as ledger:

        def writer(w: int) -> None:
            for i in range(150):
                key = f"t{w}-{i}"
                try:
                    ledger.reserve(
                        [draw("lpp/small/2025", 1, 500), draw(f"aia/c{i % 7}", 1)],
                        key=key,
                        actor=f"writer{w}",
                        hold=HOUR,
                    )
                except QuotaExceeded:
                    with lock:
                        refused[0] += 1
                else:
                    with lock:
                        acks.append(key)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(acks) == 500 and refused[0] == 700
        assert ledger.balance("lpp/small/2025").reserved == 500
        assert sum(ledger.balance(f"aia/c{k}").reserved for k in range(7)) == 500
        assert verify(ledger).ok
        # Once the cap is known full, refusals are decided without a draw (`_refuse_early`).
        assert 500 <= ledger.combiner.requests <= 1200
        assert ledger.combiner.calls <= ledger.combiner.requests
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        keys = set(conn.scalars(text("SELECT key FROM ledger_requests")))
    engine.dispose()
    assert keys == set(acks)


def test_racing_threads_one_draw_each_never_overdraw() -> None:
    """8 threads x 150 reservations of one draw on known names, a cap of 500: they go through
    the one-draw combiner (`ledger_draw_set_named`, or `ledger_draw_one` alone), none through
    the general combiner; exactly 500 acknowledged and recorded, the chain intact."""
    assert PG_URL
    _reset_pg(PG_URL)
    acks: list[str] = []
    lock = threading.Lock()
    with Ledger(PG_URL) as ledger:
        ledger.commit([draw("aia/warm", 1)], key="warm", actor="writer", now=T0)
        ledger.commit([draw("lpp/small/2025", 1, 500)], key="names", actor="writer", now=T0)
        before = ledger.combiner.requests

        def writer(w: int) -> None:
            for i in range(150):
                try:
                    ledger.reserve(
                        [draw("lpp/small/2025", 1, 500)], key=f"t{w}-{i}", actor="writer"
                    )
                except QuotaExceeded:
                    continue
                with lock:
                    acks.append(f"t{w}-{i}")

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(acks) == 499  # the cap less the first commitment
        assert ledger.balance("lpp/small/2025").reserved == 499
        assert ledger.combiner.requests == before
        assert ledger.one_combiner.requests >= 499 + 2
        assert verify(ledger).ok
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        keys = set(conn.scalars(text("SELECT key FROM ledger_requests")))
    engine.dispose()
    assert keys == set(acks) | {"warm", "names"}


def test_a_failed_batch_call_sends_each_draw_again_by_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        ledger.one_draws = False  # the combiner's path (one draw would go by itself)
        real = ledger.db.call
        failed = []

        def call(sql: str, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
            if sql == BATCH_CALL:
                failed.append(params)
                raise psycopg.OperationalError("the server closed the connection")
            return real(sql, params)

        monkeypatch.setattr(ledger.db, "call", call)
        errors: list[BaseException] = []

        def run(i: int) -> Callable[[], object]:
            def target() -> None:
                try:
                    ledger.commit([draw(f"acct{i}", 2, 10)], key=f"k{i}", actor="t", now=T0)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            return target

        _queued_then_sent(ledger.combiner, [run(i) for i in range(4)])
        assert not errors and len(failed) == 1
        assert [ledger.balance(f"acct{i}").committed for i in range(4)] == [2] * 4
        assert verify(ledger).ok


def test_a_draw_alone_fails_once_and_with_its_own_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Alone in the queue, a draw is sent by its own thread: a failure is raised to it at
    once, not swallowed and the call made again."""
    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        calls = []

        def call(sql: str, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
            calls.append(sql)
            raise psycopg.errors.DiskFull("could not extend file")

        monkeypatch.setattr(ledger.db, "call", call)
        with pytest.raises(psycopg.errors.DiskFull):
            ledger.commit([draw("acct", 1, 10)], key="k", actor="t", now=T0)
        assert len(calls) == 1


def test_a_forked_child_combines_without_its_parents_locks() -> None:
    """A child forked while a parent thread has the turn (and holds the queue's lock) starts its
    own combiner: with the parent's state, its first draw would wait for ever."""
    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        ledger.one_draws = False  # else the child's draw, on a known name, goes by itself
        ledger.commit([draw("acct", 1, 10)], key="parent", actor="t", now=T0)

        def child() -> None:
            ledger.commit([draw("acct", 2, 10)], key="child", actor="t", now=T0)

        ledger.combiner._turn_taken = True
        with ledger.combiner._queued:
            proc = fork_context().Process(target=child)
            proc.start()
        ledger.combiner._turn_taken = False
        proc.join(timeout=60)
        if proc.is_alive():  # pragma: no cover - the failure this test looks for
            proc.kill()
        assert proc.exitcode == 0
        assert ledger.balance("acct").committed == 3
        assert verify(ledger).ok


def test_only_the_common_shape_is_combined() -> None:
    def params(accounts: str, shares: str | None = None) -> tuple[str | bytes | None, ...]:
        return ("commit", "k", b"", "t", None, "x", "now", None, accounts, "1", "", "c",
                shares, shares, "")  # fmt: skip

    assert combinable(params("a")) and combinable(params("a\x1fb"))
    assert not combinable(params(""))  # no draw
    assert not combinable(params("a\x1fa"))  # one account twice
    assert not combinable(params("a", shares="0.5"))  # a share cap


def test_texts_may_not_hold_the_batch_separator() -> None:
    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger, pytest.raises(InputError, match="control characters"):
        ledger.commit([draw("a\x1eb", 1, 10)], key="k", actor="t", now=T0)


def _one_draw_script(ledger: Ledger) -> list[Callable[[], object]]:
    """One-draw requests of every answer the one-draw combiner gives."""
    return [
        lambda: ledger.reserve(  # new names
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=T0
        ),
        lambda: ledger.commit(  # the same account, on the balance r1 left
            [draw("lpp/a/2025", 2, 10)], key="c1", actor="bob", now=T0
        ),
        lambda: ledger.commit(  # over the cap: refused
            [draw("lpp/a/2025", 7, 10)], key="c2", actor="bob", now=T0
        ),
        lambda: ledger.reserve(  # another account, no cap
            [draw("aia/a", 4)], key="r2", actor="alice", hold=HOUR, now=T0
        ),
        lambda: ledger.reserve(  # r1's key again: sent in the next call, answered as a replay
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=T0
        ),
        lambda: ledger.commit(  # the next one goes on after all that
            [draw("lpp/a/2025", 6, 10)], key="c3", actor="carol", now=T0
        ),
    ]


def _queued_then_sent(combiner: Any, targets: list[Callable[[], object]]) -> None:
    """Each of `targets` in a thread of its own, started in order once the one before has
    queued its request while the turn is taken (as if a thread were sending); then the turn is
    handed to the first request, whose thread sends the queue. Returns once all are done."""
    combiner._turn_taken = True
    threads = [threading.Thread(target=target) for target in targets]
    for i, th in enumerate(threads):
        th.start()
        deadline = time.monotonic() + 10
        while len(combiner._queue) <= i:
            assert time.monotonic() < deadline, "a request never reached the combiner"
            time.sleep(0.001)
    combiner._pass_turn()
    for th in threads:
        th.join(timeout=60)
        assert not th.is_alive(), "a thread was left waiting"


def _one_by_one(
    monkeypatch: pytest.MonkeyPatch, script: Script, one_draws: bool
) -> tuple[list[str], dict[str, Any]]:
    """`script`'s requests one after the other, each alone in its combiner."""
    assert PG_URL
    _reset_pg(PG_URL)
    step = [0]
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=step[0]))
    with Ledger(PG_URL) as ledger:
        ledger.one_draws = one_draws  # False: the general combiner's path, as in its batch
        combiner = ledger.one_combiner if one_draws else ledger.combiner
        answers = []
        for i, op in enumerate(script(ledger)):
            step[0] = i + 1
            answers.append(_answer(op))
        assert combiner.calls == combiner.requests
        assert verify(ledger).ok
    return answers, _rows()


def _batched(
    monkeypatch: pytest.MonkeyPatch, script: Script, one_draws: bool
) -> tuple[list[str], dict[str, Any], tuple[int, int]]:
    """`script`'s requests from one thread each, queued in order while the turn is taken, so
    that one call takes them all, in that order (a repeated key waits for the next; the
    general script's first request, with no draw, is not combined: it is written at once, by
    itself). Also the combiner's (calls, requests)."""
    assert PG_URL
    _reset_pg(PG_URL)
    step = [0]
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=step[0]))
    with Ledger(PG_URL) as ledger:
        ledger.one_draws = one_draws  # else one draw on known names would go by itself
        combiner = ledger.one_combiner if one_draws else ledger.combiner
        ops = script(ledger)
        answers = [""] * len(ops)

        def run(i: int) -> Callable[[], object]:
            def target() -> None:
                step[0] = i + 1  # the txn id of the request about to queue
                answers[i] = _answer(ops[i])

            return target

        first = 0 if one_draws else 1
        for i in range(first):
            run(i)()
        _queued_then_sent(combiner, [run(i) for i in range(first, len(ops))])
        assert not combiner._queue and not combiner._turn_taken
        assert verify(ledger).ok
        made = (combiner.calls, combiner.requests)
    return answers, _rows(), made


@pytest.mark.parametrize(
    ("script", "one_draws", "made", "refused", "replayed", "entries"),
    [
        # One call took them all, but the draw-less commit, which went by itself. Entries: r1,
        # r2 (2), c1 (2), c3, the release of r1's and r2's lapsed holds (3), r3; e1 has none.
        (_script, False, (1, 7), 4, 6, 10),
        # The repeated key went in a second call. Entries: r1, c1, r2, c3.
        (_one_draw_script, True, (2, 6), 2, 4, 4),
    ],
    ids=["general", "one draw"],
)
def test_a_batch_writes_what_the_same_requests_write_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
    script: Script,
    one_draws: bool,
    made: tuple[int, int],
    refused: int,
    replayed: int,
    entries: int,
) -> None:
    """Same answers and, table by table, the same rows (entries with their hashes)."""
    batch_answers, batch_rows, batch_made = _batched(monkeypatch, script, one_draws)
    monkeypatch.undo()
    single_answers, single_rows = _one_by_one(monkeypatch, script, one_draws)
    assert batch_made == made
    assert batch_answers == single_answers
    assert "exceed" in batch_answers[refused] and "replayed=True" in batch_answers[replayed]
    for table in batch_rows:
        assert batch_rows[table] == single_rows[table], table
    assert len(batch_rows["ledger_entries"]) == entries


def test_a_failed_one_draw_call_sends_each_request_again_by_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The batch call fails: each of its requests is sent again by its own thread, and each is
    written once."""
    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        combiner = ledger.one_combiner
        real = ledger.db.call
        failed = []

        def call(sql: str, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
            if sql == SET_CALL and "\x1e" in (params[0] or "") and not failed:
                failed.append(sql)
                raise psycopg.errors.SerializationFailure("the batch call failed")
            return real(sql, params)

        monkeypatch.setattr(ledger.db, "call", call)

        def commit(i: int) -> Callable[[], object]:
            return lambda: ledger.commit([draw(f"acct{i}", 1, 10)], key=f"k{i}", actor="t")

        _queued_then_sent(combiner, [commit(i) for i in range(3)])
        assert failed == [SET_CALL]
        assert [ledger.balance(f"acct{i}").committed for i in range(3)] == [1, 1, 1]
        assert verify(ledger).ok


def test_an_interrupted_one_draw_call_leaves_the_other_threads_to_write_by_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The thread sending the batch is interrupted during the call (a BaseException, as
    KeyboardInterrupt is): the interrupt goes up its own thread, and the other requests of the
    batch are sent again by their threads, not left waiting for ever."""
    assert PG_URL
    _reset_pg(PG_URL)

    class Interrupt(BaseException):
        pass

    with Ledger(PG_URL) as ledger:
        combiner = ledger.one_combiner
        real = ledger.db.call
        raised: list[int] = []

        def call(sql: str, params: tuple[str | bytes | None, ...]) -> tuple[str | None, ...]:
            if sql == SET_CALL and "\x1e" in (params[0] or "") and not raised:
                raised.append(1)
                raise Interrupt()
            return real(sql, params)

        monkeypatch.setattr(ledger.db, "call", call)
        outcome: dict[int, str] = {}

        def run(i: int) -> Callable[[], object]:
            def target() -> None:
                try:
                    ledger.commit([draw(f"acct{i}", 1, 10)], key=f"k{i}", actor="t", now=T0)
                    outcome[i] = "written"
                except Interrupt:
                    outcome[i] = "interrupted"

            return target

        _queued_then_sent(combiner, [run(i) for i in range(3)])
        assert outcome == {0: "interrupted", 1: "written", 2: "written"}
        assert [ledger.used(f"acct{i}") for i in range(3)] == [0, 1, 1]  # acct0: never drawn
        assert not combiner._turn_taken
        assert verify(ledger).ok
