"""Decisions: one order or a batch in, contract §2 records out; with `commit`, quota drawn."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from aiexport.api import services
from aiexport.api.deps import Caller, Limit, Offset, ServicesDep
from aiexport.api.models import (
    BatchOut,
    BatchRequest,
    DecisionOut,
    DecisionPage,
    DecisionRequest,
    StoredDecision,
)
from aiexport.api.routers._common import FOUND, WRITE, FastJSONResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])

_ORDER_FIELDS = set(DecisionRequest.model_fields) - {"commit", "rule_set"}


@router.post(
    "",
    summary="Decide one order (contract §1 names) and, with commit, record its quota draws",
    response_model=DecisionOut,
    responses={**WRITE, 200: {"description": "The decision, with every step and its citation"}},
)
async def decide(body: DecisionRequest, svc: ServicesDep, who: Caller) -> Response:
    raw = body.model_dump(mode="json", include=_ORDER_FIELDS, exclude_none=True)
    if body.commit or not svc.reads_inline:
        got = await run_in_threadpool(
            services.decide_one, svc, who, raw, commit=body.commit, rule_set=body.rule_set
        )
    else:  # a dry run on SQLite: a fraction of a millisecond of CPU, no waiting
        got = services.decide_one(svc, who, raw, commit=False, rule_set=body.rule_set)
    return FastJSONResponse(got.to_record())


@router.post(
    "/batch",
    summary="Decide many orders in (date, position) order carrying quota; with commit, all or none",
    response_model=BatchOut,
    responses=WRITE,
)
def decide_batch(body: BatchRequest, svc: ServicesDep, who: Caller) -> JSONResponse:
    raws = [o.model_dump(mode="json", exclude_none=True) for o in body.orders]
    got, summary = services.decide_batch(svc, who, raws, commit=body.commit, rule_set=body.rule_set)
    recorded = bool(got) and all(g.recorded for g in got)
    return JSONResponse(
        {"decisions": [g.to_record() for g in got], "recorded": recorded, "summary": summary}
    )


@router.get(
    "",
    summary="Recorded decisions, newest first (an exporter sees its own only)",
    response_model=DecisionPage,
    responses=FOUND,
)
def list_decisions(
    svc: ServicesDep,
    who: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    order_id: Annotated[str | None, Query(max_length=200)] = None,
    exporter: Annotated[
        str | None, Query(max_length=200, description="Analysts: one exporter's only.")
    ] = None,
) -> JSONResponse:
    rows, total = services.list_decisions(
        svc.ledger, who, limit=limit, offset=offset, order_id=order_id, exporter=exporter
    )
    return JSONResponse({"decisions": rows, "total": total})


@router.get(
    "/{decision_id}",
    summary="One recorded decision with its order",
    response_model=StoredDecision,
    responses=FOUND,
)
def get_decision(
    decision_id: Annotated[int, Path(ge=1, le=2**62)], svc: ServicesDep, who: Caller
) -> JSONResponse:
    return JSONResponse(services.get_decision(svc.ledger, who, decision_id))
