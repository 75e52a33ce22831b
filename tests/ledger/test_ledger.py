"""Entries, balances, holds, caps and idempotency, on every backend."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from aiexport.errors import Conflict, InputError, NotFound, QuotaExceeded
from aiexport.ledger import Ledger, verify
from aiexport.ledger._amounts import to_micro
from aiexport.ledger._writer import draws_fingerprint, one_fingerprint
from aiexport.rules.determination import Draw
from aiexport.rules.quota import QuotaView

from .conftest import PG_URL, draw

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_ledger_is_a_quota_view(ledger: Ledger) -> None:
    assert isinstance(ledger, QuotaView)
    assert ledger.used("lpp/nobody/2025") == 0


def test_commit_draws_every_account_at_once(ledger: Ledger) -> None:
    r = ledger.commit(
        [draw("lpp/acme/2025", "1000.25", 26_000_000), draw("aia/acme", "1000.25")],
        key="o1",
        actor="alice",
        order_id="o1",
    )
    assert r.seqs == (1, 2) and not r.replayed
    assert ledger.used("lpp/acme/2025") == Decimal("1000.25")
    assert ledger.used("aia/acme") == Decimal("1000.25")
    b = ledger.balance("lpp/acme/2025")
    assert b.limit == 26_000_000 and b.remaining == Decimal("25998999.75")
    [e] = ledger.history("aia/acme")
    assert (e.kind, e.order_id, e.actor, e.amount) == ("commit", "o1", "alice", Decimal("1000.25"))
    assert verify(ledger).ok


def test_a_draw_over_any_cap_records_nothing(ledger: Ledger) -> None:
    ledger.commit([draw("a", 60, 100)], key="k1", actor="t")
    with pytest.raises(QuotaExceeded, match="40 TPP left"):
        ledger.commit([draw("b", 10, 100), draw("a", 41, 100)], key="k2", actor="t")
    assert ledger.used("b") == 0 and ledger.used("a") == 60
    assert ledger.head()[0] == 1
    ledger.commit([draw("b", 10, 100), draw("a", 40, 100)], key="k2", actor="t")
    assert ledger.used("a") == 100


def test_share_caps_are_checked_after_the_whole_draw(ledger: Ledger) -> None:
    def order(n: int, key: str) -> None:
        ledger.commit(
            [
                draw("uveu/v1/total", n),
                draw(
                    "uveu/v1/outside-tier1",
                    n,
                    max_share=Decimal("0.25"),
                    share_of="uveu/v1/total",
                ),
            ],
            key=key,
            actor="t",
        )

    ledger.commit([draw("uveu/v1/total", 300)], key="tier1", actor="t")
    order(100, "a")  # 100 of 400 = 25 %
    with pytest.raises(QuotaExceeded, match="25"):
        order(1, "b")
    assert ledger.used("uveu/v1/outside-tier1") == 100


def test_replay_returns_the_original_receipt_and_writes_nothing(ledger: Ledger) -> None:
    first = ledger.reserve([draw("a", 5, 10)], key="same", actor="t")
    again = ledger.reserve([draw("a", 5, 10)], key="same", actor="t")
    assert again.replayed and again.seqs == first.seqs and again.txn == first.txn
    assert ledger.used("a") == 5 and ledger.head()[0] == 1
    with pytest.raises(Conflict, match="different request"):
        ledger.reserve([draw("a", 6, 10)], key="same", actor="t")


@pytest.mark.parametrize(
    ("d", "order_id"),
    [
        (draw("a", "2.5"), None),
        (draw("a", 5, "10.000001"), "o-1"),
        (draw("a", "0.000001", 1, max_share=Decimal("0.25")), "o-2"),
        (draw("a", "5E+1", "1E+3"), ""),
    ],
)
def test_a_replay_of_one_draw_is_told_from_a_reused_key(
    ledger: Ledger, d: Draw, order_id: str | None
) -> None:
    """The one-draw path hashes its fingerprint itself (`Ledger._draw_one`); a replay, answered
    by the general path (`draws_fingerprint`), must find the same one."""
    if order_id == "":
        with pytest.raises(InputError, match="non-empty"):
            ledger.reserve([d], key="k", actor="t", order_id=order_id)
        return
    first = ledger.reserve([d], key="k", actor="t", order_id=order_id)
    again = ledger.reserve([d], key="k", actor="t", order_id=order_id)
    assert again.replayed and again.txn == first.txn and again.seqs == first.seqs
    with pytest.raises(Conflict, match="different request"):
        ledger.reserve([d], key="k", actor="t", order_id=f"{order_id}x")


@pytest.mark.parametrize("kind", ["reserve", "commit"])
@pytest.mark.parametrize(
    "d",
    [
        draw("a", "2.5"),
        draw("a", 5, "10.000001"),
        draw("a", "0.000001", 0, max_share=Decimal("0.25")),
    ],
)
@pytest.mark.parametrize("order_id", [None, "o-1"])
def test_the_one_draw_fingerprint_is_the_general_one(
    kind: str, d: Draw, order_id: str | None
) -> None:
    limit = None if d.limit is None else str(to_micro(d.limit))
    fp = one_fingerprint(kind, d, to_micro(d.amount), limit, order_id)
    assert fp == bytes.fromhex(draws_fingerprint(kind, [d], order_id))


def test_reservations_commit_release_and_expire(ledger: Ledger) -> None:
    hold = dt.timedelta(minutes=10)
    ledger.reserve([draw("a", 30, 100), draw("b", 30)], key="r1", actor="t", hold=hold, now=T0)
    ledger.reserve([draw("a", 20, 100)], key="r2", actor="t", hold=hold, now=T0)
    ledger.reserve([draw("a", 10, 100)], key="r3", actor="t", hold=hold, now=T0)
    assert ledger.balance("a").reserved == 60
    ledger.commit_reservation("r1", key="c1", actor="t", now=T0 + dt.timedelta(minutes=1))
    ledger.release("r2", key="x2", actor="t", now=T0 + dt.timedelta(minutes=2))
    b = ledger.balance("a")
    assert (b.committed, b.reserved) == (30, 10)
    assert ledger.balance("b").committed == 30
    with pytest.raises(Conflict, match="no live holds"):
        ledger.commit_reservation("r2", key="c2", actor="t", now=T0 + dt.timedelta(minutes=3))
    # r3 lapses: the next write sweeps it with a release entry, and nothing else may commit it.
    later = T0 + dt.timedelta(minutes=11)
    ledger.commit([draw("a", 70, 100)], key="k", actor="t", now=later)
    b = ledger.balance("a")
    assert (b.committed, b.reserved) == (100, 0)
    kinds = [(e.kind, e.actor) for e in ledger.history("a")]
    assert ("release", "system:expiry") in kinds
    with pytest.raises(Conflict):
        ledger.commit_reservation("r3", key="c3", actor="t", now=later)
    with pytest.raises(NotFound):
        ledger.release("nope", key="x9", actor="t")
    assert verify(ledger).ok


def test_used_leaves_out_lapsed_holds_before_any_sweep(ledger: Ledger) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ledger.reserve([draw("a", 7, 10)], key="r", actor="t", hold=dt.timedelta(minutes=1), now=past)
    assert ledger.balance("a").reserved == 7
    assert ledger.used("a") == 0


def test_void_attrition_and_adjustment_are_new_entries(ledger: Ledger) -> None:
    ledger.commit([draw("allocation/AE", 500, 1000)], key="lic", actor="t")
    ledger.attrition("allocation/AE", Decimal(100), key="att", actor="t", citation="lost")
    assert ledger.used("allocation/AE") == 400
    with pytest.raises(Conflict):
        ledger.attrition("allocation/AE", Decimal(401), key="att2", actor="t", citation="x")
    ledger.adjust("allocation/AE", Decimal(-50), key="adj", actor="t", citation="audit fix")
    assert ledger.used("allocation/AE") == 350
    ledger.void("lic", key="v", actor="t", reason="license revoked")
    assert ledger.used("allocation/AE") == -150
    with pytest.raises(Conflict):
        ledger.void("lic", key="v2", actor="t", reason="again")
    kinds = [e.kind for e in ledger.history("allocation/AE")]
    assert kinds == ["commit", "attrition", "adjustment", "void"]
    assert verify(ledger).ok


def test_amounts_are_exact_and_never_rounded(ledger: Ledger) -> None:
    ledger.commit([draw("a", "0.1"), draw("b", "4999.999999")], key="k", actor="t")
    ledger.commit([draw("a", "0.2")], key="k2", actor="t")
    assert ledger.used("a") == Decimal("0.3")
    with pytest.raises(InputError, match="6 decimal places"):
        ledger.commit([draw("a", "0.0000001")], key="k3", actor="t")
    with pytest.raises(InputError, match="positive"):
        ledger.commit([draw("a", 0)], key="k4", actor="t")
    with pytest.raises(InputError, match="idempotency key"):
        ledger.commit([draw("a", 1)], key="", actor="t")


def test_batch_records_all_or_nothing(ledger: Ledger) -> None:
    from aiexport.ledger import DrawRequest

    reqs = [DrawRequest(f"b{i}", (draw("a", 10, 100), draw("c", 1)), f"o{i}") for i in range(10)]
    out = ledger.record_batch(reqs, actor="batch")
    assert [len(r.seqs) for r in out] == [2] * 10
    assert ledger.used("a") == 100
    head = ledger.head()
    with pytest.raises(QuotaExceeded):
        ledger.record_batch(
            [DrawRequest("x", (draw("c", 1),)), DrawRequest("y", (draw("a", 1, 100),))], actor="b"
        )
    assert ledger.head() == head and ledger.used("c") == 10
    again = ledger.record_batch(reqs, actor="batch")
    assert all(r.replayed for r in again) and [r.seqs for r in again] == [r.seqs for r in out]
    assert ledger.head() == head


def test_batch_chain_holds_and_replays_verify(ledger: Ledger) -> None:
    """The batch loop hashes, holds and fingerprints exactly as the single-request path."""
    from aiexport.ledger import DrawRequest

    share: dict[str, Any] = {"max_share": Decimal("0.5"), "share_of": "uveu/v/total"}
    ledger.reserve([draw("x", 1, 10)], key="single", actor="t", order_id="s", now=T0)
    reqs = [
        DrawRequest(f"r{i}", (draw("uveu/v/total", 4), draw("uveu/v/in", 2, **share)), f"o{i}")
        for i in range(5)
    ]
    out = ledger.record_batch(reqs, actor="batch", kind="reserve", now=T0)
    assert [r.seqs for r in out] == [(2 + 2 * i, 3 + 2 * i) for i in range(5)]
    assert ledger.balance("uveu/v/in").reserved == 10 and verify(ledger).ok
    # A batch mixing a replay (same fingerprint as the one-request path) and a new request.
    again = ledger.record_batch(
        [DrawRequest("single", (draw("x", 1, 10),), "s"), DrawRequest("new", (draw("x", 2, 10),))],
        actor="t",
        kind="reserve",
        now=T0,
    )
    assert again[0].replayed and again[0].seqs == (1,) and again[1].seqs == (12,)
    with pytest.raises(QuotaExceeded, match="50"):
        ledger.record_batch(
            [DrawRequest("over", (draw("uveu/v/in", 1, **share),))], actor="t", now=T0
        )
    with pytest.raises(Conflict, match="twice"):
        ledger.record_batch(
            [DrawRequest("d", (draw("y", 1),)), DrawRequest("d", (draw("y", 1),))], actor="t"
        )
    report = verify(ledger)
    assert report.ok and report.entries == 12


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set")
def test_postgres_answers_only_after_the_wal_is_flushed_past_the_write() -> None:
    """Writes commit asynchronously under the lock; the barrier after them must be a transaction
    of its own that waits for the flush, on both write paths. Right after a write returns,
    everything in the WAL is flushed (bar WAL that other sessions wrote in between, hence the
    count); were the barrier part of the write's asynchronous transaction, it would not be until
    the WAL writer's next round (up to 200 ms later)."""
    from sqlalchemy import create_engine, text

    from .conftest import _reset_pg

    assert PG_URL
    _reset_pg(PG_URL)
    engine = create_engine(PG_URL)
    with Ledger(PG_URL) as ledger, engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        for server in (True, False):
            ledger.server_draws = server
            flushed = 0
            for i in range(20):
                ledger.commit([draw("acct", 1)], key=f"{server}-{i}", actor="t")
                flushed += bool(
                    conn.scalar(
                        text("SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn()")
                    )
                )
            assert flushed >= 15, (server, flushed)
        assert verify(ledger).ok
    engine.dispose()


