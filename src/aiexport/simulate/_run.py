"""One simulation: a world under one scenario, from static decisions to metrics."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from aiexport.errors import InputError
from aiexport.rules.decide import Engine
from aiexport.simulate._evasion import adapt
from aiexport.simulate._replay import replay
from aiexport.simulate._static import MILLI, static_decisions
from aiexport.simulate.detect import Case, Detection, Detector, work_cases
from aiexport.simulate.scenario import Scenario
from aiexport.simulate.world import World

LPP_PARAM = "exceptions.lpp.annual_limit_tpp"
SWEEP_ALIASES = {
    "lpp_allowance": LPP_PARAM,
    "enforcement_capacity": "enforcement.cases_per_year",
    "cases_per_year": "enforcement.cases_per_year",
    "cost_per_shell": "evasion.cost_per_shell_usd",
}


@dataclass
class Run:
    """Everything one scenario produced: metrics plus what detection needs."""

    metrics: dict[str, Any]
    shipped_tier2: pa.Table | None = None
    evasive_ids: frozenset[str] = frozenset()
    tpp_by_id: dict[str, int] = field(default_factory=dict)
    value_by_id: dict[str, float] = field(default_factory=dict)


def _tpp(milli: int | np.integer[Any]) -> float:
    return round(int(milli) / MILLI, 3)


def run_scenario(world: World, scenario: Scenario, *, keep_for_detection: bool = True) -> Run:
    """Static decisions, evasive adaptation and quota replay; detection is applied afterwards."""
    t0 = time.perf_counter()
    engine = Engine(scenario.rules)
    days0 = world.days()
    static = static_decisions(world.table, days0, engine)
    scheme0 = world.scheme_of_row()
    adapted = adapt(
        world.table, days0, static, scheme0, world.schemes, scenario.shell_fill_share, scenario.seed
    )
    table, src = adapted.table, adapted.src
    days = days0[src]
    scheme = scheme0[src]
    evasive = scheme >= 0
    quantity = np.asarray(table.column("quantity").to_numpy(zero_copy_only=False), dtype=np.int64)
    if (quantity <= 0).any():
        raise InputError("every order needs a quantity > 0 (contract §1)", file=str(world.path))
    unit = static.unit_tpp[src]
    tpp = quantity * unit
    cons_col = (
        table.column("consignee_id")
        if "consignee_id" in table.column_names
        else table.column("consignee_name")
    )
    cons_filled = pc.coalesce(cons_col, table.column("consignee_name"))
    consignee = np.asarray(
        pc.dictionary_encode(cons_filled.combine_chunks()).indices.to_numpy(zero_copy_only=False),
        dtype=np.int32,
    )
    out = replay(
        days=days,
        position=adapted.position,
        tpp=tpp,
        consignee=consignee,
        evasive=evasive,
        cat=static.cat[src],
        fallback=static.fallback[src],
        policy=static.policy[src],
        alloc=static.alloc[src],
        alloc_limit=static.alloc_limit[src],
        lpp_limit=static.lpp_limit[src],
        wait_window_days=scenario.wait_window_days,
        review_days=scenario.license_review_days,
        case_by_case_approved=scenario.case_by_case_approved,
    )
    t_replay = time.perf_counter() - t0
    h100 = Decimal(static.h100_tpp)
    h100_milli = float(h100) * MILLI
    tier = static.tier[src]
    legit = ~evasive
    delivered = out.shipped & legit
    diverted = out.shipped & evasive
    demanded_m = int(tpp.sum())
    delivered_m = int(tpp[delivered].sum())
    refused_m = int(tpp[out.refused].sum())
    diverted_m = int(tpp[diverted].sum())

    dest_codes, dest_vals = _codes(table.column("destination"))
    by_country: dict[str, dict[str, Any]] = {}
    sums = np.bincount(
        dest_codes[delivered], weights=tpp[delivered].astype(np.float64), minlength=len(dest_vals)
    )
    tiers_of = np.zeros(len(dest_vals), dtype=np.int64)
    tiers_of[dest_codes] = tier
    # Ties by name: argsort's quicksort leaves equal totals in no particular order.
    for i in sorted(range(len(dest_vals)), key=lambda i: (-sums[i], str(dest_vals[i]))):
        if sums[i] <= 0:
            continue
        by_country[str(dest_vals[i])] = {
            "tpp": round(sums[i] / MILLI, 3),
            "h100": round(sums[i] / h100_milli, 1),
            "tier": int(tiers_of[i]),
        }
    by_tier: dict[str, dict[str, float]] = {}
    for t in (1, 2, 3):
        m = int(tpp[delivered & (tier == t)].sum())
        by_tier[str(t)] = {"tpp": _tpp(m), "h100": round(m / h100_milli, 1)}

    auth = (
        table.column("authorization").cast(pa.string())
        if "authorization" in table.column_names
        else None
    )
    applications = int(out.applied.sum())
    if auth is not None:
        cited = np.asarray(
            pc.starts_with(pc.fill_null(auth, ""), "LICENSE:").to_numpy(zero_copy_only=False),
            dtype=bool,
        )
        cited_applied = out.applied & cited
        if cited_applied.any():
            ids = set(auth.take(pa.array(np.nonzero(cited_applied)[0])).to_pylist())
            applications = int((out.applied & ~cited).sum()) + len(ids)
    legit_m = int(tpp[legit].sum())
    delayed = delivered & (out.delay_days > 0)
    delayed_m = int(tpp[delayed].sum())
    mean_delay = (
        float(np.average(out.delay_days[delayed], weights=tpp[delayed])) if delayed.any() else 0.0
    )

    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    ev_rows = np.nonzero(evasive)[0]
    shell_years = len({(int(consignee[r]), int(years[r])) for r in ev_rows}) if len(ev_rows) else 0
    span_years = (
        max((int(days0.max()) - int(days0.min()) + 1) / 365.25, 1 / 365.25) if world.n else 1.0
    )
    capacity = round(scenario.cases_per_year * span_years)

    allocations = {}
    for a, name in enumerate(static.alloc_names):
        limit_rows = static.alloc_limit[static.alloc == a]
        allocations[name] = {
            "limit_tpp": _tpp(int(limit_rows.max())) if len(limit_rows) else None,
            "licensed_tpp": _tpp(out.alloc_used.get(a, 0)),
            "denied_tpp": _tpp(out.alloc_denied.get(a, 0)),
        }

    metrics: dict[str, Any] = {
        "scenario": scenario.name,
        "description": scenario.description,
        "rule_set": scenario.rules.name,
        "scenario_file": scenario.path,
        "orders": len(tpp),
        "orders_in_world": world.n,
        "h100_tpp": float(h100),
        "years": round(span_years, 3),
        "demanded_tpp": _tpp(demanded_m),
        "delivered_tpp": _tpp(delivered_m),
        "refused_tpp": _tpp(refused_m),
        "diverted_tpp": _tpp(diverted_m),
        "demanded_h100": round(demanded_m / h100_milli, 1),
        "delivered_h100": round(delivered_m / h100_milli, 1),
        "refused_h100": round(refused_m / h100_milli, 1),
        "diverted_h100": round(diverted_m / h100_milli, 1),
        "conservation": {
            "demanded_milli_tpp": demanded_m,
            "delivered_plus_refused_plus_diverted_milli_tpp": delivered_m + refused_m + diverted_m,
            "holds": demanded_m == delivered_m + refused_m + diverted_m,
        },
        "delivered_by_tier": by_tier,
        "delivered_by_country": by_country,
        "license_applications": applications,
        "license_applications_tpp": _tpp(int(tpp[out.applied].sum())),
        "licenses_granted": int(out.licensed.sum()),
        "licenses_refused": int((out.applied & out.refused).sum()),
        "legit_demand_tpp": _tpp(legit_m),
        "legit_delayed_tpp": _tpp(delayed_m),
        "legit_delayed_h100": round(delayed_m / h100_milli, 1),
        "legit_delayed_orders": int(delayed.sum()),
        "legit_waited_for_new_year_tpp": _tpp(int(tpp[out.waited & legit].sum())),
        "legit_mean_delay_days": round(mean_delay, 1),
        "legit_refused_tpp": _tpp(int(tpp[out.refused & legit].sum())),
        "legit_refused_h100": round(int(tpp[out.refused & legit].sum()) / h100_milli, 1),
        "evasive_demand_tpp": _tpp(int(tpp[evasive].sum())),
        "evasive_refused_tpp": _tpp(int(tpp[out.refused & evasive].sum())),
        "diverted_caught_tpp": None,
        "diverted_caught_h100": None,
        "diverted_net_tpp": None,
        "evader_shell_years": shell_years,
        "evader_new_shells": adapted.new_shells,
        "evader_split_orders": adapted.split_orders,
        "evader_shell_cost_usd": round(shell_years * scenario.cost_per_shell_usd, 2),
        "evader_forfeited_usd": None,
        "evader_cost_usd": round(shell_years * scenario.cost_per_shell_usd, 2),
        "allocations": allocations,
        "detection": {"available": False, "capacity_cases": capacity},
        "truth_available": world.has_truth,
        "static_cases": static.keys,
        "assumptions": [
            {
                "key": a.dotted,
                "value": a.value,
                "unit": a.spec.unit,
                "label": a.spec.label,
                "source": a.source,
                "file": a.file,
            }
            for a in scenario.assumptions.values()
        ],
        "parameters": _key_parameters(scenario),
        "seconds": {"replay": round(t_replay, 3)},
    }
    run = Run(metrics)
    if keep_for_detection:
        ship2 = out.shipped & (tier == 2)
        idx = np.nonzero(ship2)[0]
        run.shipped_tier2 = table.take(pa.array(idx))
        ev_idx = np.nonzero(diverted)[0]
        # Only the diverted rows' ids are needed: no Python string for every order.
        ev_ids: list[str] = table.column("order_id").take(pa.array(ev_idx)).to_pylist()
        run.evasive_ids = frozenset(ev_ids)
        price = (
            table.column("unit_price_usd").to_numpy(zero_copy_only=False)
            if "unit_price_usd" in table.column_names
            else None
        )
        run.tpp_by_id = {o: int(tpp[i]) for o, i in zip(ev_ids, ev_idx, strict=True)}
        run.value_by_id = {
            o: float(
                0.0
                if price is None or price[i] is None or np.isnan(price[i])
                else price[i] * quantity[i]
            )
            for o, i in zip(ev_ids, ev_idx, strict=True)
        }
    return run


def apply_detection(run: Run, detection: Detection, scenario: Scenario, seconds: float) -> None:
    m = run.metrics
    caught_m = sum(run.tpp_by_id.get(o, 0) for o in detection.caught_order_ids)
    # An exact sum: a frozenset of strings iterates in an order that changes with the
    # process's hash seed, and a float sum in that order changed in the last bits with it.
    forfeited = math.fsum(run.value_by_id.get(o, 0.0) for o in detection.caught_order_ids)
    h100_milli = m["h100_tpp"] * MILLI
    diverted_m = round(m["diverted_tpp"] * MILLI)
    m["diverted_caught_tpp"] = _tpp(caught_m)
    m["diverted_caught_h100"] = round(caught_m / h100_milli, 1)
    m["diverted_net_tpp"] = _tpp(diverted_m - caught_m)
    m["evader_forfeited_usd"] = round(forfeited, 2)
    m["evader_cost_usd"] = round(m["evader_shell_cost_usd"] + forfeited, 2)
    m["detection"] = {
        "available": True,
        "capacity_cases": m["detection"]["capacity_cases"],
        "cases": detection.cases,
        "worked": detection.worked,
        "finds": detection.finds,
        "caught_orders": len(detection.caught_order_ids),
    }
    m["seconds"]["detection"] = round(seconds, 3)


def detect_run(run: Run, scenario: Scenario, detector: Detector) -> None:
    t0 = time.perf_counter()
    table = run.shipped_tier2 if run.shipped_tier2 is not None else pa.table({})
    cases = detector(table, scenario.rules) if table.num_rows else []
    finish_detection(run, scenario, cases, time.perf_counter() - t0)


def finish_detection(run: Run, scenario: Scenario, cases: Sequence[Case], seconds: float) -> None:
    """Work the pipeline's cases up to capacity and fill in the detection metrics."""
    det = work_cases(cases, run.metrics["detection"]["capacity_cases"], run.evasive_ids)
    apply_detection(run, det, scenario, seconds)
    run.shipped_tier2 = None  # the hand-over table is large; the metrics are all that is kept


