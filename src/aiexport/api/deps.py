"""Dependencies and parameters shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from aiexport.api.auth import Principal, bearer_token, cached_key, check_key
from aiexport.api.jobs import JobRunner
from aiexport.api.services import Services

_bearer = HTTPBearer(auto_error=False, description="An API key from `aiexport keys create`.")


async def get_services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def get_jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


async def get_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller; a key checked in the last few seconds is known without leaving the loop."""
    svc: Services = request.app.state.services
    token = bearer_token(request.headers.get("authorization"))
    who = cached_key(svc.ledger, token)
    if who is None:
        who = await run_in_threadpool(check_key, svc.ledger, token)
    return who


def require(role: str) -> object:
    """A dependency that lets through keys of `role` or higher."""

    async def check(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
        who.require(role)  # type: ignore[arg-type]
        return who

    return Depends(check)


ServicesDep = Annotated[Services, Depends(get_services)]
JobsDep = Annotated[JobRunner, Depends(get_jobs)]
Caller = Annotated[Principal, Depends(get_principal)]
Analyst = Annotated[Principal, require("analyst")]
Admin = Annotated[Principal, require("admin")]
OnDate = Annotated[dt.date | None, Query(description="Date YYYY-MM-DD (default: today).")]
RuleSetName = Annotated[
    str | None, Query(max_length=100, description="A shipped rule set (default: the server's).")
]
Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many rows.")]
Offset = Annotated[int, Query(ge=0, le=10**9, description="Skip this many rows.")]
