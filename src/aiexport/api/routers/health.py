"""Liveness: is the service up and its database reachable?"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from aiexport.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The service is up and its ledger database answers")
def healthz(svc: ServicesDep) -> dict[str, Any]:
    seq, _ = svc.ledger.head()
    return {
        "status": "ok",
        "rule_set": svc.rule_set,
        "ledger_entries": seq,
        "database": svc.ledger.db.dialect,
    }
