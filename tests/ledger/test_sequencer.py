"""PostgreSQL: the sequencer (`aiexport ledger serve`, `_sequencer`) writes what the requests
would have written one by one, never overdraws with many client processes, and clients write by
themselves when it is gone."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from aiexport.errors import InputError, QuotaExceeded
from aiexport.ledger import Ledger, _sequencer, verify
from aiexport.ledger import _tables as t
from aiexport.ledger._db import Database
from aiexport.ledger._entries import iso
from aiexport.ledger._ledger import _one_params
from aiexport.ledger._pgdraw import ONE_FN_CALL, SET_CALL, draw_one
from aiexport.ledger._sequencer import (
    ALONE_CALLS,
    ENV_SOCKET,
    Sequencer,
    SequencerClient,
    _frame,
    decode_request,
    encode_request,
    listening,
)
from aiexport.ledger._sql import WAL_BARRIER
from aiexport.ledger._writer import draws_fingerprint

from .conftest import PG_URL, _reset_pg, draw, fork_context
from .test_concurrency import _acked, _recorded_keys
from .test_pgdraw import TABLES

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
]

T0 = dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
ACCOUNTS = ("lpp/a/2025", "lpp/b/2025", "aia/c", "lpp/d/2025", "lpp/e/2025", "lpp/f/2025")


@contextmanager
def serving(url: str, sock: Path) -> Iterator[subprocess.Popen[str]]:
    """`aiexport ledger serve` on `url`, listening on `sock`, while the block runs. Its stderr
    goes to `sock` + `.log` (a pipe left unread could fill and block it)."""
    log = sock.with_suffix(".log")
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiexport", "ledger", "serve", "--db", url, "--socket",
             str(sock)],
            stderr=out,
            text=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not listening(sock):  # a stale socket may be there before it binds its own
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@contextmanager
def in_thread(seq: Sequencer) -> Iterator[threading.Thread]:
    """`seq.serve` in a thread of this process, ready, while the block runs; then stopped,
    joined and its connections closed."""
    ready = threading.Event()
    server = threading.Thread(target=seq.serve, kwargs={"ready": ready.set})
    server.start()
    try:
        assert ready.wait(30)
        yield server
    finally:
        seq.stop.set()
        server.join(30)
        seq.db.dispose()


def _look_again(ledger: Ledger) -> None:
    """Have `ledger` look for a sequencer at its next request: it looked, and found none, before
    the test started one (a client looks again only `ABSENT_SECONDS` later)."""
    assert ledger.sequencer is not None
    ledger.sequencer._absent_until = 0.0


def _names(ledger: Ledger) -> dict[str, int]:
    """Every name the script uses, interned in a fixed order; their ids."""
    for i, account in enumerate(ACCOUNTS):
        ledger.commit([draw(account, 1)], key=f"names{i}", actor="alice", now=T0)
    return dict(ledger.db.names.ids)


def _request(
    ids: dict[str, int], n: int, kind: str, d: Any, key: str, order: str | None, at: dt.datetime
) -> tuple[str | bytes | None, ...]:
    """`ledger_draw_one`'s arguments for one draw, as `Ledger` builds them."""
    expires = iso(at + HOUR) if kind == "reserve" else None
    fp = draws_fingerprint(kind, [d], order)
    amount = int(d.amount * 10**6)
    names = (ids["alice"], ids[d.account], ids[d.citation])
    return _one_params(kind, key, bytes.fromhex(fp), "alice", order, f"txn{n}", iso(at), expires,
                       d.account, str(amount), _limit(d), d.citation, names)  # fmt: skip


def _limit(d: Any) -> str | None:
    return None if d.limit is None else str(int(d.limit * 10**6))


