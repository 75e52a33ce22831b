"""PostgreSQL: `ledger_draw_packed` (called through `ledger_draw_durable`) writes exactly what the
Python path writes, and migrations 4 and 5 bring a database at version 3 to them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from aiexport.errors import Conflict, QuotaExceeded
from aiexport.ledger import MIGRATIONS, Ledger, _migrations, verify
from aiexport.ledger import _tables as t
from aiexport.ledger._db import Database
from aiexport.ledger._pgdraw import ONE_FN_CALL
from aiexport.ledger._sql import WAL_BARRIER, WRITE_LOCK_KEY

from .conftest import PG_URL, _reset_pg, draw

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
]

T0 = dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC)
# Entries are compared with their names resolved: both paths give new texts the next ids, but in
# another order (the Python path sorts them), and the hash covers the texts.
TABLES = {
    "ledger_names": "name",
    "ledger_txns": "id",
    "ledger_balances": "account",
    "ledger_holds": "seq",
    "ledger_requests": "key",
    "ledger_chain_head": "id",
}
SHARE: dict[str, Any] = {"max_share": Decimal("0.5"), "share_of": "uveu/v/total"}


def _script(ledger: Ledger) -> list[Callable[[dt.datetime], object]]:
    """Reservations and commitments of every shape the function takes, or hands on."""
    hour = dt.timedelta(hours=1)
    return [
        lambda now: ledger.reserve(
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=now
        ),
        lambda now: ledger.reserve(  # known names, two accounts, one new
            [draw("lpp/a/2025", 2, 10), draw("allocation/IN", 3, 100)],
            key="r2",
            actor="alice",
            order_id="o2",
            hold=hour,
            now=now,
        ),
        lambda now: ledger.commit(  # no order, no limit on the second draw
            [draw("allocation/IN", 4, 100), draw("aia/a", 4)], key="c1", actor="bob", now=now
        ),
        lambda now: ledger.commit(  # refused on its second draw: nothing written
            [draw("aia/a", 1), draw("lpp/a/2025", 7, 10)], key="c2", actor="bob", now=now
        ),
        lambda now: ledger.reserve(  # replay
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=now
        ),
        lambda now: ledger.commit(  # a share cap: the general function
            [draw("uveu/v/total", 4), draw("uveu/v/in", 2, **SHARE)], key="s1", actor="c", now=now
        ),
        lambda now: ledger.commit(  # past the share
            [draw("uveu/v/in", 1, **SHARE)], key="s2", actor="c", now=now
        ),
        lambda now: ledger.commit(  # one account twice: the general function
            [draw("dup", 1, 5), draw("dup", 2, 5)], key="d1", actor="dave", now=now
        ),
        lambda now: ledger.commit([], key="e1", actor="erin", now=now),
        lambda now: ledger.reserve(  # lapsed holds (r1's) to sweep: the Python path
            [draw("lpp/a/2025", 1, 10)], key="r3", actor="alice", now=now + 2 * hour
        ),
    ]


def _one_draws(ledger: Ledger) -> list[Callable[[dt.datetime], object]]:
    """Requests of one draw: once their names are known, `ledger_draw_one` takes them."""
    hour = dt.timedelta(hours=1)
    return [
        lambda now: ledger.reserve(  # new names: the function, which returns their ids
            [draw("lpp/a/2025", "1.5", 10)], key="r1", actor="alice", order_id="o1", now=now
        ),
        lambda now: ledger.commit([draw("aia/a", 1)], key="n1", actor="alice", now=now),
        lambda now: ledger.commit(
            [draw("lpp/a/2025", 2, 10)], key="k2", actor="alice", order_id="o2", now=now
        ),
        lambda now: ledger.reserve(
            [draw("lpp/a/2025", "0.25", 10)], key="k3", actor="alice", hold=hour, now=now
        ),
        lambda now: ledger.commit([draw("aia/a", 2)], key="k4", actor="alice", now=now),  # no cap
        lambda now: ledger.commit(  # refused: 3.75 + 7 > 10
            [draw("lpp/a/2025", 7, 10)], key="k5", actor="alice", order_id="o5", now=now
        ),
        lambda now: ledger.commit(  # the cap raised: accepted
            [draw("lpp/a/2025", 7, 12)], key="k6", actor="alice", now=now
        ),
        lambda now: ledger.commit(  # replay
            [draw("lpp/a/2025", 2, 10)], key="k2", actor="alice", order_id="o2", now=now
        ),
        lambda now: ledger.commit(  # the key reused for another request
            [draw("lpp/a/2025", 1, 10)], key="k2", actor="alice", now=now
        ),
        lambda now: ledger.reserve(  # lapsed holds (r1's, k3's) to sweep: the Python path
            [draw("aia/a", 1)], key="k7", actor="alice", now=now + 2 * hour
        ),
        lambda now: ledger.reserve(
            [draw("lpp/a/2025", "0.5", 12)], key="k8", actor="alice", now=now + 2 * hour
        ),
    ]


def _run(
    server: bool,
    monkeypatch: pytest.MonkeyPatch,
    script: Callable[[Ledger], list[Callable[[dt.datetime], object]]] = _script,
) -> tuple[list[str], dict[str, Any]]:
    assert PG_URL
    _reset_pg(PG_URL)
    step = [0]
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=step[0]))
    answers: list[str] = []
    with Ledger(PG_URL) as ledger:
        ledger.server_draws = server
        for i, op in enumerate(script(ledger)):
            step[0] = i + 1
            try:
                answers.append(repr(op(T0 + dt.timedelta(seconds=i))))
            except (QuotaExceeded, Conflict) as exc:
                answers.append(str(exc))
        assert verify(ledger).ok
        if server:  # the names it wrote are remembered: the next calls send their ids
            assert {"alice", "lpp/a/2025"} <= set(ledger.db.names.ids)
    engine = create_engine(PG_URL)
    with engine.connect() as conn:
        rows = {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
            for table, key in TABLES.items()
        }
        rows["ledger_names"] = [r[1:] for r in rows["ledger_names"]]
        rows["ledger_entries"] = [tuple(r) for r in conn.execute(t.entry_select().order_by("seq"))]
    engine.dispose()
    return answers, rows


def test_the_function_writes_what_the_python_path_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same answers and, table by table, the same rows (entries with their hashes included)."""
    server_answers, server_rows = _run(True, monkeypatch)
    python_answers, python_rows = _run(False, monkeypatch)
    assert server_answers == python_answers
    assert sum("exceed" in a or "past" in a for a in server_answers) == 2
    for table in server_rows:
        assert server_rows[table] == python_rows[table], table
    assert len(server_rows["ledger_entries"]) == 13  # 3 of them releases of lapsed holds


