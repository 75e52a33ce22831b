"""The service: `create_app()` builds the FastAPI app over one ledger database.

Errors are translated in one place, `HANDLERS`: every `AiexportError` carries its HTTP status
(`aiexport.errors`), request validation is 422, and every error body is
`{"error": kind, "message": what to do, "details": [...]}`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from aiexport.api import store
from aiexport.api.fastpath import FastDecisions
from aiexport.api.job_kinds import KINDS
from aiexport.api.jobs import JobRunner
from aiexport.api.routers import admin, decisions, health, jobs, ledger, reference, registry
from aiexport.api.services import Services
from aiexport.errors import AiexportError, AuthError, ParameterNotFound
from aiexport.ledger import Ledger
from aiexport.rules.ruleset import DEFAULT_RULE_SET

log = logging.getLogger("aiexport.api")


def _error(
    status: int, kind: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"error": kind, "message": message}
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def aiexport_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AiexportError)
    if exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message)
    details = None
    column = getattr(exc, "column", None)
    if column is not None:
        details = [
            {
                "field": column,
                "line": getattr(exc, "line", None),
                "problem": getattr(exc, "detail", exc.message),
            }
        ]
    return _error(exc.status, type(exc).__name__, exc.message, details)


async def outside_the_law(request: Request, exc: Exception) -> Response:
    """In the service every date comes from the request: one the law does not cover is bad input."""
    assert isinstance(exc, ParameterNotFound)
    return _error(422, "InputError", exc.message)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "problem": e.get("msg", "invalid"),
        }
        for e in exc.errors()
    ]
    first = details[0] if details else {"field": "", "problem": "invalid request"}
    message = f"{first['field'] or 'request'}: {first['problem']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem(s), see details)"
    return _error(422, "InputError", message, details)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no such page or endpoint: {request.url.path}; the API is described at /docs"
    return _error(exc.status_code, kind, message)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error(
        500, "InternalError", "the server failed on this request; the error is in its log"
    )


HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    AiexportError: aiexport_error,
    ParameterNotFound: outside_the_law,
    RequestValidationError: validation_error,
    StarletteHTTPException: http_error,
    Exception: internal_error,
}


def create_app(
    db: str | None = None, *, rule_set: str = DEFAULT_RULE_SET, dashboard: bool = True
) -> FastAPI:
    """The app over the ledger at `db` (default: `$AIEXPORT_DB`, else ./aiexport.db)."""
    led = Ledger(db)
    store.migrate(led)
    services = Services(led, rule_set)
    services.rules()  # fail now, not on the first request, if the rule set is unknown
    runner = JobRunner(led, rule_set, KINDS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        runner.shutdown()
        services.close()

    app = FastAPI(
        title="aiexport",
        summary="The U.S. Framework for AI Diffusion as a service: decisions with citations, TPP quotas, cases, scenarios.",
        version="0.1.0",
        exception_handlers=HANDLERS,
        lifespan=lifespan,
        responses={401: {"description": "Missing or invalid API key"}},
    )
    app.state.services = services
    app.add_middleware(FastDecisions, services=services)
    app.state.jobs = runner
    for module in (health, decisions, ledger, registry, jobs, reference, admin):
        app.include_router(module.router)
    if dashboard:
        from aiexport.web import mount

        mount(app)
    return app


ENV_RULES = "AIEXPORT_RULES"


def app_from_env() -> FastAPI:
    """The app over `$AIEXPORT_DB` with rule set `$AIEXPORT_RULES`: each worker process of
    `aiexport serve --workers N` builds its own with this factory."""
    return create_app(rule_set=os.environ.get(ENV_RULES) or DEFAULT_RULE_SET)


__all__ = ["ENV_RULES", "HANDLERS", "AuthError", "app_from_env", "create_app"]