def _script(ids: dict[str, int]) -> list[tuple[str | bytes | None, ...]]:
    a, b, c, d, e, f = ACCOUNTS
    return [
        _request(ids, 1, "reserve", draw(a, "1.5", 10), "r1", "o1", T0),
        _request(ids, 2, "commit", draw(c, 2), "c1", None, T0),  # no cap
        _request(ids, 3, "commit", draw(b, 7, 5), "c2", "o3", T0),  # refused: 1 + 7 > 5
        _request(ids, 4, "reserve", draw(a, 1, 10), "r2", None, T0),  # a again: after r1
        _request(ids, 5, "commit", draw(f, 1, 10), "r1", None, T0),  # r1 again: deferred
        _request(ids, 6, "reserve", draw(e, 1, 10), "r3", None, T0 + 2 * HOUR),  # r1's hold lapsed
        _request(ids, 7, "commit", draw(d, 2, 10), "c3", "o7", T0),
        _request(ids, 8, "commit", draw(b, 1, 5), "names1", None, T0),  # b again; a recorded key
    ]


def _tables(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = {
            table: [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]
            for table, key in TABLES.items()
        }
        rows["ledger_entries"] = [tuple(r) for r in conn.execute(t.entry_select().order_by("seq"))]
    engine.dispose()
    return rows


def test_a_batch_writes_what_its_requests_write_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """One `ledger_draw_set_sync` call for a script of every outcome: the same answers, and
    the same rows (entries with their hashes), as `ledger_draw_one` called once per
    request in the order the batch appended them; a repeated key waits for the next call."""
    assert PG_URL
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter) % 100))
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        script = _script(_names(ledger))
        seq = Sequencer(ledger.db)
        fields = [decode_request(encode_request(p)[4:].decode()) for p in script]
        first = seq._call(fields)
        deferred = [f for f, a in zip(fields, first, strict=True) if a is None]
        assert [a is None for a in first] == [False] * 4 + [True] + [False] * 3
        second = seq._call(deferred)
        answers = [a for a in first if a is not None] + second
        assert verify(ledger).ok
    batched = _tables(PG_URL)

    _reset_pg(PG_URL)
    counter = itertools.count(1)
    order = [0, 1, 2, 3, 5, 6, 7, 4]  # as the two calls appended them
    with Ledger(PG_URL) as ledger:
        assert _names(ledger) == _names_ids(batched)
        one_by_one = ["\x1e".join(f or "" for f in draw_one(ledger.db, script[i])) for i in order]
        assert verify(ledger).ok
    statuses = [a.split("\x1e")[0] for a in answers if a]
    assert statuses == ["ok", "ok", "limit", "ok", "sweep", "ok", "replay", "replay"]
    for n, (mine, theirs) in enumerate(zip(answers, one_by_one, strict=True)):
        assert mine is not None
        *ours, carried = mine.split("\x1e")
        its = theirs.split("\x1e")
        assert carried == ("8" if n < 7 else "1")  # the requests its call carried
        if ours[0] == "ok":
            assert ours == its
        elif ours[0] == "limit":  # the client reads which draw, the balance and the limit
            assert [ours[i] for i in (0, 3, 4, 5)] == [its[i] for i in (0, 3, 4, 5)]
        else:  # 'replay' and 'sweep': the client takes the general path
            assert ours[0] == its[0]
    assert _tables(PG_URL) == batched
    assert len(batched["ledger_entries"]) == len(ACCOUNTS) + 4