def _batch_state(ledger: Ledger, accounts: list[str]) -> list[Any]:
    out: list[Any] = []
    for a in accounts:
        b = ledger.balance(a)
        out.append((a, b.committed, b.reserved, b.limit))
        out += [
            (e.seq, e.kind, e.amount, e.order_id, e.actor, e.citation) for e in ledger.history(a)
        ]
    return out


def test_batch_fast_path_matches_the_exact_path(
    ledger: Ledger, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`_draw_batch_fast` writes what `_draw_batch_exact` writes (entries, balances, limits,
    fingerprints), defers to it on any refusal or conflict, and the error is the exact path's."""
    from aiexport.ledger import DrawRequest
    from aiexport.ledger._writer import Writer

    exact_calls: list[int] = []
    exact = Writer._draw_batch_exact

    def spy(self: Writer, *args: Any) -> Any:
        exact_calls.append(1)
        return exact(self, *args)

    monkeypatch.setattr(Writer, "_draw_batch_exact", spy)
    reqs = [
        DrawRequest(
            f"k{i}",
            (
                draw(f"a{i % 3}", f"{1 + i % 4}.5", 1000),
                draw("t", i % 5 + 1),
                draw(f"a{i % 3}", 1, 1000),
            ),
            None if i % 7 == 0 else f"o{i}",
        )
        for i in range(40)
    ]
    accounts = ["a0", "a1", "a2", "t"]
    fast = ledger.record_batch(reqs, actor="batch", now=T0)
    assert not exact_calls and verify(ledger).ok
    slow_ledger = Ledger(f"sqlite:///{tmp_path / 'exact.db'}")
    monkeypatch.setattr(Writer, "_draw_batch_fast", lambda *a: None)
    slow = slow_ledger.record_batch(reqs, actor="batch", now=T0)
    assert [r.seqs for r in fast] == [r.seqs for r in slow]
    assert _batch_state(ledger, accounts) == _batch_state(slow_ledger, accounts)
    monkeypatch.undo()
    monkeypatch.setattr(Writer, "_draw_batch_exact", spy)
    exact_calls.clear()
    # Replays of the fast path's requests are replays for the exact fingerprint too.
    again = slow_ledger.record_batch(reqs[:3], actor="batch", now=T0)
    assert all(r.replayed for r in again) and not exact_calls
    slow_ledger.close()
    head = ledger.head()
    # Past the cap only at the fourth request: the whole batch refused, naming that request.
    over = [DrawRequest(f"x{i}", (draw("q", 300, 1000),), f"over{i}") for i in range(4)]
    with pytest.raises(QuotaExceeded, match="over3"):
        ledger.record_batch(over, actor="batch", now=T0)
    # A refusal before a duplicate key: the refusal is the answer, as request by request.
    with pytest.raises(QuotaExceeded):
        ledger.record_batch([*over, over[0]], actor="batch", now=T0)
    with pytest.raises(Conflict, match="twice"):
        ledger.record_batch([over[0], over[0]], actor="batch", now=T0)
    with pytest.raises(InputError, match="positive"):
        ledger.record_batch([DrawRequest("z", (draw("q", 0, 1000),))], actor="batch", now=T0)
    # Refusals and the conflict are decided twice (the second time with recorded keys read).
    assert len(exact_calls) == 7 and ledger.head() == head and verify(ledger).ok


def _stored(ledger: Ledger) -> dict[str, list[Any]]:
    """Every row the ledger stores about its entries, requests, holds and balances."""
    from sqlalchemy import text

    with ledger.db.read() as conn:
        return {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
            for table in ("ledger_entries", "ledger_requests", "ledger_holds", "ledger_balances")
        } | {"chain": [r for r in ledger.iter_rows()]}


@pytest.mark.parametrize("kind", ["commit", "reserve"])
def test_batch_loop_in_c_writes_what_the_python_loop_writes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """`_chainc.chain_batch` (the compiled loop) and `Writer._chain_py` give byte-identical
    entries, hashes, request fingerprints, holds and balances: non-ASCII texts, requests without
    an order id or without draws, more than 64 draws in one request, and an account whose
    draws change amount midway (a new shape) included."""
    import uuid

    from aiexport.ledger import DrawRequest, _writer

    if _writer._chainc is None:
        pytest.fail("the C batch loop was not built: install libssl-dev and reinstall")
    reqs = [
        DrawRequest(
            f"clé-{i}",
            (
                draw(f"lpp/société-{i % 4}/2025", f"{1 + i % 3}.25", 10_000),
                draw("aia/ü", i + 1),
            ),
            None if i % 5 == 0 else f"ordre-{i}",
        )
        for i in range(30)
    ]
    reqs.append(DrawRequest("empty", (), "none"))
    reqs.append(DrawRequest("wide", tuple(draw(f"w/{j % 7}", 1) for j in range(70)), "w"))
    fixed = uuid.UUID(int=7)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    calls: list[int] = []
    chain_py = _writer.Writer._chain_py

    def spy(self: _writer.Writer, *args: Any) -> Any:
        calls.append(1)
        return chain_py(self, *args)

    monkeypatch.setattr(_writer.Writer, "_chain_py", spy)
    out = {}
    for name, compiled in (("c", _writer._chainc), ("py", None)):
        monkeypatch.setattr(_writer, "_chainc", compiled)
        calls.clear()
        ledger = Ledger(f"sqlite:///{tmp_path / name}.db")
        receipts = ledger.record_batch(reqs, actor="lot ü", kind=kind, now=T0)
        assert bool(calls) == (compiled is None)
        assert verify(ledger).ok
        out[name] = (_stored(ledger), list(receipts))
        ledger.close()
    assert out["c"] == out["py"]
    stored, receipts = out["c"]
    assert len(stored["ledger_entries"]) == 30 * 2 + 70 and receipts[30].seqs == ()
    assert len(stored["ledger_holds"]) == (130 if kind == "reserve" else 0)


@pytest.mark.parametrize(
    ("key", "order", "account", "amount", "says"),
    [
        ("a\x1fb", "o", "q", "1", "control characters"),
        ("k", "", "q", "1", "non-empty"),
        (5, "o", "q", "1", "non-empty"),
        ("k", "o", "q\x1f", "1", "control characters"),
        ("k", "o", "q", "1e30", "too large"),
        ("k", "o", "q", "0.0000001", "finer than"),
    ],
)
def test_batch_refuses_bad_input_by_name_and_writes_nothing(
    ledger: Ledger, key: Any, order: str, account: str, amount: str, says: str
) -> None:
    """Bad input in a batch, on the compiled loop or the Python one, is an `InputError` that says
    what is wrong (not a driver's overflow or a `TypeError`), and nothing is written."""
    from aiexport.ledger import DrawRequest

    good = DrawRequest("fine", (draw("q", 1),), "o0")
    with pytest.raises(InputError, match=says):
        ledger.record_batch([good, DrawRequest(key, (draw(account, amount),), order)], actor="t")
    assert ledger.head()[0] == 0 and verify(ledger).ok
    with pytest.raises(InputError, match="too large"):
        ledger.commit([draw("q", 10**13)], key="big", actor="t")


def test_a_large_sqlite_batch_is_checkpointed_after_it_in_a_thread(tmp_path: Any) -> None:
    """The batch's commit leaves its pages in the WAL (no checkpoint inside it); a thread then
    copies them into the database file; the pooled connection gets its automatic checkpoints
    back, and a fork waits for the thread."""
    import os

    from aiexport.ledger import DrawRequest

    path = tmp_path / "big.db"
    ledger = Ledger(f"sqlite:///{path}")
    before = path.stat().st_size
    reqs = [DrawRequest(f"k{i}", (draw(f"a/{i % 50}", 1, 10**6),), f"o{i}") for i in range(6000)]
    assert len(ledger.record_batch(reqs, actor="t", now=T0)) == 6000
    assert ledger._checkpointer is not None
    ledger._checkpointer.join()
    assert path.stat().st_size > before + 500_000  # the entries are in the database file now
    with ledger.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    ledger.record_batch(
        [DrawRequest(f"m{i}", (draw("b", 1),)) for i in range(6000)], actor="t", now=T0
    )
    pid = os.fork()  # waits for the checkpoint thread first
    if pid == 0:
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert verify(ledger).ok and ledger.balance("b").committed == 6000
    ledger.close()


def test_a_single_write_prepares_no_batch_statement(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk statements name their transaction, so each is prepared anew: a single
    reservation must not run one (empty or not), or it pays a large statement's preparation."""
    from aiexport.ledger._writer import Writer

    ran: list[int] = []
    monkeypatch.setattr(Writer, "_run_chunks", lambda *a: ran.append(1))
    ledger.reserve([draw("a", 1, 10)], key="one", actor="t")
    ledger.commit([draw("a", 1, 10)], key="two", actor="t")
    assert ran == [] and ledger.used("a") == 2


def test_batch_receipts_read_like_a_list(ledger: Ledger) -> None:
    """`record_batch`'s receipts are made when read but behave as the list of them: indexing,
    slicing, iteration, length and equality; the collector is running again afterwards."""
    import gc

    from aiexport.ledger import DrawRequest

    reqs = [DrawRequest(f"r{i}", (draw("a", 1),), f"o{i}") for i in range(5)]
    receipts = ledger.record_batch(reqs, actor="t", now=T0)
    as_list = list(receipts)
    assert len(receipts) == 5 and receipts[-1] == as_list[4] and receipts[1:3] == as_list[1:3]
    assert receipts == as_list and as_list == receipts and receipts != as_list[:4]
    assert [r.seqs for r in receipts] == [(i + 1,) for i in range(5)]
    assert gc.isenabled()
