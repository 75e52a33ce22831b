"""Investigations and simulations as background jobs: start, watch progress, read results."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from aiexport.api.deps import Analyst, JobsDep, ServicesDep
from aiexport.api.jobs import get_job, job_record, list_jobs, result_of
from aiexport.api.models import JobIn, JobOut
from aiexport.api.routers._common import FOUND, WRITE

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(max_length=40, description="As returned when the job was started.")]


def _start(kind: str, body: JobIn, runner: Any, who: Any) -> JSONResponse:
    job_id = runner.submit(kind, body.params, who)
    row = get_job(runner.ledger, job_id)
    return JSONResponse(
        job_record(row), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"}
    )


@router.post(
    "/v1/investigations",
    status_code=202,
    summary="Start an investigation of the recorded orders (analysts); returns a job to watch",
    response_model=JobOut,
    responses=WRITE,
)
def start_investigation(body: JobIn, runner: JobsDep, who: Analyst) -> JSONResponse:
    return _start("investigation", body, runner, who)


@router.post(
    "/v1/simulations",
    status_code=202,
    summary="Start a policy simulation of shipped scenarios (analysts); returns a job to watch",
    response_model=JobOut,
    responses=WRITE,
)
def start_simulation(body: JobIn, runner: JobsDep, who: Analyst) -> JSONResponse:
    return _start("simulation", body, runner, who)


@router.get(
    "/v1/investigations", summary="Investigations, newest first (analysts)", responses=FOUND
)
def investigations(svc: ServicesDep, who: Analyst) -> dict[str, Any]:
    return {"jobs": [job_record(r) for r in list_jobs(svc.ledger, "investigation")]}


@router.get("/v1/simulations", summary="Simulations, newest first (analysts)", responses=FOUND)
def simulations(svc: ServicesDep, who: Analyst) -> dict[str, Any]:
    return {"jobs": [job_record(r) for r in list_jobs(svc.ledger, "simulation")]}


@router.get(
    "/v1/jobs/{job_id}",
    summary="A job's status and progress (analysts)",
    response_model=JobOut,
    responses=FOUND,
)
def job(job_id: JobId, svc: ServicesDep, who: Analyst) -> JSONResponse:
    return JSONResponse(job_record(get_job(svc.ledger, job_id)))


@router.get(
    "/v1/jobs/{job_id}/result", summary="A finished job's result (analysts)", responses=FOUND
)
def job_result(job_id: JobId, svc: ServicesDep, who: Analyst) -> JSONResponse:
    return JSONResponse(result_of(get_job(svc.ledger, job_id)))


@router.get(
    "/v1/investigations/{job_id}/cases",
    summary="The cases an investigation found, highest score first (contract §3; analysts)",
    responses=FOUND,
)
def cases(job_id: JobId, svc: ServicesDep, who: Analyst) -> JSONResponse:
    result = result_of(get_job(svc.ledger, job_id, "investigation"))
    return JSONResponse({"cases": result.get("cases", [])})