def test_requests_on_one_account_are_decided_in_one_call_as_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many requests on one account (a cap drawn by many clients) in one call: each decided on
    the balance the ones before it left - the cap reached midway, a draw with no cap of its own
    keeping the account's - with the same answers and rows as one by one."""
    assert PG_URL
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter) % 100))
    _reset_pg(PG_URL)
    with Ledger(PG_URL) as ledger:
        ids = _names(ledger)  # each account starts with 1 committed
        a, b, *_ = ACCOUNTS
        script = [
            _request(ids, 1, "commit", draw(a, 1, 4), "h1", None, T0),  # 2 of 4
            _request(ids, 2, "reserve", draw(a, 1, 4), "h2", "o2", T0),  # 3 of 4
            _request(ids, 3, "commit", draw(b, 1, 3), "h3", None, T0),  # another account
            _request(ids, 4, "commit", draw(a, 2, 4), "h4", None, T0),  # 5 > 4: refused
            _request(ids, 5, "commit", draw(a, 1), "h5", None, T0),  # no cap: 4, cap kept
            _request(ids, 6, "reserve", draw(a, 1, 4), "h6", None, T0),  # 5 > 4: refused
            _request(ids, 7, "commit", draw(b, 1, 3), "h7", None, T0),  # 3 of 3
        ]
        fields = [decode_request(encode_request(p)[4:].decode()) for p in script]
        answers = Sequencer(ledger.db)._call(fields)
        assert verify(ledger).ok
        assert (ledger.balance(a).committed, ledger.balance(a).reserved) == (3, 1)
        assert ledger.balance(a).limit == 4 and ledger.balance(b).committed == 3
    batched = _tables(PG_URL)
    _reset_pg(PG_URL)
    counter = itertools.count(1)
    with Ledger(PG_URL) as ledger:
        _names(ledger)
        one_by_one = [draw_one(ledger.db, p) for p in script]
    assert _tables(PG_URL) == batched
    statuses = [x and x.split("\x1e")[0] for x in answers]
    assert statuses == ["ok", "ok", "ok", "limit", "ok", "limit", "ok"]
    for mine, theirs in zip(answers, one_by_one, strict=True):
        assert mine is not None
        ours, its = mine.split("\x1e")[:7], ["" if f is None else f for f in theirs]
        assert (
            ours == its
            if ours[0] == "ok"
            else [ours[i] for i in (0, 4, 5)] == [its[i] for i in (0, 4, 5)]
        )


def _unnamed(actor: str, d: Any, key: str, n: int, ids: tuple[int | None, ...]) -> list[str]:
    """A commitment's request fields with only the name ids in `ids` (None: not sent)."""
    fp = draws_fingerprint("commit", [d], None)
    amount = int(d.amount * 10**6)
    params = _one_params("commit", key, bytes.fromhex(fp), actor, None, f"txn{n}", iso(T0), None,
                         d.account, str(amount), _limit(d), d.citation, ids)  # fmt: skip
    return decode_request(encode_request(params)[4:].decode())


def test_a_batch_gives_names_the_client_has_not_seen_their_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Requests sent without the id of a name (their client has not seen it): the call gives
    each name of an accepted request its id - the committed one, else the next, in request
    order - and returns them with the answer; a refused request's new name gets none. The rows
    are those `ledger_draw_one` writes once the ids are known."""
    assert PG_URL
    counter = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(counter) % 100))
    _reset_pg(PG_URL)
    new1, new2, a = "lpp/new1/2025", "lpp/new2/2025", ACCOUNTS[0]
    with Ledger(PG_URL) as ledger:
        ids = _names(ledger)
        cit = ids["test § 740.29"]
        script = [
            _unnamed("bob", draw(new1, 1, 5), "u1", 1, (None, None, cit)),
            _unnamed("alice", draw(a, 1, 5), "u2", 2, (None, None, None)),  # all committed
            _unnamed("bob", draw(new2, 9, 5), "u3", 3, (None, None, None)),  # refused
            _unnamed("bob", draw(new1, 1, 5), "u4", 4, (None, None, None)),  # as u1's
        ]
        answers = Sequencer(ledger.db)._call(script)
        assert verify(ledger).ok
        assert ledger.used(new1) == 2 and ledger.used(a) == 2
    bob, n1 = max(ids.values()) + 1, max(ids.values()) + 2
    named = {name: i for i, name in _tables(PG_URL)["ledger_names"]}
    assert named == {**ids, "bob": bob, new1: n1}  # none for new2
    fields = [x.split("\x1e") for x in answers if x is not None]
    assert [f[0] for f in fields] == ["ok", "ok", "limit", "ok"]
    assert [f[6] for f in fields] == [
        f"{bob}\x1f{n1}\x1f{cit}",
        f"{ids['alice']}\x1f{ids[a]}\x1f{cit}",
        "",
        f"{bob}\x1f{n1}\x1f{cit}",
    ]
    batched = _tables(PG_URL)

    _reset_pg(PG_URL)
    counter = itertools.count(1)
    with Ledger(PG_URL) as ledger:
        _names(ledger)
        with ledger.db.engine.begin() as conn:
            for name in ("bob", new1):
                conn.execute(text("SELECT ledger_name_id(:n)"), {"n": name})
        known = [(bob, n1, cit), (ids["alice"], ids[a], cit), None, (bob, n1, cit)]
        for fields_, given in zip(script, known, strict=True):
            if given is not None:
                params = [None if not f and k in _sequencer.NULLABLE else f
                          for k, f in enumerate(fields_)]  # fmt: skip
                params[11:14] = map(str, given)
                params[1] = bytes.fromhex(fields_[1])
                draw_one(ledger.db, tuple(params))
    assert _tables(PG_URL) == batched


def test_a_client_new_to_every_name_sends_no_lookup(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client process that knows no name's id goes through the sequencer at once - no lookup
    of its own, no write past it - and knows the ids from the answer: its next request carries
    them."""
    assert PG_URL
    with Ledger(PG_URL) as first:
        first.commit([draw("lpp/a/2025", 1)], key="k0", actor="alice", now=T0)
    direct: list[str] = []
    call = Database.call
    monkeypatch.setattr(Database, "call", lambda db, sql, p: direct.append(sql) or call(db, sql, p))
    sent: list[Any] = []
    relay = SequencerClient.call
    monkeypatch.setattr(SequencerClient, "call", lambda c, p: sent.append(p) or relay(c, p))
    seq = Sequencer(Database(PG_URL), sock)
    with in_thread(seq), Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/new/2025", 1, 10)], key="k1", actor="carol", hold=HOUR)
        ledger.reserve([draw("lpp/a/2025", 1, 10)], key="k2", actor="carol", hold=HOUR)
        ledger.reserve([draw("lpp/new/2025", 1, 10)], key="k3", actor="carol", hold=HOUR)
        assert direct == [] and ledger.sequencer is not None and ledger.sequencer.calls == 3
        assert [p[11:14].count(None) for p in sent] == [3, 1, 0]  # carol known after k1
        assert {"carol", "lpp/new/2025", "lpp/a/2025"} <= set(ledger.db.names.ids)
        assert ledger.used("lpp/new/2025") == 2 and verify(ledger).ok


