"""Background jobs: long library calls (investigations, simulations) run off the request path.

A job kind is one function `run(ctx, params) -> result` plus a parameter check; adding a kind is
one entry in `KINDS`. The runner stores every job in `api_jobs` (status, progress, result as
JSON), so progress is visible to any request, and a job interrupted by a restart is marked
failed rather than left running forever. Jobs run one at a time per process on a worker thread:
they are heavy, and a queue keeps the API responsive.
"""

from __future__ import annotations

import json
import secrets
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

    def __init__(self, ledger: Ledger, rule_set: str, kinds: dict[str, JobKind]) -> None:
        self.ledger = ledger
        self.rule_set = rule_set
        self.kinds = kinds
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._fail_interrupted()

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
                )
            )
            store.log(conn, who.actor, who.role, f"job.{kind}.start", job_id, {"params": params})

        self.ledger.db.write(work, lock=False)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aiexport-job")
            fut = self._pool.submit(self._run, job_id, k, params)
            self._futures[job_id] = fut
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

    def _fail_interrupted(self) -> None:
        def work(conn: Connection) -> None:
            j = store.jobs.c
            conn.execute(
                update(store.jobs)
                .where(j.status.in_(["queued", "running"]))
                .values(
                    status="failed",
                    error="interrupted: the server stopped before the job finished; start it again",
                    finished_at=store.now_iso(),
                )
            )

        self.ledger.db.write(work, lock=False)

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; queued ones are dropped (and marked failed at the next start)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)


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
    q = select(store.jobs).order_by(j.created_at.desc()).limit(limit)
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
        .order_by(j.finished_at.desc())
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
