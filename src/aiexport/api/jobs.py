"""Background jobs: long library calls (investigations, simulations) run off the request path.

A job kind is one function `run(ctx, params) -> result` plus a parameter check; adding a kind is
one entry in `KINDS`. The runner stores every job in `api_jobs` (status, progress, result as
JSON), so progress is visible to any request, and a job interrupted by a restart is marked
failed rather than left running forever. Jobs run one at a time per process on a worker thread:
they are heavy, and a queue keeps the API responsive.

Several server processes may share one database (`aiexport serve --workers N`, or several
hosts). Each runner therefore holds a lease on its jobs: it names itself in `owner` and renews
`heartbeat_at` every `HEARTBEAT_SECONDS` while it has jobs. A queued or running job is taken to
be interrupted — and marked failed — only when its lease has lapsed (no heartbeat for
`LEASE_SECONDS`), or its owner is a process of this host that no longer exists; so a worker that
starts (or restarts) never fails the jobs another worker is running.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from aiexport.api import store
from aiexport.api.auth import Principal
from aiexport.errors import AiexportError, InputError, NotFound
from aiexport.ledger import Ledger

Progress = Callable[[float, str], None]
LEASE_SECONDS = 60.0
HEARTBEAT_SECONDS = 10.0
_LIVE = ("queued", "running")


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job function gets: the ledger, the rule set name and a progress callback."""

    ledger: Ledger
    rule_set: str
    progress: Progress
    job_id: str