def test_one_draw_procedure_writes_what_the_python_path_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ledger_draw_one`: the same answers and rows as the Python path, for
    acceptances with and without a cap or an order, a refusal, a replay, a reused key and lapsed
    holds; and it is what sent every one-draw request with known names."""
    sent: list[str] = []
    call = Database.call

    def spy(self: Database, sql: str, params: Any) -> Any:
        row = call(self, sql, params)
        if sql == ONE_FN_CALL:
            sent.append(str(row[0]))
        return row

    monkeypatch.setattr(Database, "call", spy)
    server_answers, server_rows = _run(True, monkeypatch, _one_draws)
    assert sent == ["ok", "ok", "ok", "limit", "ok", "replay", "replay", "sweep", "ok"]
    python_answers, python_rows = _run(False, monkeypatch, _one_draws)
    assert server_answers == python_answers
    assert sum("exceed" in a for a in server_answers) == 1
    assert sum("different request" in a for a in server_answers) == 1
    for table in server_rows:
        assert server_rows[table] == python_rows[table], table
    assert len(server_rows["ledger_entries"]) == 10  # 3 of them releases of lapsed holds


def test_migrations_4_and_5_upgrade_a_version_3_database(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PG_URL
    _reset_pg(PG_URL)
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP PROCEDURE IF EXISTS ledger_draw_durable"))
        conn.execute(text("DROP FUNCTION IF EXISTS ledger_draw_packed"))
    monkeypatch.setattr(_migrations, "MIGRATIONS", MIGRATIONS[:3])
    with Ledger(PG_URL) as ledger:
        ledger.server_draws = False
        ledger.commit([draw("acct", 1, 10)], key="before", actor="t", now=T0)
    monkeypatch.undo()
    with Ledger(PG_URL) as ledger:
        ledger.commit([draw("acct", 2, 10)], key="after", actor="t", now=T0)
        assert ledger.balance("acct").committed == 3
        assert verify(ledger).ok
    with engine.connect() as conn:
        versions = list(conn.scalars(text("SELECT version FROM ledger_migrations ORDER BY 1")))
        assert versions == [m[0] for m in MIGRATIONS]
        assert conn.scalar(text("SELECT count(*) FROM ledger_txns")) == 2
    engine.dispose()


def test_call_sends_parameters_as_they_are_and_raises_the_servers_error() -> None:
    """`Database.call`'s libpq pipeline: text, bytes and NULL arrive unchanged; a failed
    statement raises its psycopg error and leaves the kept connection ready for the next call."""
    from psycopg import errors

    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        db = ledger.db
        odd = 'it\'s \\ a "quote" ünï\x1fcode'
        assert db.call("SELECT %s, %s, %s, length(%s)", (odd, b"\x00\xff", None, odd)) == (
            odd,
            "\\x00ff",
            None,
            str(len(odd)),
        )
        with pytest.raises(errors.DivisionByZero):
            db.call("SELECT 1 / %s::int", ("0",))
        with pytest.raises(errors.UndefinedTable):
            db.call("SELECT * FROM no_such_table", ())
        assert db.call("SELECT 1 / %s::int", ("1",)) == ("1",)
        assert ledger.commit([draw("acct", 1)], key="k", actor="t").seqs == (1,)
        # A lost connection is replaced and the call retried.
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            kept = db._kept_connection().proxy.driver_connection.info.backend_pid
            conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": kept})
        engine.dispose()
        assert ledger.commit([draw("acct", 1)], key="k2", actor="t").seqs == (2,)


def test_one_draw_commits_synchronously_unless_another_writer_holds_the_lock() -> None:
    """`ledger_draw_one`: with the write lock free, an accepted draw is committed synchronously
    and no barrier follows; a refusal is followed by the barrier. With the lock held by another
    writer, the draw waits for it, commits asynchronously, and the barrier follows."""
    import threading

    assert PG_URL
    _reset_pg(PG_URL)
    sent: list[str] = []
    call = Database.call

    def spy(self: Database, sql: str, params: Any) -> Any:
        row = call(self, sql, params)
        sent.append("draw" if sql == ONE_FN_CALL else "barrier" if sql == WAL_BARRIER else "?")
        return row

    with Ledger(PG_URL) as ledger:
        ledger.commit([draw("acct", 1, 10)], key="names", actor="t", now=T0)  # names' ids
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Database, "call", spy)
            ledger.commit([draw("acct", 1, 10)], key="free", actor="t", now=T0)
            assert sent == ["draw"]
            sent.clear()
            with pytest.raises(QuotaExceeded):
                ledger.commit([draw("acct", 9, 10)], key="over", actor="t", now=T0)
            assert sent == ["draw", "barrier"]
            sent.clear()
            engine = create_engine(PG_URL)
            with engine.connect() as other:
                other.execute(text(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})"))
                done: list[object] = []
                waiter = threading.Thread(
                    target=lambda: done.append(
                        ledger.commit([draw("acct", 1, 10)], key="held", actor="t", now=T0)
                    )
                )
                waiter.start()
                waiter.join(timeout=1.0)
                assert waiter.is_alive() and not done  # waits for the lock
                other.execute(text(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})"))
                waiter.join(timeout=30)
            engine.dispose()
            assert len(done) == 1 and sent == ["draw", "barrier"]
        assert ledger.used("acct") == 3
        assert verify(ledger).ok


def test_a_one_draw_request_gives_names_it_has_not_seen_their_ids() -> None:
    """A process that has no id for a name - another process wrote it, or it is new - sends
    its one-draw request as a batch of one (`ledger_draw_set_named`), which gives the names
    their ids and returns them; from then on it sends the one-draw function. No lookup, and no
    general path."""
    from aiexport.ledger._pgdraw import CALL, SET_CALL

    assert PG_URL
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as first:
        first.commit([draw("acct", 1, 10)], key="a1", actor="t", now=T0)
        ids = dict(first.db.names.ids)
    sent: list[str] = []
    call = Database.call

    def spy(self: Database, sql: str, params: Any) -> Any:
        kinds = {SET_CALL: "named", ONE_FN_CALL: "one", CALL: "general", WAL_BARRIER: "barrier"}
        sent.append(kinds.get(sql, "?"))
        return call(self, sql, params)

    with Ledger(PG_URL) as other, pytest.MonkeyPatch.context() as mp:
        mp.setattr(Database, "call", spy)
        other.commit([draw("acct", 1, 10)], key="b1", actor="t", now=T0)
        other.commit([draw("acct", 1, 10)], key="b2", actor="t", now=T0)
        assert sent == ["named", "one"]
        assert {k: other.db.names.ids[k] for k in ids} == ids  # the committed ids, learnt
        sent.clear()
        other.commit([draw("new", 1, 10)], key="b3", actor="t", now=T0)
        with pytest.raises(QuotaExceeded):
            other.commit([draw("newer", 11, 10)], key="b4", actor="t", now=T0)
        assert sent == ["named", "named", "barrier"]  # a refusal waits for the flush
        assert "new" in other.db.names.ids and "newer" not in other.db.names.ids
        assert other.used("acct") == 3 and other.used("new") == 1 and other.used("newer") == 0
        assert verify(other).ok
