"""Keys and the audit log (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from aiexport.api import auth, store
from aiexport.api.deps import Admin, Limit, ServicesDep
from aiexport.api.models import KeyIn
from aiexport.api.routers._common import FOUND, INPUT

router = APIRouter(prefix="/v1", tags=["admin"])


@router.post(
    "/keys",
    status_code=201,
    summary="Create an API key; the plain key is shown only in this response",
    responses=INPUT,
)
def create_key(body: KeyIn, svc: ServicesDep, who: Admin) -> dict[str, Any]:
    new = auth.create_key(
        svc.ledger, role=body.role, name=body.name, exporter=body.exporter, created_by=who.actor
    )
    p = new.principal
    return {
        "key_id": p.key_id,
        "name": p.name,
        "role": p.role,
        "exporter": p.exporter,
        "key": new.key,
    }


@router.get("/keys", summary="Every key, without secrets", responses=INPUT)
def list_keys(svc: ServicesDep, who: Admin) -> dict[str, Any]:
    return {"keys": auth.list_keys(svc.ledger)}


@router.delete("/keys/{key_id}", summary="Revoke a key", responses=FOUND)
def revoke_key(
    key_id: Annotated[str, Path(max_length=40)], svc: ServicesDep, who: Admin
) -> dict[str, Any]:
    auth.revoke_key(svc.ledger, key_id, actor=who.actor, role=who.role)
    return {"key_id": key_id, "revoked": True}


@router.get(
    "/audit",
    summary="The audit log, newest first: every state change and its actor",
    responses=INPUT,
)
def audit(
    svc: ServicesDep,
    who: Admin,
    limit: Limit = 100,
    actor: Annotated[str | None, Query(max_length=300)] = None,
) -> dict[str, Any]:
    return {"entries": list(store.audit_rows(svc.ledger, limit=limit, actor=actor))}
