"""PostgreSQL: the sequencer, one process that sends many client processes' reservations as one
call (group commit).

Every ledger write holds the write lock (`_sql.LOCK`) while the server appends it: the hash
chain needs one order, and a cap check is sound only if no one draws between the check and the
write. With one transaction per request, 8 client processes on 2 cores spend most of the server's
time on what each transaction costs whatever its size (the lock, executor start-up, the commit,
the WAL barrier), taking turns on the lock. The in-process `Combiner` pays that once for many
threads; between processes there is no shared memory to combine in, so `aiexport ledger serve`
runs this loop: client processes on the same machine send it their one-draw requests (the
common shape, `ledger_draw_one`'s) over a Unix socket, and it sends every request
waiting at that moment as one call of `ledger_draw_set_queued` (`_pgdraw`), then answers each.
While a call runs, the next requests gather. A client sends the ids of the names it has seen
(actor, account, citation); the call looks up or gives the others and returns them, so that a
client new to a name needs no lookup of its own.

The loop never waits on the database: it sends a call without blocking (libpq's asynchronous
calls) and goes on reading and decoding the requests that arrive, so that the moment a call's
answer comes the next call goes out, and only then are the answers sent to their clients. The
server's work and the sequencer's then overlap instead of taking turns. Answering first, as the
loop did before, woke each client in turn, and on a machine with few cores each woken client
delayed the next call by its share of the CPU: half a millisecond a call, a fifth of the cycle
(8 client processes on 2 cores: 7% to 37% more reservations per second, four interleaved pairs
of runs).

Each request is answered as `ledger_draw_one` would have answered it alone, and only
once the batch is durable: its commit waits for the flush, and a call that wrote nothing (or a
request alone that found the lock taken, and committed asynchronously) is followed by the WAL
barrier before its answers go. Requests on the same account are decided in one call, in order,
each on the balance the ones before it left (the common case of a cap many clients draw on);
a request whose key an earlier request of the same batch has is sent in a later call.

Nothing depends on the sequencer being there: a client that finds no socket, cannot connect,
or loses the sequencer mid-request sends the request itself (its idempotency key makes that
safe: a request the sequencer did commit then comes back `replay`, and the general path returns
its original receipt). Writers that do not use it - other machines, other shapes of request,
SQLite - are serialised with it by the same lock in the database.

The socket lives in a directory only this user can enter (`$XDG_RUNTIME_DIR`, else the temporary
directory, `aiexport-<uid>/`), named after the database URL; `$AIEXPORT_LEDGER_SOCKET` names
another. A client's first message names the database (a digest of its URL without the
password), and a sequencer serving another one says so and is not used.

Frames are a 4-byte big-endian length and UTF-8 text. A request: the NULL fields as a hex
bitmask, then `ledger_draw_one`'s 15 arguments (the fingerprint as hex; the three name ids may
be NULL), all U+001E-separated (no ledger text may hold U+001E, `check_text`). An answer: that
function's row of 7 fields, NULL as empty (the last, the ids of the request's names when it
came without some, as `ledger_draw_set_queued` returns them), then the number of requests its
call carried, U+001E-separated; or `retry` alone when the call failed, and the client sends the
request itself.

A client whose requests keep coming back alone (`ALONE_CALLS` calls of one in a row: no other
process is writing) stops using the sequencer for `ABSENT_SECONDS`: by itself, a lone writer
skips a hop and is answered sooner (`bench/ledger.py`).

No one need start it. A client writing by itself that keeps meeting other writers - its calls
mostly find the write lock taken (`ledger_draw_one`'s `durable` false, `ledger_draw_set_queued`'s
`queued` true: other processes writing at the same time), or its threads' requests mostly come
in batches of several (`_combine.OneCombiner`), `SUMMON_AFTER` - starts one
(`SequencerClient.summon`): a process forked from the client (`_fork_sequencer`; a new
interpreter if the client is large), detached, that stops by itself once no request has come
for `IDLE_EXIT` seconds. One sequencer per socket: each holds an `flock` on the lock file beside
the socket (`<socket>.lock`, which holds its pid) while it serves; the client that starts one
takes that lock first and hands it to the new process, so that clients finding the lock taken
start none, and an operator's `aiexport ledger serve` meets a clear error instead of a second
sequencer. Its output goes to `<socket>.log`. `AIEXPORT_LEDGER_AUTOSERVE=0` turns this off. The
other clients notice its socket at their next call (a stat(2) each while they write by
themselves). 8 client processes, `bench/ledger.py`, two runs: 54 % and 52 % of the floor so,
30 % and 29 % each by themselves; 8 threads of one process, 60 % and 58 %, against 46 % and 42 %
combined in the process alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import select
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from aiexport.errors import InputError
from aiexport.ledger._db import Database, _error, _kept, _prepared
from aiexport.ledger._entries import iso, now_utc
from aiexport.ledger._pgdraw import ONE_ARGS, ONE_FN_CALL, SET_CALL, request_fields, set_answers
from aiexport.ledger._sql import WAL_BARRIER

Params = tuple[str | bytes | None, ...]
Row = tuple[str | None, ...]

ENV_SOCKET = "AIEXPORT_LEDGER_SOCKET"
ENV_AUTOSERVE = "AIEXPORT_LEDGER_AUTOSERVE"  # "0": clients never start a sequencer
NFIELDS = ONE_ARGS
NULLABLE = {2, 5, 9, 11, 12, 13}  # order id, hold expiry, limit; ids of names not yet seen
IDS = (11, 12, 13)  # the ids of the actor, the account and the citation
KEY = 0
MAX_BATCH = 64  # enough to amortise a call; the lock is never held long
MAX_FRAME = 1 << 20
RETRY = "retry"
ABSENT_SECONDS = 1.0  # a client looks for a sequencer again after this long without one
DRAIN_SECONDS = 30.0  # once stopped, how long the call in flight is waited for
ALONE_CALLS = 16  # calls that carried only this client's request, in a row, before it goes direct
SUMMON_AFTER = 8  # a client's contended calls in excess of its uncontended ones, to start one
SUMMON_EVERY = 60.0  # seconds: a client starts a sequencer at most this often
IDLE_EXIT = 30.0  # seconds without a request before a sequencer a client started stops
START_SECONDS = 20.0  # how long a sequencer a client started has to listen, or be killed
FORK_MAX_RSS = 512 << 20  # bytes: a larger client starts a new interpreter instead of a fork

_RS = "\x1e"
_LEN = struct.Struct("!I")
_BITS = tuple(1 << i for i in range(NFIELDS))  # a request's NULL fields, as a bitmask
log = logging.getLogger(__name__)


def database_digest(url: str) -> str:
    """The database a URL names, as a short digest: driver, user, host, port and database; not
    the password."""
    u = make_url(url)
    who = f"{u.get_backend_name()}|{u.username}|{u.host}|{u.port}|{u.database}"
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def socket_path(url: str) -> Path:
    """Where the sequencer of the ledger at `url` listens."""
    explicit = os.environ.get(ENV_SOCKET)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"aiexport-{os.getuid()}" / f"ledger-{database_digest(url)}.sock"


def lock_path(path: Path) -> Path:
    """The lock file a sequencer listening on `path` holds while it serves."""
    return path.with_name(path.name + ".lock")


def log_path(path: Path) -> Path:
    """The file a sequencer that a client started for socket `path` writes its output to."""
    return path.with_name(path.name + ".log")


def private_folder(path: Path) -> Path:
    """The folder of socket `path`, created if need be; InputError unless it is this user's
    alone (no one else may place a socket or a lock there)."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.stat(folder)
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InputError(f"{folder}: not a private directory of this user's")
    return folder