def _key_parameters(scenario: Scenario) -> dict[str, Any]:
    day = dt.date(2025, 6, 1)
    rules = scenario.rules
    out: dict[str, Any] = {"regime_on_2025_06_01": str(rules.value("controls.regime", day))}
    for name in (LPP_PARAM, "allocation.country.limit_tpp", "allocation.country.supp5b_increase"):
        try:
            out[name] = float(rules.number(name, day))
        except Exception:
            out[name] = None
    try:
        out["countries.supp5b"] = sorted(rules.members("countries.supp5b", day))
    except Exception:
        out["countries.supp5b"] = []
    return out


def _codes(col: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[Any]]:
    enc = pc.dictionary_encode(col.combine_chunks(), null_encoding="encode")
    return np.asarray(
        enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64
    ), enc.dictionary.to_pylist()


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """`lpp_allowance=5e6:27e6:12` -> ("exceptions.lpp.annual_limit_tpp", [5e6, …, 27e6])."""
    try:
        name, spec = text.split("=", 1)
        start, stop, count = spec.split(":")
        values = np.linspace(float(start), float(stop), int(count)).tolist()
    except ValueError:
        raise InputError(
            f"--sweep {text!r}: write NAME=START:STOP:COUNT, e.g. lpp_allowance=5e6:27e6:12"
        ) from None
    if int(count) < 1:
        raise InputError(f"--sweep {text!r}: COUNT must be at least 1")
    return SWEEP_ALIASES.get(name.strip(), name.strip()), [float(v) for v in values]


def sweep_scenario(scenario: Scenario, target: str, value: float) -> Scenario:
    if target in scenario.assumptions:
        spec = scenario.assumptions[target].spec
        v: Any = round(value) if spec.kind is int else value
        return scenario.with_assumption(target, v, f"sweep {target}={v}")
    if target in scenario.rules.parameters:
        v2 = Decimal(round(value))
        return scenario.with_parameter(target, v2, f"sweep {target}={v2}", f"@{target}={v2}")
    raise InputError(
        f"--sweep: {target!r} is neither an assumption ({', '.join(sorted(scenario.assumptions))}) "
        f"nor a rule parameter; aliases: {', '.join(sorted(SWEEP_ALIASES))}"
    )
