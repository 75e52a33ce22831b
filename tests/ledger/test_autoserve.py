"""PostgreSQL: clients that find each other writing at once start a sequencer by themselves
(`SequencerClient.summon`): one per socket however many ask, handed its lock; it stops when
idle; the clients never overdraw, whether it comes, serves or is killed."""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aiexport.errors import InputError, QuotaExceeded
from aiexport.ledger import Ledger, _sequencer, verify
from aiexport.ledger._db import Database
from aiexport.ledger._sequencer import (
    ENV_AUTOSERVE,
    SUMMON_AFTER,
    Sequencer,
    SequencerClient,
    holder,
    listening,
    lock_path,
    log_path,
    stop_serving,
)

from .conftest import PG_URL, draw
from .test_concurrency import _recorded_keys
from .test_sequencer import HOUR, _look_again, race

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="AIEXPORT_TEST_PG_URL is not set"),
]


@pytest.fixture
def sock(sock: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty ledger whose clients start a sequencer when they meet, on a socket of the
    test's own; whatever sequencer serves it at the end is stopped. They fork it whatever their
    size (the test session grows past `FORK_MAX_RSS`; one test starts a new interpreter)."""
    assert PG_URL
    Ledger(PG_URL).close()
    monkeypatch.setenv(ENV_AUTOSERVE, "1")
    monkeypatch.setattr(_sequencer, "FORK_MAX_RSS", 1 << 62)
    yield sock
    stop_serving(sock)


def _log(sock: Path) -> str:
    log = log_path(sock)
    return log.read_text() if log.exists() else ""


def _wait(what: str, ready: object, sock: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}; log: {_log(sock)}"
        time.sleep(0.02)


def _kill_once_serving(sock: Path) -> Callable[[], None]:
    """Kill (SIGKILL) the sequencer of `sock` once it listens."""

    def kill() -> None:
        _wait("no sequencer started", lambda: listening(sock), sock)
        pid = holder(sock)
        assert pid
        os.kill(pid, signal.SIGKILL)

    return kill


def test_racing_processes_start_one_sequencer_and_never_overdraw(
    tmp_path: Path, sock: Path
) -> None:
    """8 processes × 1,000 reservations on 4 accounts capped at 500 each, no sequencer at
    first: one of them starts one, the others find it and send their requests through it, and
    exactly 500 are acknowledged per account."""
    sequenced = race(tmp_path, cap=500, n=1000)
    assert sum(int(summoned) for _, summoned in sequenced) == 1, _log(sock)
    through = sum(int(calls) for calls, _ in sequenced)
    assert through > 0 and sum(int(calls) > 0 for calls, _ in sequenced) >= 2, _log(sock)
    assert holder(sock), "the sequencer stopped before its idle time"
    assert stop_serving(sock)
    assert not sock.exists() and holder(sock) is None
    log = _log(sock)
    assert "sequencer for postgresql+psycopg://postgres:***@" in log, log
    assert "stopped: " in log, log
    assert "postgres:postgres@" not in log  # the password is never written


def test_clients_carry_on_when_the_sequencer_they_started_is_killed(
    tmp_path: Path, sock: Path
) -> None:
    """A sequencer the clients started, killed with SIGKILL while they race: they write by
    themselves (the kill released its lock; one of them may start another), and still exactly
    the cap is acknowledged per account, each recorded, and the chain verifies."""
    race(tmp_path, cap=400, n=1000, meanwhile=_kill_once_serving(sock))


def test_many_clients_asking_at_once_start_one(sock: Path) -> None:
    """Clients that ask at the same moment start one sequencer between them; an operator's
    `aiexport ledger serve` on the same socket is then refused, naming its pid."""
    assert PG_URL
    clients = [SequencerClient(PG_URL) for _ in range(6)]
    go = threading.Barrier(len(clients))
    started: list[bool] = []

    def ask(client: SequencerClient) -> None:
        go.wait()
        started.append(client.summon())

    threads = [threading.Thread(target=ask, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(started) == [False] * 5 + [True]
    _wait("the sequencer did not start", lambda: listening(sock), sock)
    pid = holder(sock)
    assert pid and pid != os.getpid()
    assert all(not c.summon() for c in clients)  # at most one per SUMMON_EVERY per client
    with pytest.raises(InputError, match=f"already serves .*pid {pid}"):
        Sequencer(Database(PG_URL), sock).serve()
    assert listening(sock) and holder(sock) == pid  # the refusal left it alone
    assert stop_serving(sock)
    assert not stop_serving(sock)


def test_a_started_sequencer_stops_when_idle(sock: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sequencer a client started serves, then stops by itself once no request has come for
    its idle time, removing its socket and freeing its lock; the client then writes by itself."""
    assert PG_URL
    monkeypatch.setattr(_sequencer, "IDLE_EXIT", 1.5)
    with Ledger(PG_URL) as ledger:
        assert ledger.sequencer is not None and ledger.sequencer.summon()
        _wait("the sequencer did not start", lambda: listening(sock), sock)
        _look_again(ledger)
        ledger.reserve([draw("lpp/a/2025", 1, 10)], key="k1", actor="t", hold=HOUR)
        assert ledger.sequencer.calls == 1
        _wait("the sequencer did not stop", lambda: holder(sock) is None, sock, seconds=30)
        assert not sock.exists()
        assert "stopped (1.5 s with no request): 1 requests in 1 calls" in _log(sock)
        ledger.reserve([draw("lpp/a/2025", 1, 10)], key="k2", actor="t", hold=HOUR)
        assert ledger.sequencer.calls == 1
        assert ledger.used("lpp/a/2025") == 2
        assert verify(ledger).ok


def test_a_lone_writer_never_starts_one(sock: Path) -> None:
    """One process writing alone always finds the write lock free: it starts no sequencer."""
    assert PG_URL
    with Ledger(PG_URL) as ledger:
        for i in range(3 * SUMMON_AFTER):
            ledger.reserve([draw("lpp/a/2025", 1, 100)], key=f"k{i}", actor="t", hold=HOUR)
        assert ledger.sequencer is not None and ledger.sequencer.summoned == 0
    assert holder(sock) is None and not sock.exists()


def test_contention_starts_one_unless_turned_off(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls that find the lock taken start a sequencer once they outnumber those that find it
    free by `SUMMON_AFTER`; with `AIEXPORT_LEDGER_AUTOSERVE=0`, never."""
    assert PG_URL
    monkeypatch.setenv(ENV_AUTOSERVE, "0")
    off = SequencerClient(PG_URL)
    for _ in range(3 * SUMMON_AFTER):
        off.contended(True)
    assert off.summoned == 0 and not off.summon()
    assert holder(sock) is None and not lock_path(sock).exists()
    monkeypatch.setenv(ENV_AUTOSERVE, "1")
    on = SequencerClient(PG_URL)
    for _ in range(SUMMON_AFTER - 1):
        on.contended(True)
        on.contended(False)  # a free lock cancels a taken one
    assert on.summoned == 0
    for _ in range(SUMMON_AFTER):
        on.contended(True)
    assert on.summoned == 1
    _wait("the sequencer did not start", lambda: listening(sock), sock)


def test_a_large_client_starts_a_new_interpreter_instead(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client too large to fork (`FORK_MAX_RSS`) starts `aiexport ledger serve --idle-exit`
    instead, handing it the lock the same way: it serves, and an operator's second one is
    refused."""
    assert PG_URL
    monkeypatch.setattr(_sequencer, "FORK_MAX_RSS", 0)
    with Ledger(PG_URL) as ledger:
        assert ledger.sequencer is not None and ledger.sequencer.summon()
        pid = ledger.sequencer._started[0]
        _wait("the sequencer did not start", lambda: listening(sock), sock)
        assert holder(sock) == pid
        with pytest.raises(InputError, match=f"already serves .*pid {pid}"):
            Sequencer(Database(PG_URL), sock).serve()
        _look_again(ledger)
        ledger.reserve([draw("lpp/a/2025", 1, 10)], key="k1", actor="t", hold=HOUR)
        assert ledger.sequencer.calls == 1
    assert stop_serving(sock)
    assert "stopped: 1 requests in 1 calls" in _log(sock)


def test_a_forked_sequencer_keeps_none_of_the_clients_descriptors(sock: Path) -> None:
    """The sequencer forked from a client holds none of the client's descriptors: a pipe the
    client closes reaches its reader's end of file, and a port the client listened on is free
    again once the client closes it."""
    assert PG_URL
    read, write = os.pipe()
    port = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    port.bind(("127.0.0.1", 0))
    port.listen()
    address = port.getsockname()
    try:
        client = SequencerClient(PG_URL)
        assert client.summon()
        _wait("the sequencer did not start", lambda: listening(sock), sock)
        os.close(write)
        port.close()
        ready, _, _ = select.select([read], [], [], 10)
        assert ready and os.read(read, 1) == b"", "the sequencer holds the pipe open"
        again = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            again.bind(address)  # no SO_REUSEADDR: refused while any process holds it
        finally:
            again.close()
    finally:
        os.close(read)
    assert holder(sock) == client._started[0]


def test_threads_of_one_process_start_one_and_go_through_it(sock: Path) -> None:
    """8 threads sharing one `Ledger`, whose draws the process combines by itself at first:
    its batches of several start a sequencer, and the threads' requests then go through it
    (most of them), capped as before: exactly the cap acknowledged, each recorded, `verify`
    passes."""
    assert PG_URL
    cap, per = 1000, 300
    acked: list[tuple[str, str]] = []
    with Ledger(PG_URL) as ledger:
        go = threading.Barrier(8)

        def run(t: int) -> None:
            go.wait()
            for i in range(per):
                key, account = f"t{t}-{i}", f"lpp/hot{(t + i) % 2}/2025"
                try:
                    ledger.reserve([draw(account, 1, cap)], key=key, actor=f"t{t}", hold=HOUR)
                except QuotaExceeded:
                    continue
                acked.append((key, account))  # list.append: atomic under the GIL

        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert ledger.sequencer is not None and ledger.sequencer.summoned == 1, _log(sock)
        # Most of the accepted ones (a refusal of a cap known to be full is the client's own).
        assert ledger.sequencer.calls >= cap, (ledger.sequencer.calls, _log(sock))
        for a in range(2):
            account = f"lpp/hot{a}/2025"
            assert sum(1 for _, acc in acked if acc == account) == cap
            assert ledger.used(account) == cap
        report = verify(ledger)
        assert report.ok and report.entries == 2 * cap, report.problems
    assert _recorded_keys(PG_URL) == {key for key, _ in acked}


def test_a_sequencer_that_never_listens_is_killed(
    sock: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sequencer a client started that is not listening `START_SECONDS` later (stuck, say,
    on a lock a thread of the client held at the fork) is killed by that client at its next
    call, and its lock is free again for another to start."""
    assert PG_URL
    monkeypatch.setattr(_sequencer, "START_SECONDS", 0.5)
    monkeypatch.setattr(Sequencer, "serve", lambda self, ready=None: time.sleep(120))
    client = SequencerClient(PG_URL)
    assert client.summon()
    pid = client._started[0]
    _wait("no pid in the lock file", lambda: holder(sock) == pid, sock, seconds=10)
    time.sleep(0.6)
    assert not listening(sock)
    client.contended(False)  # a call by itself: the client looks at what it started
    _wait("the stuck sequencer was not killed", lambda: holder(sock) is None, sock, seconds=10)
    _wait("the stuck sequencer still runs", lambda: _gone(pid), sock, seconds=10)


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie too: whoever reaps orphans here may not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def test_calls_say_whether_they_found_the_write_lock_taken(sock: Path) -> None:
    """A call a client makes by itself tells it whether another writer held the write lock:
    a name's first use (`ledger_draw_set_queued`'s `queued`) and a draw on names it knows
    (`ledger_draw_one`'s `durable`), each once with the lock free and once with it taken."""
    assert PG_URL
    from sqlalchemy import create_engine, text

    from aiexport.ledger._sql import WRITE_LOCK_KEY

    engine = create_engine(PG_URL)
    told: list[bool] = []
    with Ledger(PG_URL) as ledger, engine.connect() as other:
        ledger.db.contention = told.append

        def reserve(key: str, account: str, taken: bool) -> None:
            if taken:
                other.execute(text(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})"))
                threading.Timer(
                    0.3,
                    lambda: other.execute(text(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})")),
                ).start()
            ledger.reserve([draw(account, 1, 10)], key=key, actor="t", hold=HOUR)

        reserve("k1", "lpp/a/2025", taken=False)  # names new to the process
        reserve("k2", "lpp/b/2025", taken=True)  # a new account: its first use again
        reserve("k3", "lpp/a/2025", taken=False)  # every name known
        reserve("k4", "lpp/b/2025", taken=True)
        assert told == [False, True, False, True]
        assert ledger.used("lpp/a/2025") == 2 and verify(ledger).ok
    engine.dispose()