def claim(path: Path) -> int | None:
    """The lock of the sequencer of socket `path`, taken (an open descriptor holding an
    exclusive `flock`, which the process's exit releases however it ends); None when another
    process holds it."""
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)  # the last holder's pid is no one's now: "starting" until the next
    return fd


def _write_pid(lock: int) -> None:
    """Write this process's pid into the lock file it holds (`holder` reads it)."""
    os.ftruncate(lock, 0)
    os.pwrite(lock, f"{os.getpid()}\n".encode(), 0)


def holder(path: Path) -> int | None:
    """The pid of the process serving socket `path` (holding its lock), None when none is."""
    try:
        fd = os.open(lock_path(path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0  # 0: held, by a process starting up
        return None
    finally:
        os.close(fd)


def stop_serving(path: Path, timeout: float = 30.0) -> bool:
    """Stop the sequencer serving socket `path`, as an operator would (SIGTERM), and wait until
    its lock is free; whether one was serving."""
    pid = holder(path)
    if pid is None:
        return False
    deadline = time.monotonic() + timeout
    while not pid:  # starting: its pid comes once it has the lock
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sequencer of {path} gave no pid")
        time.sleep(0.02)
        pid = holder(path)
        if pid is None:
            return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    while holder(path) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the sequencer of {path} (pid {pid}) did not stop")
        time.sleep(0.02)
    return True


def autoserve() -> bool:
    """Whether clients start a sequencer when they find the write lock contended."""
    return os.environ.get(ENV_AUTOSERVE, "1").strip().lower() not in ("0", "off", "false", "no")


def listening(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket `path`."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _frame(text: str) -> bytes:
    data = text.encode()
    return _LEN.pack(len(data)) + data


def encode_request(params: Params) -> bytes:
    """A request frame for `ledger_draw_one`'s arguments `params`."""
    if len(params) != NFIELDS:
        raise ValueError(f"a request has {NFIELDS} fields, got {len(params)}")
    nulls = 0
    for bit, v in zip(_BITS, params, strict=True):
        if v is None:
            nulls |= bit
    return _frame(f"{nulls:x}{_RS}{_RS.join(request_fields(params))}")


def decode_request(text: str) -> list[str]:
    """The 15 fields of a request frame, NULL as empty; ValueError when malformed."""
    head, _, body = text.partition(_RS)
    fields = body.split(_RS)
    nulls = int(head, 16)
    if len(fields) != NFIELDS or nulls >> NFIELDS:
        raise ValueError("malformed request")
    if not nulls and "" not in fields:  # the common case, checked at C speed
        return fields
    for i, f in enumerate(fields):
        if nulls >> i & 1:
            if i not in NULLABLE or f:
                raise ValueError(f"field {i} may not be NULL")
        elif not f:
            raise ValueError(f"field {i} is empty")
    return fields


def _read_frame(sock: socket.socket, poller: select.poll) -> str | None:
    """The one frame a blocking socket is owed (a client has one request out at a time); None
    at end of stream.

    It waits in poll(2) for input, then reads. A process blocked in recv(2) on a Unix socket is
    also woken each time the peer reads what it sent (the socket has room to write again), and
    goes back to sleep: two context switches per request where one will do (8 client processes
    through the sequencer: 1.0 voluntary switch per reservation instead of 1.9, and a third
    less of the clients' CPU, `getrusage`). `poller`: the socket's, registered for input."""
    poller.poll()
    data = sock.recv(65536)
    while data and (len(data) < _LEN.size or len(data) < _LEN.size + _LEN.unpack_from(data)[0]):
        if len(data) >= _LEN.size and _LEN.unpack_from(data)[0] > MAX_FRAME:
            raise OSError("frame too long")
        more = sock.recv(65536)
        if not more:
            return None
        data += more
    if not data:
        return None
    if len(data) != _LEN.size + _LEN.unpack_from(data)[0]:
        raise OSError("more than one frame")
    return data[_LEN.size :].decode()


class _Direct:
    """A psycopg connection opened without the engine's pool, shaped as the pool's proxy
    (`_Link` takes either)."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.driver_connection = psycopg.connect(conninfo, autocommit=True)

    def invalidate(self) -> None:
        self.driver_connection.close()


def _fork_sequencer(db: Database, path: Path, lock: int) -> int:
    """Serve socket `path` of `db`'s ledger in a new process, holding `lock`; its pid.

    Forked, not started afresh: a new interpreter spends most of a second importing what this
    one has (SQLAlchemy, psycopg, the ledger), which on a machine busy with the clients that
    asked for it is seconds of writing without it; the fork is serving within milliseconds.
    Forked twice (the first child exits at once), so that it is no child of the client's, and
    in a session of its own, so that the client's terminal does not stop it."""
    conninfo = make_url(db.url).set(drivername="postgresql").render_as_string(False)
    where = db.engine.url.render_as_string()  # the password hidden
    path = path.absolute()  # it leaves the client's working directory
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12 warns of a fork in a process with threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the first child: fork the sequencer, say its pid, exit
        code = 1
        try:
            os.close(read)
            os.setsid()
            grandchild = os.fork()
            if grandchild == 0:
                os.close(write)
                code = _serve_forked(db, path, lock, conninfo, where)
            else:
                os.write(write, str(grandchild).encode())
                code = 0
        finally:
            os._exit(code)  # no atexit handler, no finaliser of the client's objects
    os.close(write)
    try:
        os.waitpid(pid, 0)
        said = os.read(read, 32)
    finally:
        os.close(read)
    if not said:
        raise OSError("the sequencer's process did not start")
    return int(said)


def _rss() -> int:
    """This process's resident memory, in bytes (0 if unknown)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _spawn_sequencer(url: str, path: Path, lock: int) -> int:
    """Serve socket `path` of the ledger at `url` in a new interpreter, holding `lock`
    (`aiexport ledger serve --idle-exit`); its pid. For a client too large to fork
    (`FORK_MAX_RSS`): a forked sequencer keeps the memory of the client as it was at the fork,
    page by page as the client changes it. Slower to start: most of a second importing."""
    with open(log_path(path), "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "aiexport", "ledger", "serve", "--socket", str(path),
             "--idle-exit", f"{IDLE_EXIT:g}", "--lock-fd", str(lock)],
            env={**os.environ, "AIEXPORT_DB": url},  # not in its argv, which ps shows
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            pass_fds=(lock,),
            start_new_session=True,  # not stopped with the client's terminal
        )  # fmt: skip
    threading.Thread(target=proc.wait, name="aiexport-sequencer-reaper", daemon=True).start()
    return proc.pid


# The client's objects a forked sequencer holds on to, never to be finalised in it.
_inherited: list[Any] = []


def _serve_forked(db: Database, path: Path, lock: int, conninfo: str, where: str) -> int:
    """The forked sequencer (`_fork_sequencer`): shed what it inherited from the client, serve
    until idle or stopped; its exit status.

    Of the client it keeps nothing it uses: its descriptors are closed (a listening socket or a
    pipe of the client's kept open here would outlive the client: a port not free again, a
    reader waiting for an end of file), the garbage collector is kept from the client's objects
    (`gc.freeze`: a library's destructor run in a process without its threads can crash it),
    its signal handlers and logging are replaced, it works in the root directory (the client's
    may be removed), and its connection is a new one, opened without the client's pool. psycopg
    never closes a connection in a process other than the one that opened it, so the client's
    stay open."""
    import gc

    gc.freeze()
    _write_pid(lock)  # first: the client kills it by that pid should it never listen
    os.chdir("/")  # not holding the client's working directory
    if lock < 3:
        lock = fcntl.fcntl(lock, fcntl.F_DUPFD, 3)
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log_path(path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.closerange(3, lock)
    os.closerange(lock + 1, max(os.sysconf("SC_OPEN_MAX"), lock + 2))
    _inherited.extend((sys.stdin, sys.stdout, sys.stderr, logging.root.handlers))
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - for the life of the process
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.root.handlers = [handler]
    try:
        seq = Sequencer(
            db, path, idle_exit=IDLE_EXIT, lock_fd=lock, connect=lambda: _Direct(conninfo)
        )
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        with contextlib.suppress(ValueError):
            signal.set_wakeup_fd(-1)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: seq.stop.set())
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        seq.serve(ready=lambda: print(f"sequencer for {where} on {path}, pid {os.getpid()}"))
        print(seq.summary())
        return 0
    except BaseException:
        log.exception("sequencer for %s on %s failed", where, path)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class SequencerClient:
    """A process's way to the sequencer: a connection per thread, opened on first use. `call`
    returns None whenever the caller must send the request itself."""

    def __init__(self, url: str, db: Database | None = None) -> None:
        """`db`: the client's own `Database` of `url`, if it has one (`summon` needs one)."""
        self.url = url
        self.db = db
        self.path = socket_path(url)
        self.digest = database_digest(url)
        self._local = threading.local()
        self._absent_until = 0.0
        self._seen = 0  # the inode of the socket last tried (0: none there)
        self._alone = 0  # calls in a row that carried only this process's request
        self._contention = 0  # direct calls that found the lock taken, less those that did not
        self._summoned = -SUMMON_EVERY  # when this process last started a sequencer
        self.calls = 0  # answered through the sequencer, for the tests and the benchmark
        self.summoned = 0  # sequencers this process started
        self._started = (0, 0.0)  # the last one's pid, and when it must be listening by

    def contended(self, taken: bool) -> None:
        """Note a call this process made by itself, and whether it found the write lock taken
        (another process writing at the same moment). Once such calls outnumber the others by
        `SUMMON_AFTER`, start a sequencer (`summon`)."""
        if self._started[0]:
            self._check_started()
        if taken:
            self._contention += 1
            if self._contention >= SUMMON_AFTER:
                self._contention = 0
                self.summon()
        elif self._contention:
            self._contention -= 1

    def summon(self) -> bool:
        """Start a sequencer for this database - a detached process, forked from this one
        (`_fork_sequencer`; a new interpreter if this one is large, `_spawn_sequencer`),
        stopping after `IDLE_EXIT` seconds with no request, its output appended to
        `<socket>.log` - unless one serves or is starting (its lock is held),
        `AIEXPORT_LEDGER_AUTOSERVE` is 0, or this process started one less than `SUMMON_EVERY`
        seconds ago. The lock is taken here and handed to the new process, so that at most one
        starts however many clients ask at once. Whether one was started; failures are logged,
        never raised: the caller writes by itself meanwhile."""
        now = time.monotonic()
        if not autoserve() or now - self._summoned < SUMMON_EVERY:
            return False
        self._summoned = now
        try:
            private_folder(self.path)
            lock = claim(self.path)
        except (OSError, InputError) as exc:
            log.warning("no sequencer started for %s: %s", self.path, exc)
            return False
        if lock is None:  # one serves, or is starting
            return False
        try:
            if _rss() <= FORK_MAX_RSS:
                self.db = self.db or Database(self.url)
                pid = _fork_sequencer(self.db, self.path, lock)
            else:
                pid = _spawn_sequencer(self.url, self.path, lock)
        except Exception as exc:
            log.warning("no sequencer started for %s: %s", self.path, exc)
            return False
        finally:
            os.close(lock)  # the new process holds the lock now
        self.summoned += 1
        self._started = (pid, now + START_SECONDS)
        return True

    def _check_started(self) -> None:
        """The sequencer this process started, not listening `START_SECONDS` after: killed, so
        that its lock is free again (a process forked from one with threads could, in theory,
        wait forever on a lock another thread held at the fork)."""
        pid, deadline = self._started
        if not pid or time.monotonic() < deadline:
            return
        self._started = (0, 0.0)
        if not listening(self.path) and holder(self.path) == pid:
            log.warning("the sequencer %d did not start in %gs: killed", pid, START_SECONDS)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _socket(self) -> socket.socket | None:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None and self._local.pid == os.getpid():
            return sock
        if time.monotonic() < self._absent_until:
            # Looked for lately, in vain: again only once a new socket is there (a sequencer
            # just started, by another client or by this one), a stat(2) a call.
            try:
                if os.stat(self.path).st_ino == self._seen:
                    return None
            except OSError:
                return None
        sock = None
        seen = 0
        try:
            info = os.stat(self.path)
            seen = info.st_ino
            if info.st_uid != os.getuid():  # someone else's: not to be trusted
                raise OSError("not ours")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(self.path))
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            sock.sendall(_frame(f"hello{_RS}{self.digest}"))
            if _read_frame(sock, poller) != "ok":
                raise OSError("the sequencer serves another database")
        except OSError:
            if sock is not None:
                sock.close()
            self._seen = seen  # not this one again, unless it is replaced
            self._absent_until = time.monotonic() + ABSENT_SECONDS
            return None
        self._local.sock, self._local.pid, self._local.poller = sock, os.getpid(), poller
        return sock

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None and self._local.pid == os.getpid():
            sock.close()

    def call(self, params: Params) -> Row | None:
        """`ledger_draw_one`'s row for one request, answered by the sequencer; None when
        there is none, it went away, or its call failed."""
        sock = self._socket()
        if sock is None:
            return None
        try:
            sock.sendall(encode_request(params))
            reply = _read_frame(sock, self._local.poller)
        except OSError:
            reply = None
        if reply is None:
            self._drop()
            return None
        if reply == RETRY:
            return None
        fields = reply.split(_RS)
        if len(fields) != 8:
            self._drop()
            return None
        self.calls += 1
        self._alone = self._alone + 1 if fields[7] == "1" else 0
        if self._alone >= ALONE_CALLS:  # no other writer: faster by itself for a while
            self._alone = 0
            self._drop()
            with contextlib.suppress(OSError):
                self._seen = os.stat(self.path).st_ino  # this sequencer: not before a second
            self._absent_until = time.monotonic() + ABSENT_SECONDS
        return tuple(f or None for f in fields[:7])

    def close(self) -> None:
        self._drop()


class _Client:
    """A connected client, as the sequencer sees it."""

    __slots__ = ("buf", "greeted", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.greeted = False


class _Link:
    """The sequencer's PostgreSQL connection, driven without blocking: a statement is sent
    (`send`), the loop goes on, and the answer is read once the server has sent it (`collect`).
    `items` is what the statement in flight is for."""

    def __init__(self, proxy: Any) -> None:
        """`proxy`: a connection as the engine's pool gives one (`_Direct`, one of no pool)."""
        self.kept = _kept(proxy)
        self.pgconn = self.kept.pgconn
        self._fd = int(self.pgconn.socket)  # kept: a lost connection's socket is not asked
        self.items: list[Any] = []
        self.busy = False
        self._row: tuple[Any, ...] | None = None
        self._error: Exception | None = None

    def fileno(self) -> int:
        return self._fd

    def send(self, sql: str, params: Sequence[str | None], items: list[Any]) -> None:
        """Send `sql` (prepared, in its own implicit transaction) for `items`."""
        name = _prepared(self.kept, sql)
        code = self.kept.encoding
        self.pgconn.send_query_prepared(
            name, [None if v is None else v.encode(code) for v in params]
        )
        while self.pgconn.flush():
            select.select([], [self._fd], [])
        self.items, self.busy, self._row, self._error = items, True, None, None

    def collect(self) -> bool:
        """Read what the server has sent; True once the statement's answer is complete."""
        from psycopg import pq

        self.pgconn.consume_input()
        while not self.pgconn.is_busy():
            result = self.pgconn.get_result()
            if result is None:
                self.busy = False
                return True
            if result.status == pq.ExecStatus.TUPLES_OK:
                if self._row is None and result.ntuples:
                    self._row = tuple(result.get_value(0, k) for k in range(result.nfields))
            elif result.status != pq.ExecStatus.COMMAND_OK:
                self._error = self._error or _error(result, self.kept.encoding)
        return False

    def answer(self) -> tuple[str | None, ...]:
        """The finished statement's first row, as text; its error raised."""
        if self._error is not None:
            raise self._error
        if self._row is None:
            raise RuntimeError("the statement returned no row")
        return tuple(None if v is None else bytes(v).decode(self.kept.encoding) for v in self._row)

    def run(self, sql: str, params: Sequence[str | None]) -> tuple[str | None, ...]:
        """`send`, then wait for the answer."""
        self.send(sql, params, [])
        while not self.collect():
            select.select([self._fd], [], [])
        return self.answer()

    def close(self) -> None:
        self.kept.proxy.invalidate()  # a statement may be in flight: not back to the pool


class Sequencer:
    """The loop of `aiexport ledger serve` (see the module's docstring)."""

    def __init__(
        self,
        db: Database,
        path: Path | None = None,
        max_batch: int = MAX_BATCH,
        *,
        idle_exit: float | None = None,
        lock_fd: int | None = None,
        connect: Callable[[], Any] | None = None,
    ):
        """`idle_exit`: stop once no request has come for that many seconds. `lock_fd`: the
        lock (`claim`), taken by the client that started this sequencer; else `serve` takes it.
        `connect`: how to open its connection (default: from `db`'s pool)."""
        if db.is_sqlite:
            raise InputError("the sequencer serves PostgreSQL ledgers (SQLite has one writer)")
        self.db = db
        self.path = path or socket_path(db.url)
        self.digest = database_digest(db.url)
        self.max_batch = max_batch
        self.idle_exit = idle_exit
        self._connect = connect or db.engine.raw_connection
        self.idled = False  # stopped by `idle_exit`
        self._lock = lock_fd
        self._last = time.monotonic()  # when the last request came
        self.stop = threading.Event()
        self.calls = 0  # batch calls made, and the requests they carried
        self.requests = 0
        self._sel = selectors.DefaultSelector()
        self._pending: deque[tuple[_Client, list[str]]] = deque()
        self._link: _Link | None = None  # the connection, opened at the first call
        self._flushing = False  # the statement in flight is the WAL barrier
        self._ready: list[tuple[_Client, str]] = []  # durable answers to send

    def _take_lock(self) -> None:
        """Hold the lock of this socket (`claim`), or the one handed over, with this process's
        pid in it; InputError when another sequencer holds it."""
        private_folder(self.path)
        if self._lock is None:
            self._lock = claim(self.path)
            if self._lock is None:
                pid = holder(self.path)
                raise InputError(
                    f"a sequencer already serves {self.path}" + (f" (pid {pid})" if pid else "")
                )
        else:
            try:  # the same open file as the holder's: taken again at once, else not ours
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                raise InputError(f"--lock-fd {self._lock}: not the lock of {self.path}") from exc
        _write_pid(self._lock)

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)

    def _listen(self) -> socket.socket:
        if listening(self.path):
            raise InputError(f"a sequencer already listens on {self.path}")
        # Bound under another name, then renamed over the socket path (and over a socket left
        # by a sequencer that is gone): the path names a listening socket from the moment it
        # appears. A client that found it bound but not yet listening took it for a stale one
        # and looked again only a second later (`SequencerClient._socket`).
        bound = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        bound.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            listener.bind(str(bound))
            listener.listen(256)
            os.replace(bound, self.path)
        except BaseException:
            listener.close()
            bound.unlink(missing_ok=True)
            raise
        finally:
            os.umask(old)
        listener.setblocking(False)
        return listener

    def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Answer requests until `stop` is set; then answer those already sent to the database
        before returning."""
        self._take_lock()
        try:
            listener = self._listen()
        except BaseException:
            self._release_lock()
            raise
        inode = os.stat(self.path).st_ino
        self._sel.register(listener, selectors.EVENT_READ)
        try:
            self._warm()
            if ready is not None:
                ready()
            self._last = time.monotonic()
            while not self.stop.is_set():
                if self.idle_exit is not None and self._idle():
                    self.idled = True
                    break
                events = self._sel.select(0.2)
                for key, _ in events:
                    if key.fileobj is listener:
                        self._accept(listener)
                    elif key.data is None:
                        self._collect()
                    else:
                        self._read(key.data)
                if not events:  # an answer libpq read while sending is not announced again
                    self._collect()
                if self._pending and not (self._link and self._link.busy):
                    self._start()
                self._answer()
            self._pending.clear()  # not sent: their clients write by themselves
            deadline = time.monotonic() + DRAIN_SECONDS
            while self._link is not None and self._link.busy and time.monotonic() < deadline:
                select.select([self._link], [], [], 0.2)
                self._collect()
                self._answer()
        finally:
            for key in list(self._sel.get_map().values()):
                self._sel.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
            try:
                if os.stat(self.path).st_ino == inode:
                    self.path.unlink()
            except FileNotFoundError:
                pass
            self._release_lock()  # the socket gone first: a successor binds a fresh one

    def summary(self) -> str:
        """What it did, once stopped: the line its log ends with."""
        why = f" ({self.idle_exit:g} s with no request)" if self.idled else ""
        return f"stopped{why}: {self.requests:,} requests in {self.calls:,} calls"

    def _idle(self) -> bool:
        """Whether `idle_exit` seconds have passed since the last request, with none waiting,
        none in the database and no answer to send."""
        assert self.idle_exit is not None
        return (
            not self._pending
            and not self._ready
            and not (self._link is not None and self._link.busy)
            and time.monotonic() - self._last > self.idle_exit
        )

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        self._sel.register(sock, selectors.EVENT_READ, _Client(sock))

    def _close(self, client: _Client) -> None:
        try:
            self._sel.unregister(client.sock)
        except (KeyError, ValueError):
            return
        client.sock.close()

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(client)
            return
        buf = client.buf + data
        while len(buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(buf)
            if size > MAX_FRAME:
                self._close(client)
                return
            if len(buf) < _LEN.size + size:
                break
            text = buf[_LEN.size : _LEN.size + size].decode(errors="replace")
            buf = buf[_LEN.size + size :]
            if not client.greeted:
                if text != f"hello{_RS}{self.digest}":
                    self._send(client, "other database")
                    self._close(client)
                    return
                client.greeted = True
                self._send(client, "ok")
                continue
            try:
                self._pending.append((client, decode_request(text)))
                self._last = time.monotonic()
            except ValueError as exc:
                log.warning("sequencer: %s; connection closed", exc)
                self._close(client)
                return
        client.buf = buf

    def _send(self, client: _Client, text: str) -> None:
        try:
            client.sock.sendall(_frame(text))
        except OSError:  # gone, or not reading: its request stands, its key answers a resend
            self._close(client)

    def _warm(self) -> None:
        """Open the connection and run each of its calls once, writing nothing - a batch of no
        request, and one request over a cap of 0 - so that the first clients do not wait while
        the server compiles the functions and plans their statements. Clients that connect
        meanwhile wait in the listening socket's queue."""
        link = self._open_link()
        link.run(SET_CALL, ("",) * NFIELDS)
        refused = [f"aiexport-warm-{uuid.uuid4().hex}", "\\x00", None, "warm", iso(now_utc()),
                   None, "1", "aiexport warm-up", "1", "0", "-", "0", "0", "0", ""]  # fmt: skip
        if link.run(ONE_FN_CALL, refused)[0] not in ("limit", "sweep"):
            raise RuntimeError("the warm-up call was not refused")

    def _start(self) -> None:
        """Send one call for the requests waiting: at most `max_batch`, on distinct keys (a
        repeated key waits for the next call)."""
        batch: list[tuple[_Client, list[str]]] = []
        later: list[tuple[_Client, list[str]]] = []
        seen: set[str] = set()
        while self._pending and len(batch) < self.max_batch:
            item = self._pending.popleft()
            key = item[1][KEY]
            if key in seen:
                later.append(item)
                continue
            seen.add(key)
            batch.append(item)
        self._pending.extendleft(reversed(later))
        self.calls += 1
        self.requests += len(batch)
        try:
            link = self._link or self._open_link()
            link.send(*batch_statement([fields for _, fields in batch]), batch)
            self._flushing = False
        except Exception:
            self._lost(batch)

    def _collect(self) -> None:
        """Read the call's answer if it has come. A batch's answers are sent if the call made
        them durable; else the WAL barrier is sent first, and they wait for it."""
        link = self._link
        if link is None:
            return
        if not link.busy:  # nothing asked: the server closed the connection, or sent a notice
            try:
                link.pgconn.consume_input()
            except Exception:
                log.warning("sequencer: the database connection was lost; a new one opens")
                self._drop_link()
            return
        try:
            if not link.collect():
                return
            row = link.answer()
            if self._flushing:  # the barrier: its answers are durable now
                self._ready.extend(link.items)
                return
            batch = link.items
            answers, durable = batch_answers([fields for _, fields in batch], row)
            ready, deferred = [], []
            for item, answer in zip(batch, answers, strict=True):
                if answer is None:
                    deferred.append(item)
                else:
                    ready.append((item[0], answer))
            self._pending.extendleft(reversed(deferred))
            if durable:
                self._ready.extend(ready)
            else:
                link.send(WAL_BARRIER, (), ready)
                self._flushing = True
        except Exception:
            self._lost(link.items)

    def _lost(self, items: list[Any]) -> None:
        """A call for `items` failed (or could not be sent): their clients are told to write
        by themselves, and the connection is replaced at the next call."""
        log.exception("sequencer: the call failed; its clients send their requests themselves")
        for item in items:
            self._send(item[0], RETRY)
        self._drop_link()

    def _open_link(self) -> _Link:
        """A new connection, watched by the loop."""
        self._link = _Link(self._connect())
        self._sel.register(self._link, selectors.EVENT_READ)
        return self._link

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            self._sel.unregister(link)
            link.close()

    def _answer(self) -> None:
        """Send the answers made durable."""
        ready, self._ready = self._ready, []
        for client, text in ready:
            self._send(client, text)

    def _call(self, batch: Sequence[list[str]]) -> list[str | None]:
        """The answers to `batch`, as the loop makes them, waiting at each step: the call, then
        the WAL barrier unless the call made them durable."""
        link = _Link(self._connect())
        try:
            return call_batch(link.run, batch)
        finally:
            link.close()


def call_batch(
    run: Callable[[str, tuple[str | None, ...]], tuple[str | None, ...]],
    batch: Sequence[list[str]],
) -> list[str | None]:
    """The answers to `batch` (`batch_answers`), made durable: its call through `run` (a
    statement and its parameters, answered with its first row), then the WAL barrier unless the
    call made them durable itself."""
    answers, durable = batch_answers(batch, run(*batch_statement(batch)))
    if not durable:
        run(WAL_BARRIER, ())
    return answers


def _alone(batch: Sequence[list[str]]) -> bool:
    """Whether `batch` goes as `ledger_draw_one`: one request, with every name's id."""
    return len(batch) == 1 and all(batch[0][k] for k in IDS)


def batch_statement(batch: Sequence[list[str]]) -> tuple[str, tuple[str | None, ...]]:
    """The call for `batch`: `ledger_draw_one` for a request alone with its names' ids (it costs
    less than a batch of one), else `ledger_draw_set_queued`."""
    if _alone(batch):
        one = batch[0]
        params = tuple(None if not f and k in NULLABLE else f for k, f in enumerate(one))
        return ONE_FN_CALL, (params[0], "\\x" + one[1], *params[2:])
    return SET_CALL, tuple(map(_RS.join, zip(*batch, strict=True)))


def batch_answers(
    batch: Sequence[list[str]], row: tuple[str | None, ...]
) -> tuple[list[str | None], bool]:
    """Each request's answer frame text from its call's `row` (`batch_statement`), None for a request
    to send again (its key an earlier request's of the batch); and whether the answers are
    durable: the call committed synchronously something it wrote. Otherwise (nothing written,
    or `ledger_draw_one` committed asynchronously) they were read from state whose flush may not
    have come yet, and wait for the WAL barrier."""
    n = len(batch)
    if _alone(batch):  # `ledger_draw_one`'s row, `durable` last
        return [_RS.join((*(f or "" for f in row[:7]), "1"))], row[7] == "t" and row[0] == "ok"
    each = set_answers(n, row)
    count = str(n)
    answers = [None if a[0] == "defer" else _RS.join((*a, count)) for a in each]
    return answers, any(a[0] == "ok" for a in each)
