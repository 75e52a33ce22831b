"""The law as data: catalog, tiers and the parameters in force on a date."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path

from aiexport.api.deps import Caller, OnDate, RuleSetName, ServicesDep
from aiexport.api.routers._common import FOUND
from aiexport.errors import InputError, NotFound
from aiexport.rules.countries import CountryStatus, country_name, is_country_code
from aiexport.rules.items import classify, default_catalog
from aiexport.rules.orders import Order
from aiexport.rules.ruleset import available_rule_sets

router = APIRouter(prefix="/v1", tags=["reference"])


def _json(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, frozenset | set):
        return sorted(v)
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json(x) for x in v]
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def _country(st: CountryStatus) -> dict[str, Any]:
    return {
        "code": st.code,
        "name": country_name(st.code),
        "tier": st.tier,
        "groups": sorted(st.groups),
        "supp5b": st.supp5b,
        "restricted_740_2": st.restricted_740_2,
        "governed_by": st.governed_by,
    }


@router.get("/rule-sets", summary="The shipped rule sets", responses=FOUND)
def rule_sets(svc: ServicesDep, who: Caller) -> dict[str, Any]:
    return {
        "default": svc.rule_set,
        "rule_sets": [
            {"name": n, "description": svc.rules(n).description} for n in available_rule_sets()
        ],
    }


@router.get(
    "/catalog", summary="Every catalog item with its TPP and ECCN on a date", responses=FOUND
)
def catalog(
    svc: ServicesDep, who: Caller, on: OnDate = None, rule_set: RuleSetName = None
) -> dict[str, Any]:
    day = on or dt.date.today()
    cat = default_catalog()
    return {
        "on": day.isoformat(),
        "items": [_item(svc, i, day, rule_set, reasons=False) for i in cat.identifiers()],
    }


@router.get("/catalog/{item}", summary="One catalog item, classified with reasons", responses=FOUND)
def item(
    item: Annotated[str, Path(max_length=200)],
    svc: ServicesDep,
    who: Caller,
    on: OnDate = None,
    rule_set: RuleSetName = None,
) -> dict[str, Any]:
    entry = default_catalog().get(item)
    if entry is None:
        raise NotFound(
            f"item {item!r} is not in the catalog; GET /v1/catalog lists the identifiers"
        )
    return _item(svc, entry.item_id, on or dt.date.today(), rule_set, reasons=True)


def _item(
    svc: Any, item_id: str, day: dt.date, rule_set: str | None, *, reasons: bool
) -> dict[str, Any]:
    engine = svc.engine(rule_set)
    entry = default_catalog().lookup(item_id)
    spec = engine.item_spec(
        Order(
            order_id="c",
            order_date=day,
            exporter="",
            quantity=1,
            destination="US",
            consignee_name="",
            item=item_id,
        )
    )
    regime = str(engine.rules.value("controls.regime", day))
    c = classify(spec, engine.rules, day, regime)
    out = {
        "item": entry.item_id,
        "name": entry.ic.name,
        "vendor": entry.ic.vendor,
        "kind": entry.kind,
        "chips_per_unit": spec.chips_per_unit,
        "tpp_per_ic": _json(c.tpp_per_ic),
        "performance_density": None
        if c.performance_density is None
        else float(c.performance_density),
        "datacenter": spec.datacenter,
        "eccn": c.eccn,
    }
    if reasons:
        out["reasons"] = [r.to_record() for r in c.reasons]
    return out


@router.get("/tiers", summary="Every country's tier and groups on a date", responses=FOUND)
def tiers(
    svc: ServicesDep, who: Caller, on: OnDate = None, rule_set: RuleSetName = None
) -> dict[str, Any]:
    day = on or dt.date.today()
    engine = svc.engine(rule_set)
    return {
        "on": day.isoformat(),
        "rule_set": engine.rules.name,
        "countries": [_country(s) for s in engine.countries.table(day)],
    }


@router.get("/tiers/{country}", summary="One country's tier and groups on a date", responses=FOUND)
def tier(
    country: Annotated[str, Path(min_length=2, max_length=2)],
    svc: ServicesDep,
    who: Caller,
    on: OnDate = None,
    rule_set: RuleSetName = None,
) -> dict[str, Any]:
    code = country.upper()
    if not is_country_code(code):
        raise InputError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
    engine = svc.engine(rule_set)
    return _country(engine.countries.status(code, on or dt.date.today()))


@router.get(
    "/rules",
    summary="Every legal parameter in force on a date, with its value and citation",
    responses=FOUND,
)
def rules(
    svc: ServicesDep, who: Caller, on: OnDate = None, rule_set: RuleSetName = None
) -> dict[str, Any]:
    day = on or dt.date.today()
    rs = svc.rules(rule_set)
    return {
        "rule_set": rs.name,
        "description": rs.description,
        "on": day.isoformat(),
        "parameters": [
            {"name": p.name, "value": _json(v), "unit": p.unit, "citation": c}
            for p, v, c in rs.in_force(day)
        ],
    }