JobFn = Callable[[JobContext, dict[str, Any]], dict[str, Any]]
CheckFn = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of job: its name, its function, and the check of its parameters."""

    name: str
    run: JobFn
    check: CheckFn
    description: str


class JobRunner:
    """Queues jobs on one worker thread and records their state in `api_jobs`."""

    def __init__(
        self,
        ledger: Ledger,
        rule_set: str,
        kinds: dict[str, JobKind],
        *,
        lease: float = LEASE_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.rule_set = rule_set
        self.kinds = kinds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease = lease
        self.heartbeat = heartbeat
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.fail_interrupted()

    def kind(self, name: str) -> JobKind:
        try:
            return self.kinds[name]
        except KeyError:
            raise NotFound(
                f"no job kind {name!r}; this server runs {', '.join(sorted(self.kinds)) or 'none'}"
            ) from None

    def submit(
        self, kind: str, params: dict[str, Any], who: Principal, *, wait: bool = False
    ) -> str:
        """Queue a job (after checking its parameters) and return its id."""
        k = self.kind(kind)
        params = k.check(dict(params))
        job_id = f"{kind[:3]}-{secrets.token_hex(6)}"

        def work(conn: Connection) -> None:
            conn.execute(
                store.jobs.insert().values(
                    job_id=job_id,
                    kind=kind,
                    status="queued",
                    progress=0.0,
                    message="queued",
                    params_json=json.dumps(params, default=str),
                    actor=who.actor,
                    created_at=store.now_iso(),
                    is_private=False,
                    owner=self.owner,
                    heartbeat_at=store.now_iso(),
                )
            )
            store.log(conn, who.actor, who.role, f"job.{kind}.start", job_id, {"params": params})

        self.ledger.db.write(work, lock=False)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiexport-job")
            fut = self._pool.submit(self._run, job_id, k, params)
            self._futures[job_id] = fut
            if self._beat is None:
                self._beat = threading.Thread(
                    target=self._beat_loop, name="aiexport-job-lease", daemon=True
                )
                self._beat.start()
        if wait:
            fut.result()
        return job_id

    def wait(self, job_id: str, timeout: float | None = None) -> None:
        with self._lock:
            fut = self._futures.get(job_id)
        if fut is not None:
            fut.result(timeout)

    def _set(self, job_id: str, **values: Any) -> None:
        def work(conn: Connection) -> None:
            conn.execute(update(store.jobs).where(store.jobs.c.job_id == job_id).values(**values))

        self.ledger.db.write(work, lock=False)

    def _run(self, job_id: str, kind: JobKind, params: dict[str, Any]) -> None:
        self._set(job_id, status="running", message="started")

        def progress(fraction: float, message: str) -> None:
            self._set(job_id, progress=max(0.0, min(1.0, fraction)), message=message[:500])

        ctx = JobContext(self.ledger, self.rule_set, progress, job_id)
        try:
            result = kind.run(ctx, params)
        except AiexportError as exc:
            self._finish(job_id, "failed", error=exc.message)
        except Exception as exc:  # a job's bug must not kill the worker
            traceback.print_exc()
            self._finish(job_id, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(job_id, "done", result=result)

    def _finish(
        self, job_id: str, status: str, *, result: Any = None, error: str | None = None
    ) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                update(store.jobs)
                .where(store.jobs.c.job_id == job_id)
                .values(
                    status=status,
                    progress=1.0 if status == "done" else store.jobs.c.progress,
                    message="finished" if status == "done" else "failed",
                    result_json=None if result is None else json.dumps(result, default=str),
                    error=error,
                    finished_at=store.now_iso(),
                )
            )
            store.log(conn, "job-runner", "admin", f"job.{status}", job_id, {"error": error})

        self.ledger.db.write(work, lock=False)

    def fail_interrupted(self) -> list[str]:
        """Mark failed the queued and running jobs whose runner is gone; return their ids."""
        now = dt.datetime.now(dt.UTC)
        lapsed = (now - dt.timedelta(seconds=self.lease)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        host = socket.gethostname()

        def gone(owner: str | None, heartbeat_at: str | None) -> bool:
            if owner is None or heartbeat_at is None or heartbeat_at < lapsed:
                return True
            if owner == self.owner:
                return False
            their_host, _, rest = owner.rpartition(":")[0].rpartition(":")
            return their_host == host and rest.isdigit() and not _alive(int(rest))

        def work(conn: Connection) -> list[str]:
            j = store.jobs.c
            rows = conn.execute(
                select(j.job_id, j.owner, j.heartbeat_at).where(j.status.in_(_LIVE))
            ).all()
            failed = []
            for row in rows:
                if not gone(row.owner, row.heartbeat_at):
                    continue
                same = (
                    j.heartbeat_at.is_(None)
                    if row.heartbeat_at is None
                    else j.heartbeat_at == row.heartbeat_at
                )
                done = conn.execute(
                    update(store.jobs)
                    .where(j.job_id == row.job_id, j.status.in_(_LIVE), same)
                    .values(
                        status="failed",
                        error="interrupted: the server stopped before the job finished; start it again",
                        finished_at=store.now_iso(),
                    )
                )
                if done.rowcount:
                    failed.append(row.job_id)
            return failed

        return self.ledger.db.write(work, lock=False)

    def renew(self) -> int:
        """Renew the lease on this runner's queued and running jobs; return how many."""

        def work(conn: Connection) -> int:
            j = store.jobs.c
            done = conn.execute(
                update(store.jobs)
                .where(j.owner == self.owner, j.status.in_(_LIVE))
                .values(heartbeat_at=store.now_iso())
            )
            return int(done.rowcount)

        return self.ledger.db.write(work, lock=False)

    def _beat_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.renew()
                self.fail_interrupted()
            except Exception:  # a database hiccup must not end the heartbeat
                traceback.print_exc()

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; queued ones are dropped (and marked failed at the next start)."""
        self._stop.set()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job_record(row: Any) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "kind": row.kind,
        "status": row.status,
        "progress": row.progress,
        "message": row.message,
        "params": json.loads(row.params_json),
        "error": row.error,
        "actor": row.actor,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
        "result_url": f"/v1/jobs/{row.job_id}/result" if row.status == "done" else None,
    }


def get_job(ledger: Ledger, job_id: str, kind: str | None = None) -> Any:
    j = store.jobs.c
    with ledger.db.read() as conn:
        row = conn.execute(select(store.jobs).where(j.job_id == job_id)).first()
    if row is None or (kind is not None and row.kind != kind):
        raise NotFound(f"no {kind or 'job'} {job_id!r}")
    return row


def list_jobs(ledger: Ledger, kind: str | None, limit: int = 50) -> list[Any]:
    j = store.jobs.c
    q = select(store.jobs).order_by(j.created_at.desc(), j.job_id.desc()).limit(limit)
    if kind:
        q = q.where(j.kind == kind)
    with ledger.db.read() as conn:
        return list(conn.execute(q))


def result_of(row: Any) -> dict[str, Any]:
    if row.status != "done":
        raise NotFound(f"job {row.job_id} is {row.status}; its result is ready when status is done")
    out: dict[str, Any] = json.loads(row.result_json)
    return out


def latest_result(ledger: Ledger, kind: str) -> tuple[str, dict[str, Any]] | None:
    """The newest finished job of `kind` and its result, for the dashboard."""
    j = store.jobs.c
    q = (
        select(store.jobs)
        .where(j.kind == kind, j.status == "done")
        .order_by(j.finished_at.desc(), j.job_id.desc())
        .limit(1)
    )
    with ledger.db.read() as conn:
        row = conn.execute(q).first()
    return None if row is None else (row.job_id, json.loads(row.result_json))


def require_keys(params: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    extra = set(params) - allowed
    if extra:
        raise InputError(
            f"unknown parameter(s) {', '.join(sorted(extra))}; allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    return params
