"""Dependencies and parameters shared by the routers, as `Annotated` aliases."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aiexport.api.auth import Principal, authenticate
from aiexport.api.jobs import JobRunner
from aiexport.api.services import Services
from aiexport.errors import AuthError

_bearer = HTTPBearer(auto_error=False, description="An API key from `aiexport keys create`.")


def get_services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def get_jobs(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.jobs
    return runner


def get_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    svc = get_services(request)
    header = request.headers.get("authorization")
    if creds is None and header is None:
        raise AuthError(
            "send your API key as `Authorization: Bearer <key>` (create one with `aiexport keys create`)"
        )
    return authenticate(svc.ledger, header)


def require(role: str) -> object:
    """A dependency that lets through keys of `role` or higher."""

    def check(who: Annotated[Principal, Depends(get_principal)]) -> Principal:
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
