"""Licenses granted by BIS and Data Center VEU authorizations: read (analysts), register (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from aiexport.api import store
from aiexport.api.auth import Principal
from aiexport.api.deps import Admin, Analyst, ServicesDep
from aiexport.api.models import LicenseIn, VeuIn
from aiexport.api.routers._common import FOUND, WRITE
from aiexport.api.services import Services
from aiexport.errors import InputError, NotFound, ParameterNotFound
from aiexport.ledger import default_valid_until
from aiexport.rules.allocation import license_allocation
from aiexport.rules.quota import LicenseInfo, VeuInfo

router = APIRouter(tags=["registry"])


@router.get("/v1/licenses", summary="Registered licenses (analysts)", responses=FOUND)
def licenses(svc: ServicesDep, who: Analyst) -> dict[str, Any]:
    return {"licenses": [i.to_record() for i in svc.ledger.licenses()]}


@router.get(
    "/v1/licenses/{license_id}", summary="One registered license (analysts)", responses=FOUND
)
def license_(
    license_id: Annotated[str, Path(max_length=200)], svc: ServicesDep, who: Analyst
) -> dict[str, Any]:
    info = svc.ledger.license(license_id)
    if info is None:
        raise NotFound(f"no registered license {license_id!r}")
    return info.to_record()


@router.post(
    "/v1/licenses",
    status_code=201,
    summary="Register a granted license; its TPP counts against the destination's allocation (admins)",
    responses=WRITE,
)
def add_license(body: LicenseIn, svc: ServicesDep, who: Admin) -> dict[str, Any]:
    dest = body.destination.upper()
    info = LicenseInfo(
        license_id=body.license_id.strip(),
        destination=dest,
        consignee=body.consignee,
        tpp=body.tpp,
        valid_from=body.valid_from,
        valid_until=body.valid_until or default_valid_until(body.valid_from),
    )
    rules = svc.rules()
    try:
        alloc = license_allocation(dest, body.valid_from, rules, svc.engine().countries)
    except ParameterNotFound:
        raise InputError(f"{rules.name} sets no country allocation on {body.valid_from}") from None
    receipt = svc.ledger.add_license(
        info,
        actor=who.actor,
        allocation_limit=None if alloc is None else alloc.limit_tpp,
        citation="" if alloc is None else alloc.citation,
        allocation_country=None if alloc is None else alloc.country,
        counts=alloc is not None,
    )
    _audit(
        svc,
        who,
        "license.register",
        info.license_id,
        {"tpp": str(info.tpp), "destination": dest, "replayed": receipt.replayed},
    )
    return {
        "license": info.to_record(),
        "replayed": receipt.replayed,
        "entries": list(receipt.seqs),
    }


@router.get("/v1/veus", summary="Registered Data Center VEUs (analysts)", responses=FOUND)
def veus(svc: ServicesDep, who: Analyst) -> dict[str, Any]:
    return {"veus": [v.to_record() for v in svc.ledger.veus()]}


@router.get("/v1/veus/{veu_id}", summary="One registered VEU (analysts)", responses=FOUND)
def veu(
    veu_id: Annotated[str, Path(max_length=200)], svc: ServicesDep, who: Analyst
) -> dict[str, Any]:
    info = svc.ledger.veu(veu_id)
    if info is None:
        raise NotFound(f"no registered VEU {veu_id!r}")
    return info.to_record()


@router.post(
    "/v1/veus",
    status_code=201,
    summary="Register a Data Center VEU authorization (admins)",
    responses=WRITE,
)
def add_veu(body: VeuIn, svc: ServicesDep, who: Admin) -> dict[str, Any]:
    info = VeuInfo(
        veu_id=body.veu_id.strip(),
        kind=body.kind,
        holder=body.holder.strip(),
        hq_country=body.hq_country.upper(),
        countries=frozenset(c.upper() for c in body.countries),
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        holder_name=body.holder_name,
    )
    created = svc.ledger.add_veu(info, actor=who.actor)
    _audit(svc, who, "veu.register", info.veu_id, {"kind": info.kind, "created": created})
    return {"veu": info.to_record(), "created": created}


def _audit(svc: Services, who: Principal, action: str, target: str, detail: dict[str, Any]) -> None:
    svc.ledger.db.write(
        lambda conn: store.log(conn, who.actor, who.role, action, target, detail), lock=False
    )
