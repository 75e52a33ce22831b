"""Dashboard pages: server-rendered Jinja2 over the same services as the API.

A browser signs in with an API key (kept in an HttpOnly, SameSite=Strict cookie); pages apply
the key's role exactly as the API does. Pages only read: an order checked here is decided, not
recorded. Charts use the plotly.js bundled with the `plotly` package, served from /static.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select

from aiexport.api import services as svc_mod
from aiexport.api import store
from aiexport.api.auth import Principal, check_key
from aiexport.api.jobs import latest_result
from aiexport.api.services import Services
from aiexport.errors import AiexportError, AuthError
from aiexport.rules.items import default_catalog
from aiexport.rules.orders import END_USES
from aiexport.web import charts

COOKIE = "aiexport_key"
_HERE = Path(str(resources.files("aiexport") / "web"))
templates = Jinja2Templates(directory=str(_HERE / "templates"))
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """The page needs a signed-in browser (or a key of a higher role)."""


def _svc(request: Request) -> Services:
    s: Services = request.app.state.services
    return s


def viewer(request: Request) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginRequired()
    try:
        return check_key(_svc(request).ledger, token)
    except AuthError:
        raise LoginRequired() from None


Viewer = Annotated[Principal, Depends(viewer)]


def _page(
    request: Request, name: str, who: Principal | None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"who": who, "page": name.removesuffix(".html"), **ctx}, status_code=status
    )


def _analyst(request: Request, who: Principal) -> HTMLResponse | None:
    if who.at_least("analyst"):
        return None
    return _page(
        request,
        "forbidden.html",
        who,
        status=403,
        message="This page is for analysts; your key acts for one exporter.",
    )


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    return FileResponse(
        path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/static/app.css")
def app_css() -> FileResponse:
    return FileResponse(_HERE / "static" / "app.css", media_type="text/css")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None)


@router.post("/login", response_model=None)
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("key") or [""])[0].strip()
    try:
        who = check_key(_svc(request).ledger, token)
    except AuthError as exc:
        return _page(request, "login.html", None, status=401, error=exc.message)
    resp = RedirectResponse("/" if who.at_least("analyst") else "/check", status_code=303)
    resp.set_cookie(
        COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return resp


@router.get("/logout")
def logout() -> RedirectResponse:
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE)
    return resp


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, who: Viewer) -> HTMLResponse:
    if not who.at_least("analyst"):
        return RedirectResponse("/check", status_code=303)  # type: ignore[return-value]
    svc = _svc(request)
    engine = svc.engine()
    day = dt.date.today()
    countries = [
        {"code": s.code, "name": s.code, "tier": s.tier} for s in engine.countries.table(day)
    ]
    d = store.decisions.c
    month = func.substr(d.order_date, 1, 7)
    with svc.ledger.db.read() as conn:
        monthly = [
            (r[0], int(r[1]), float(r[2]))
            for r in conn.execute(
                select(month, d.tier, func.sum(d.tpp_total)).group_by(month, d.tier)
            )
        ]
        totals = conn.execute(select(func.count(), func.coalesce(func.sum(d.tpp_total), 0.0))).one()
    allocs = sorted(svc.ledger.balances(prefix="allocation/"), key=lambda b: b.used, reverse=True)[
        :6
    ]
    gauge_rows = [
        {
            "country": b.account.split("/", 1)[1],
            "used": float(b.used),
            "limit": None if b.limit is None else float(b.limit),
        }
        for b in allocs
    ]
    inv = latest_result(svc.ledger, "investigation")
    figs = {
        "tiers": charts.html(charts.tiers_treemap(countries), height=420, div_id="chart-tiers"),
        "gauges": charts.html(
            charts.allocation_gauges(gauge_rows), height=260, div_id="chart-gauges"
        )
        if gauge_rows
        else None,
        "tpp": charts.html(charts.tpp_by_tier(monthly), div_id="chart-tpp") if monthly else None,
    }
    return _page(
        request,
        "overview.html",
        who,
        figs=figs,
        orders=int(totals[0]),
        tpp=float(totals[1]),
        licenses=len(svc.ledger.licenses()),
        cases=len(inv[1].get("cases", [])) if inv else None,
        tier_counts={t: sum(1 for c in countries if c["tier"] == t) for t in (1, 2, 3)},
        day=day,
    )


_FORM_FIELDS = (
    "order_id", "order_date", "exporter", "item", "quantity", "destination", "consignee_name",
    "consignee_country", "consignee_hq_country", "end_use", "authorization",
)  # fmt: skip


@router.get("/check", response_class=HTMLResponse)
def check(request: Request, who: Viewer) -> HTMLResponse:
    svc = _svc(request)
    q = request.query_params
    form: dict[str, str] = {k: q.get(k, "") for k in _FORM_FIELDS}
    form["order_date"] = form["order_date"] or dt.date.today().isoformat()
    form["order_id"] = form["order_id"] or "check-1"
    form["quantity"] = form["quantity"] or "1"
    if who.exporter:
        form["exporter"] = who.exporter
    result = error = None
    status = 200
    if q.get("item") or q.get("destination"):
        raw = {k: v.strip() for k, v in form.items() if v.strip()}
        raw.setdefault("exporter", "dashboard")
        try:
            result = svc_mod.decide_one(svc, who, raw, commit=False).record
        except AiexportError as exc:
            error, status = exc.message, exc.status
    return _page(
        request,
        "check.html",
        who,
        status=status,
        form=form,
        result=result,
        error=error,
        items=default_catalog().identifiers(),
        end_uses=END_USES,
    )


@router.get("/decisions", response_class=HTMLResponse)
def decisions(request: Request, who: Viewer) -> HTMLResponse:
    rows, total = svc_mod.list_decisions(_svc(request).ledger, who, limit=200, offset=0)
    return _page(request, "decisions.html", who, rows=rows, total=total)


@router.get("/quotas", response_class=HTMLResponse)
def quotas(request: Request, who: Viewer) -> HTMLResponse:
    if (denied := _analyst(request, who)) is not None:
        return denied
    ledger = _svc(request).ledger
    lpp = sorted(ledger.balances(prefix="lpp/"), key=lambda b: b.used, reverse=True)
    alloc = sorted(ledger.balances(prefix="allocation/"), key=lambda b: b.used, reverse=True)
    lpp_rows = [
        {
            "label": b.account.removeprefix("lpp/"),
            "used": float(b.used),
            "limit": None if b.limit is None else float(b.limit),
            "b": b,
        }
        for b in lpp
    ]
    alloc_rows = [
        {
            "label": b.account.removeprefix("allocation/"),
            "used": float(b.used),
            "limit": None if b.limit is None else float(b.limit),
            "b": b,
        }
        for b in alloc
    ]
    figs = {
        "lpp": charts.html(
            charts.quota_bars(lpp_rows[:25], "LPP allowance by consignee and year (top 25)"),
            height=max(300, 22 * min(len(lpp_rows), 25) + 120),
            div_id="chart-lpp",
        )
        if lpp_rows
        else None,
        "alloc": charts.html(
            charts.quota_bars(alloc_rows[:25], "Country allocations"),
            height=max(260, 26 * min(len(alloc_rows), 25) + 120),
            div_id="chart-alloc",
        )
        if alloc_rows
        else None,
    }
    return _page(
        request,
        "quotas.html",
        who,
        lpp=lpp_rows[:200],
        alloc=alloc_rows,
        figs=figs,
        lpp_total=len(lpp_rows),
    )


def _cases(request: Request) -> tuple[str | None, list[dict[str, Any]]]:
    got = latest_result(_svc(request).ledger, "investigation")
    if got is None:
        return None, []
    return got[0], list(got[1].get("cases", []))


@router.get("/cases", response_class=HTMLResponse)
def cases(request: Request, who: Viewer) -> HTMLResponse:
    if (denied := _analyst(request, who)) is not None:
        return denied
    job_id, rows = _cases(request)
    return _page(request, "cases.html", who, cases=rows, job_id=job_id)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case(case_id: str, request: Request, who: Viewer) -> HTMLResponse:
    if (denied := _analyst(request, who)) is not None:
        return denied
    job_id, rows = _cases(request)
    found = next((c for c in rows if str(c.get("case_id")) == case_id), None)
    if found is None:
        return _page(
            request,
            "forbidden.html",
            who,
            status=404,
            message=f"No case {case_id} in the latest investigation.",
        )
    orders = _orders(_svc(request), [str(o) for o in found.get("order_ids", [])])
    figs = {
        "network": charts.html(
            charts.case_network(found, orders), height=520, div_id="chart-network"
        )
        if orders
        else None,
        "timeline": charts.html(
            charts.order_timeline(orders),
            height=max(300, 30 * len({o.get("consignee_name") for o in orders}) + 140),
            div_id="chart-timeline",
        )
        if orders
        else None,
    }
    return _page(request, "case.html", who, case=found, orders=orders, figs=figs, job_id=job_id)


def _orders(svc: Services, order_ids: list[str]) -> list[dict[str, Any]]:
    """The recorded orders of a case, each with its decision's authority and TPP."""
    d = store.decisions.c
    out: list[dict[str, Any]] = []
    with svc.ledger.db.read() as conn:
        for i in range(0, len(order_ids), 500):
            chunk = order_ids[i : i + 500]
            for r in conn.execute(
                select(d.order_json, d.authority, d.status, d.tpp_total).where(
                    d.order_id.in_(chunk)
                )
            ):
                o = json.loads(r.order_json)
                out.append(
                    {**o, "authority": r.authority, "status": r.status, "tpp_total": r.tpp_total}
                )
    return sorted(out, key=lambda o: (o["order_date"], o["order_id"]))


