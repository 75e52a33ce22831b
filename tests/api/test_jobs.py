"""Background jobs: queued, watched, finished or failed; a new kind is one function."""

from __future__ import annotations

import time
from typing import Any

from aiexport.api.jobs import JobContext, JobKind, require_keys
from aiexport.errors import InputError
from tests.api.conftest import Keys


def _count(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    for i in range(3):
        ctx.progress((i + 1) / 3, f"step {i + 1}")
    if params.get("fail"):
        raise InputError("asked to fail")
    return {
        "cases": [
            {
                "case_id": "C1",
                "score": 0.9,
                "signals": ["STRUCTURING"],
                "parties": [],
                "order_ids": [],
                "tpp_total": 0,
                "summary": "s",
            }
        ]
    }


def _plug(client: Any) -> None:
    kind = JobKind("investigation", _count, lambda p: require_keys(p, {"fail"}), "test")
    client.app.state.jobs.kinds["investigation"] = kind


def _wait(client: Any, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def test_an_investigation_runs_in_the_background_and_its_cases_can_be_read(
    client: Any, keys: Keys
) -> None:
    _plug(client)
    r = client.post("/v1/investigations", json={"params": {}}, headers=keys.analyst)
    assert r.status_code == 202 and r.headers["location"].startswith("/v1/jobs/")
    job = _wait(client, r.json()["job_id"], keys.analyst)
    assert job["status"] == "done" and job["progress"] == 1.0 and job["result_url"]
    cases = client.get(f"/v1/investigations/{job['job_id']}/cases", headers=keys.analyst).json()[
        "cases"
    ]
    assert cases[0]["case_id"] == "C1"
    assert [
        j["job_id"] for j in client.get("/v1/investigations", headers=keys.analyst).json()["jobs"]
    ] == [job["job_id"]]


def test_a_failing_job_reports_its_error(client: Any, keys: Keys) -> None:
    _plug(client)
    job_id = client.post(
        "/v1/investigations", json={"params": {"fail": True}}, headers=keys.analyst
    ).json()["job_id"]
    job = _wait(client, job_id, keys.analyst)
    assert job["status"] == "failed" and "asked to fail" in job["error"]
    assert client.get(f"/v1/jobs/{job_id}/result", headers=keys.analyst).status_code == 404


def test_unknown_job_parameters_are_422_and_start_nothing(client: Any, keys: Keys) -> None:
    _plug(client)
    r = client.post("/v1/investigations", json={"params": {"nope": 1}}, headers=keys.analyst)
    assert r.status_code == 422
    assert client.get("/v1/investigations", headers=keys.analyst).json()["jobs"] == []
