"""The quota ledger: balances, an account's history, verification; remaining quota as a number."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from aiexport.api.deps import Analyst, Caller, Limit, OnDate, RuleSetName, ServicesDep
from aiexport.api.routers._common import FOUND, INPUT
from aiexport.errors import InputError, ParameterNotFound
from aiexport.ledger import verify
from aiexport.rules.orders import consignee_key

router = APIRouter(tags=["ledger"])


def _num(v: Decimal) -> int | float:
    return int(v) if v == v.to_integral_value() else float(v)


@router.get("/v1/ledger/balances", summary="Every account's balance (analysts)", responses=INPUT)
def balances(
    svc: ServicesDep,
    who: Analyst,
    prefix: Annotated[
        str | None, Query(max_length=300, description="e.g. `lpp/` or `allocation/`")
    ] = None,
    limit: Limit = 1000,
) -> dict[str, Any]:
    rows = svc.ledger.balances(prefix=prefix)
    return {"balances": [b.to_record() for b in rows[:limit]], "total": len(rows)}


@router.get(
    "/v1/ledger/accounts/{account:path}",
    summary="One account: balance and every entry (analysts)",
    responses=FOUND,
)
def account(
    account: Annotated[str, Path(max_length=300)], svc: ServicesDep, who: Analyst
) -> dict[str, Any]:
    bal = svc.ledger.balance(account)
    return {
        "balance": bal.to_record(),
        "entries": [e.to_record() for e in svc.ledger.history(account)],
    }


@router.get(
    "/v1/ledger/verify", summary="Check the hash chain and the balances (analysts)", responses=INPUT
)
def verify_ledger(svc: ServicesDep, who: Analyst) -> dict[str, Any]:
    report = verify(svc.ledger)
    return {
        "ok": report.ok,
        "entries": report.entries,
        "head": {"seq": report.head_seq, "hash": report.head_hash},
        "problems": [{"kind": p.kind, "seq": p.seq, "message": p.message} for p in report.problems],
    }


@router.get(
    "/v1/quotas/lpp",
    summary="A consignee's remaining LPP allowance for a year, as a number (every role)",
    responses=INPUT,
)
def lpp_remaining(
    svc: ServicesDep,
    who: Caller,
    consignee_name: Annotated[str | None, Query(max_length=500)] = None,
    country: Annotated[
        str | None,
        Query(min_length=2, max_length=2, description="Consignee's country, with its name."),
    ] = None,
    consignee_id: Annotated[str | None, Query(max_length=200)] = None,
    on: OnDate = None,
    rule_set: RuleSetName = None,
) -> dict[str, Any]:
    if not consignee_id and not (consignee_name and country):
        raise InputError("give consignee_id, or consignee_name and country")
    day = on or dt.date.today()
    key = consignee_key(consignee_id, consignee_name or "", (country or "").upper())
    rules = svc.rules(rule_set)
    try:
        limit = rules.number("exceptions.lpp.annual_limit_tpp", day)
    except ParameterNotFound:
        raise InputError(f"{rules.name} has no LPP allowance in force on {day}") from None
    used = svc.ledger.used(f"lpp/{key}/{day.year}")
    return {
        "consignee": key,
        "year": day.year,
        "remaining_tpp": _num(max(limit - used, Decimal(0))),
    }


@router.get(
    "/v1/quotas/allocation/{country}",
    summary="A country's remaining allocation, as a number (every role)",
    responses=INPUT,
)
def allocation_remaining(
    country: Annotated[str, Path(min_length=2, max_length=2)], svc: ServicesDep, who: Caller
) -> dict[str, Any]:
    code = country.upper()
    found = svc.ledger.balances(account=f"allocation/{code}")
    if not found:
        return {
            "country": code,
            "used_tpp": 0,
            "remaining_tpp": None,
            "note": "nothing licensed against this allocation yet",
        }
    b = found[0]
    return {
        "country": code,
        "used_tpp": _num(b.used),
        "remaining_tpp": None if b.remaining is None else _num(b.remaining),
    }