_SCENARIO_CHARTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Compute (H100 equivalents)",
        (
            ("delivered", "delivered_h100"),
            ("refused", "refused_h100"),
            ("diverted", "diverted_h100"),
        ),
    ),
    (
        "License workload",
        (
            ("applications", "license_applications"),
            ("granted", "licenses_granted"),
            ("refused", "licenses_refused"),
        ),
    ),
    (
        "Legitimate demand hurt (H100 equivalents)",
        (("delayed", "legit_delayed_h100"), ("refused", "legit_refused_h100")),
    ),
    (
        "Diversion to Tier 3 (H100 equivalents)",
        (("diverted", "diverted_h100"), ("caught", "diverted_caught_h100")),
    ),
    ("Cost to evaders (USD)", (("shells and forfeits", "evader_cost_usd"),)),
)


def scenario_figures(result: Mapping[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Side-by-side charts and a table from a simulation's metrics (`aiexport.simulate/1`)."""
    runs = list(result.get("scenarios", []))
    figs: list[str] = []
    for i, (title, metrics) in enumerate(_SCENARIO_CHARTS):
        data = {
            label: {r["scenario"]: float(r.get(key) or 0) for r in runs} for label, key in metrics
        }
        figs.append(
            charts.html(charts.side_by_side(data, title), height=340, div_id=f"chart-scenario-{i}")
        )
    tiers = {
        f"Tier {t}": {
            r["scenario"]: float(r["delivered_by_tier"].get(str(t), {}).get("h100", 0))
            for r in runs
        }
        for t in (1, 2, 3)
    }
    figs.append(
        charts.html(
            charts.side_by_side(tiers, "Delivered by tier (H100 equivalents)"),
            height=340,
            div_id="chart-scenario-tiers",
        )
    )
    keys = (
        "delivered_h100",
        "diverted_h100",
        "diverted_caught_h100",
        "license_applications",
        "legit_delayed_h100",
        "evader_new_shells",
        "evader_cost_usd",
    )
    table = [{"scenario": r["scenario"], **{k: r.get(k) for k in keys}} for r in runs]
    return figs, table


@router.get("/scenarios", response_class=HTMLResponse)
def scenarios(request: Request, who: Viewer) -> HTMLResponse:
    if (denied := _analyst(request, who)) is not None:
        return denied
    got = latest_result(_svc(request).ledger, "simulation")
    figs, table = scenario_figures(got[1]) if got is not None else ([], [])
    notes = got[1].get("notes", []) if got is not None else []
    return _page(
        request,
        "scenarios.html",
        who,
        figs=figs,
        table=table,
        notes=notes,
        job_id=got[0] if got else None,
    )


def mount(app: FastAPI) -> None:
    """Add the dashboard's pages to `app`."""

    async def to_login(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/login", status_code=303)

    app.add_exception_handler(LoginRequired, to_login)
    app.include_router(router)
