"""Liveness: is the service up and its database reachable?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from aiexport.api.deps import ServicesDep
from aiexport.api.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The service is up and its ledger database answers")
async def healthz(svc: ServicesDep) -> dict[str, Any]:
    if svc.reads_inline:
        seq = _head(svc)
    else:
        seq = await run_in_threadpool(_head, svc)
    return {
        "status": "ok",
        "rule_set": svc.rule_set,
        "ledger_entries": seq,
        "database": svc.ledger.db.dialect,
    }


def _head(svc: Services) -> int:
    with svc.fast.snapshot() as view:
        return view.head()[0]