def test_a_call_that_writes_nothing_waits_for_the_flush(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call that wrote something and committed synchronously is durable when it returns, and
    its answers go at once; one that wrote nothing (every request refused), or whose commit was
    asynchronous, is followed by the WAL barrier, and its answers wait for it: they were read
    from state another writer may not have flushed yet. Batches (`_call`), and a request alone
    through the loop (`ledger_draw_one`)."""
    assert PG_URL
    sent: list[str] = []
    send = _sequencer._Link.send

    def record(link: Any, sql: str, params: Any, items: Any) -> None:
        sent.append(sql)
        send(link, sql, params, items)

    monkeypatch.setattr(_sequencer._Link, "send", record)
    with Ledger(PG_URL) as ledger:
        ids = _names(ledger)
        a, b, *_ = ACCOUNTS
        seq = Sequencer(ledger.db, sock)
        refused = [_request(ids, 1, "commit", draw(a, 9, 5), "x1", None, T0),
                   _request(ids, 2, "commit", draw(b, 9, 5), "x2", None, T0)]  # fmt: skip
        fields = [decode_request(encode_request(p)[4:].decode()) for p in refused]
        assert [x and x.split("\x1e")[0] for x in seq._call(fields)] == ["limit", "limit"]
        assert sent == [SET_CALL, WAL_BARRIER]
        sent.clear()
        mixed = [_request(ids, 3, "commit", draw(a, 1, 5), "x3", None, T0), refused[1]]
        fields = [decode_request(encode_request(p)[4:].decode()) for p in mixed]
        assert [x and x.split("\x1e")[0] for x in seq._call(fields)] == ["ok", "limit"]
        assert sent == [SET_CALL]
        assert ledger.used(a) == 2 and ledger.used(b) == 1

        with in_thread(seq):
            _look_again(ledger)
            sent.clear()
            with pytest.raises(QuotaExceeded):
                ledger.reserve([draw(b, 9, 5)], key="x4", actor="alice", hold=HOUR)
            assert sent == [ONE_FN_CALL, WAL_BARRIER]
            sent.clear()
            ledger.reserve([draw(a, 1, 5)], key="x5", actor="alice", hold=HOUR)
            assert sent == [ONE_FN_CALL]  # the lock was free: committed synchronously
        assert ledger.sequencer is not None and ledger.sequencer.calls == 2
        assert ledger.used(a) == 3 and verify(ledger).ok


def _names_ids(rows: dict[str, Any]) -> dict[str, int]:
    return {name: i for i, name in rows["ledger_names"]}


def _seq_racer(url: str, proc: int, n: int, folder: str, cap: int) -> None:
    ledger = Ledger(url)
    fd = os.open(f"{folder}/ack-{proc}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for i in range(n):
        key = f"s{proc}-{i}"
        account = f"lpp/hot{(proc + i) % 4}/2025"
        try:
            ledger.reserve([draw(account, 1, cap)], key=key, actor=f"p{proc}", hold=HOUR)
        except QuotaExceeded:
            continue
        os.write(fd, f"{key} {account}\n".encode())
    assert ledger.sequencer is not None
    # Answered through a sequencer, and sequencers this process started (`test_autoserve`).
    os.write(fd, f"sequenced {ledger.sequencer.calls} {ledger.sequencer.summoned}\n".encode())
    os.close(fd)
    ledger.close()


def test_processes_through_the_sequencer_never_overdraw(
    tmp_path: Path, sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 processes × 250 reservations on 4 accounts capped at 150 each, through one sequencer:
    exactly 150 acknowledged per account, each recorded, balances their sum, `verify` passes,
    and the sequencer carried several requests per call."""
    assert PG_URL
    # Every client stays with the sequencer, even one that finds itself alone for a while (the
    # first to start, the last to finish): this race is the sequencer's.
    monkeypatch.setattr(_sequencer, "ALONE_CALLS", 10**9)
    Ledger(PG_URL).close()
    cap = 150
    with serving(PG_URL, sock):
        sequenced = race(tmp_path, cap, 250)
    stopped = sock.with_suffix(".log").read_text()
    assert sum(int(calls) for calls, _ in sequenced) >= 3 * cap, "the clients did not find it"
    found = re.search(r"stopped: ([\d,]+) requests in ([\d,]+) calls", stopped)
    assert found, stopped
    requests, calls = (int(x.replace(",", "")) for x in found.groups())
    assert calls < requests, stopped  # combined


def race(
    folder: Path, cap: int, n: int, meanwhile: Callable[[], None] | None = None
) -> list[list[str]]:
    """8 processes × `n` reservations on 4 accounts capped at `cap` each (`_seq_racer`),
    `meanwhile` run once they have started. Checks that exactly `cap` were acknowledged per
    account, each recorded and none invented, the balances their sum, and that `verify` passes;
    returns each process's figures: calls answered through a sequencer, sequencers started."""
    assert PG_URL
    ctx = fork_context()
    workers = [
        ctx.Process(target=_seq_racer, args=(PG_URL, p, n, str(folder), cap)) for p in range(8)
    ]
    for w in workers:
        w.start()
    if meanwhile is not None:
        meanwhile()
    for w in workers:
        w.join(timeout=300)
        assert w.exitcode == 0
    lines = _acked(folder)
    acked = [line.split() for line in lines if not line.startswith("sequenced")]
    with Ledger(PG_URL) as ledger:
        for a in range(4):
            account = f"lpp/hot{a}/2025"
            assert sum(1 for _, acc in acked if acc == account) == cap
            assert ledger.used(account) == cap
        assert _recorded_keys(PG_URL) == {key for key, _ in acked}
        report = verify(ledger)
        assert report.ok and report.entries == 4 * cap, report.problems
    return [line.split()[1:] for line in lines if line.startswith("sequenced")]


def test_clients_write_by_themselves_when_the_sequencer_is_killed(sock: Path) -> None:
    """A sequencer killed with SIGKILL leaves its socket behind: clients then write directly
    (every reservation acknowledged once, none lost), and a new sequencer takes the socket
    over."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="t", hold=HOUR)
        with serving(PG_URL, sock) as server:
            _look_again(ledger)
            for i in range(1, 6):
                ledger.reserve([draw("lpp/a/2025", 1, 100)], key=f"k{i}", actor="t", hold=HOUR)
            assert ledger.sequencer is not None and ledger.sequencer.calls == 5
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
            assert sock.exists()  # stale
            for i in range(6, 11):
                ledger.reserve([draw("lpp/a/2025", 1, 100)], key=f"k{i}", actor="t", hold=HOUR)
            assert ledger.sequencer.calls == 5
        # A replay of a request the sequencer recorded is answered as recorded.
        again = ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k3", actor="t", hold=HOUR)
        assert again.replayed
        assert ledger.used("lpp/a/2025") == 11
        assert verify(ledger).ok
        with serving(PG_URL, sock):  # the stale socket is replaced
            _look_again(ledger)
            ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k11", actor="t", hold=HOUR)
            assert ledger.sequencer.calls == 6
        assert not sock.exists()  # removed on SIGTERM


def test_a_lone_client_writes_by_itself(sock: Path) -> None:
    """A client whose requests keep coming back alone in their calls (no other process
    writes) stops going through the sequencer for a while: by itself it skips a hop."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="t", hold=HOUR)
        with serving(PG_URL, sock):
            _look_again(ledger)
            for i in range(1, ALONE_CALLS + 6):
                ledger.reserve([draw("lpp/a/2025", 1, 100)], key=f"k{i}", actor="t", hold=HOUR)
            assert ledger.sequencer is not None and ledger.sequencer.calls == ALONE_CALLS
            assert ledger.sequencer._absent_until > time.monotonic()
        assert ledger.used("lpp/a/2025") == ALONE_CALLS + 6
        assert verify(ledger).ok


def test_a_sequencer_serves_only_its_own_database(tmp_path: Path) -> None:
    """A client naming another database is told so and writes by itself; a malformed request
    closes its connection; a second sequencer on a live socket is refused; SQLite has none."""
    assert PG_URL
    _reset_pg(PG_URL)
    sock = tmp_path / "seq.sock"
    Ledger(PG_URL).close()
    with serving(PG_URL, sock):
        os.environ[ENV_SOCKET] = str(sock)
        try:
            other = SequencerClient(PG_URL + "_other")
            assert other.call(("x",) * 15) is None  # refused at the greeting
            assert other._absent_until > 0
        finally:
            del os.environ[ENV_SOCKET]
        raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        raw.connect(str(sock))
        raw.sendall(_frame("hello\x1e" + SequencerClient(PG_URL).digest))
        assert raw.recv(100).endswith(b"ok")
        raw.sendall(_frame("0\x1eonly three\x1efields\x1ehere"))
        assert raw.recv(100) == b""  # closed
        raw.close()
        with pytest.raises(InputError, match="already listens"):
            Sequencer(Database(PG_URL), sock)._listen()
    with pytest.raises(InputError, match="PostgreSQL"):
        Sequencer(Database(f"sqlite:///{tmp_path / 'x.db'}"))


def test_requests_survive_the_wire_unchanged() -> None:
    params = ("k", b"\x00\xff", None, "t", "2025", None, "0", "lpp/a", "10", None, "c", "1",
              "2", "3", "\x1ftail\x1f")  # fmt: skip
    fields = decode_request(encode_request(params)[4:].decode())
    assert fields == ["k", "00ff", "", "t", "2025", "", "0", "lpp/a", "10", "", "c", "1", "2",
                      "3", "\x1ftail\x1f"]  # fmt: skip
    with pytest.raises(ValueError, match="may not be NULL"):
        decode_request(encode_request(("k", None, *params[2:]))[4:].decode())
    with pytest.raises(ValueError, match="empty"):
        decode_request(encode_request(("", *params[1:]))[4:].decode())


def test_a_failed_batch_call_leaves_each_client_to_write_by_itself(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sequencer's call fails (here, in the server), or no connection can be opened for the
    next: each of its clients is told `retry` and writes directly; the sequencer opens a new
    connection and serves the next call."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="t", hold=HOUR)
        seq = Sequencer(Database(PG_URL), sock)
        statement = _sequencer.batch_statement
        monkeypatch.setattr(_sequencer, "batch_statement", lambda batch: ("SELECT 1/0", ()))
        with in_thread(seq):
            _look_again(ledger)
            receipt = ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k1", actor="t", hold=HOUR)
            assert seq.calls == 1 and seq.requests == 1  # it was asked, and failed
            assert ledger.sequencer is not None and ledger.sequencer.calls == 0
            assert receipt.seqs == (2,)
            monkeypatch.setattr(_sequencer, "batch_statement", statement)

            def unreachable(link: Any, db: Any) -> None:
                raise OSError("connection refused")

            link = _sequencer._Link.__init__
            monkeypatch.setattr(_sequencer._Link, "__init__", unreachable)  # no new connection
            direct = ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k2", actor="t", hold=HOUR)
            assert ledger.sequencer.calls == 0 and direct.seqs == (3,)
            monkeypatch.setattr(_sequencer._Link, "__init__", link)
            again = ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k3", actor="t", hold=HOUR)
            assert ledger.sequencer.calls == 1 and again.seqs == (4,)
        assert seq.calls == 3
        assert ledger.used("lpp/a/2025") == 4
        assert verify(ledger).ok


def test_the_warm_up_writes_nothing(sock: Path) -> None:
    """Before it takes requests, the sequencer runs each of its calls once on its connection
    (a batch of none, one request over a cap of 0): every table is as it was, the chain intact,
    and the first request is served through the warmed connection."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="alice", hold=HOUR)
    before = _tables(PG_URL)
    seq = Sequencer(Database(PG_URL), sock)
    with in_thread(seq):
        assert _tables(PG_URL) == before
        assert seq._link is not None and not seq._link.busy
        with Ledger(PG_URL) as ledger:
            ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k1", actor="alice", hold=HOUR)
            assert ledger.sequencer is not None and ledger.sequencer.calls == 1
    with Ledger(PG_URL) as ledger:
        assert ledger.used("lpp/a/2025") == 2 and verify(ledger).ok


def test_a_stopped_sequencer_answers_the_call_in_flight(sock: Path) -> None:
    """Stopped while a call is in the server (here, waiting for the write lock another session
    holds), the sequencer still waits for it and answers its client before it returns."""
    assert PG_URL
    from aiexport.ledger._sql import WRITE_LOCK_KEY

    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="t", hold=HOUR)
        seq = Sequencer(Database(PG_URL), sock)
        engine = create_engine(PG_URL)
        holder = engine.connect()
        got: list[Any] = []
        with in_thread(seq) as server:
            _look_again(ledger)
            try:
                holder.execute(text(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})"))
                client = threading.Thread(
                    target=lambda: got.append(
                        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k1", actor="t", hold=HOUR)
                    )
                )
                client.start()
                deadline = time.monotonic() + 30
                while not (seq._link and seq._link.busy):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                seq.stop.set()
                time.sleep(0.3)
                assert server.is_alive() and not got  # waiting for the call in flight
            finally:
                holder.execute(text(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})"))
                holder.close()
                engine.dispose()
        client.join(30)
        assert not server.is_alive()
        assert got[0].seqs == (2,) and ledger.sequencer is not None and ledger.sequencer.calls == 1
        assert verify(ledger).ok


def test_a_connection_the_server_closes_between_calls_is_replaced(sock: Path) -> None:
    """The server ends the sequencer's idle connection (a restart, an administrator): the
    sequencer notices, drops it rather than polling a dead socket, and serves the next request
    through a new one."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k0", actor="t", hold=HOUR)
        seq = Sequencer(Database(PG_URL), sock)
        engine = create_engine(PG_URL)
        with in_thread(seq):
            _look_again(ledger)
            assert seq._link is not None
            pid = seq._link.pgconn.backend_pid
            with engine.connect() as conn:
                conn.execute(text(f"SELECT pg_terminate_backend({pid})"))
            engine.dispose()
            deadline = time.monotonic() + 30
            while seq._link is not None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            receipt = ledger.reserve([draw("lpp/a/2025", 1, 100)], key="k1", actor="t", hold=HOUR)
            assert ledger.sequencer is not None and ledger.sequencer.calls == 1
            assert seq._link is not None and seq._link.pgconn.backend_pid != pid
        assert receipt.seqs == (2,) and verify(ledger).ok
