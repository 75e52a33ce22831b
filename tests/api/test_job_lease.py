"""Job leases: a server process that starts never fails the jobs another one is running."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from typing import Any

from sqlalchemy import select, update

from aiexport.api import store
from aiexport.api.jobs import JobContext, JobKind, JobRunner
from tests.api.conftest import Keys


def _status(client: Any, job_id: str) -> str:
    with client.app.state.services.ledger.db.read() as conn:
        return str(
            conn.execute(
                select(store.jobs.c.status).where(store.jobs.c.job_id == job_id)
            ).scalar_one()
        )


def _blocking_kind(release: threading.Event) -> JobKind:
    def run(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        ctx.progress(0.5, "waiting")
        release.wait(30)
        return {"cases": []}

    return JobKind("investigation", run, lambda p: p, "test")


def _start(client: Any, keys: Keys, release: threading.Event) -> str:
    client.app.state.jobs.kinds["investigation"] = _blocking_kind(release)
    r = client.post("/v1/investigations", json={"params": {}}, headers=keys.analyst)
    assert r.status_code == 202
    job_id: str = r.json()["job_id"]
    for _ in range(200):
        if _status(client, job_id) == "running":
            return job_id
        time.sleep(0.02)
    raise AssertionError("the job did not start")


def test_a_second_runner_leaves_a_live_runners_job_alone(client: Any, keys: Keys) -> None:
    release = threading.Event()
    job_id = _start(client, keys, release)
    ledger = client.app.state.services.ledger
    other = JobRunner(ledger, "x", {})  # another worker starting on the same database
    assert _status(client, job_id) == "running"
    assert other.fail_interrupted() == []
    release.set()
    client.app.state.jobs.wait(job_id, 10)
    assert _status(client, job_id) == "done"
    other.shutdown()


def test_a_lapsed_lease_or_a_dead_owner_fails_the_job(client: Any, keys: Keys) -> None:
    release = threading.Event()
    job_id = _start(client, keys, release)
    ledger = client.app.state.services.ledger
    j = store.jobs.c

    def set_lease(owner: str, heartbeat_at: str | None) -> None:
        ledger.db.write(
            lambda conn: conn.execute(
                update(store.jobs)
                .where(j.job_id == job_id)
                .values(owner=owner, heartbeat_at=heartbeat_at, status="running")
            ),
            lock=False,
        )

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    set_lease(f"{socket.gethostname()}:{dead}:abcd", store.now_iso())
    assert JobRunner(ledger, "x", {}).fail_interrupted() == []  # the constructor already did
    assert _status(client, job_id) == "failed"

    set_lease("elsewhere:1:abcd", "2000-01-01T00:00:00.000000Z")
    assert JobRunner(ledger, "x", {}).fail_interrupted() == []
    assert _status(client, job_id) == "failed"

    set_lease("elsewhere:1:abcd", store.now_iso())  # another host, renewing: left alone
    assert JobRunner(ledger, "x", {}).fail_interrupted() == []
    assert _status(client, job_id) == "running"
    release.set()


def test_the_heartbeat_renews_the_lease(client: Any, keys: Keys) -> None:
    release = threading.Event()
    runner: JobRunner = client.app.state.jobs
    job_id = _start(client, keys, release)
    ledger = client.app.state.services.ledger
    j = store.jobs.c
    ledger.db.write(
        lambda conn: conn.execute(
            update(store.jobs).where(j.job_id == job_id).values(heartbeat_at="2000")
        ),
        lock=False,
    )
    assert runner.renew() == 1
    with ledger.db.read() as conn:
        beat = conn.execute(select(j.heartbeat_at).where(j.job_id == job_id)).scalar_one()
    assert beat > "2020" and runner.fail_interrupted() == []
    assert _status(client, job_id) == "running"
    release.set()
    runner.wait(job_id, 10)
    assert runner.renew() == 0


def test_a_v1_database_gains_the_lease_columns(tmp_path: Any) -> None:
    from sqlalchemy import inspect

    from aiexport.ledger import Ledger

    with Ledger(f"sqlite:///{tmp_path / 'old.db'}") as ledger:
        store.migrate(ledger)

        def back_to_v1(conn: Any) -> None:
            for column in ("owner", "heartbeat_at"):
                conn.exec_driver_sql(f"ALTER TABLE api_jobs DROP COLUMN {column}")
            conn.execute(store.migrations.delete().where(store.migrations.c.version == 2))

        ledger.db.write(back_to_v1, lock=False)
        assert store.migrate(ledger) == [2]
        with ledger.db.read() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("api_jobs")}
        assert {"owner", "heartbeat_at"} <= columns
        assert store.migrate(ledger) == []
