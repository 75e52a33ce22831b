"""Detection: the real `aiexport.intel` pipeline over the orders that shipped, capped by capacity.

The simulator hands the orders that shipped to Tier 2 destinations (where diversion through
shells and hubs happens; contract §1 columns, shells added by the evasive groups included) to
`aiexport.intel.investigate`, which never sees truth.json. The analysts then work the cases in
score order, as many as the scenario's enforcement capacity allows over the world's span
(`cases_per_year` × years). A worked case is a *find* when at least half of its orders are
planted evasion (the rule `bench/detect.py` uses); the evasive orders of finds are *caught*.
More capacity works a longer prefix of the same ranking, so it never catches less.

A `Detector` is any callable from an order table to ranked cases; tests may pass their own.
When `aiexport.intel` cannot be imported the simulator reports detection as unavailable rather
than guessing.
"""

from __future__ import annotations

import importlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aiexport.rules.ruleset import RuleSet


@dataclass(frozen=True)
class Case:
    case_id: str
    score: float
    order_ids: tuple[str, ...]


# Called with the shipped orders and the scenario's rule set (the analysts enforce the
# scenario's allowance: STRUCTURING is measured against it).
Detector = Callable[[pa.Table, RuleSet], Sequence[Case]]


def intel_detector() -> Detector | None:
    """The real pipeline, or None when `aiexport.intel.investigate` is not available."""
    try:
        intel = importlib.import_module("aiexport.intel")
    except ImportError:
        return None
    investigate = getattr(intel, "investigate", None)
    if investigate is None:
        return None

    def run(orders: pa.Table, rules: RuleSet | None = None) -> list[Case]:
        with tempfile.TemporaryDirectory(prefix="aiexport-sim-") as tmp:
            path = Path(tmp) / "orders.parquet"
            pq.write_table(orders, path)
            result = investigate(path, rules=rules) if rules is not None else investigate(path)
        return [_case(c) for c in _cases_of(result)]

    return run


def _cases_of(result: Any) -> list[Any]:
    if isinstance(result, dict):
        return list(result.get("cases", []))
    cases = getattr(result, "cases", result)
    return list(cases)


def _case(raw: Any) -> Case:
    get = raw.get if isinstance(raw, dict) else lambda k, d=None: getattr(raw, k, d)
    return Case(
        case_id=str(get("case_id", "")),
        score=float(get("score", 0.0)),
        order_ids=tuple(str(o) for o in get("order_ids", ()) or ()),
    )


@dataclass(frozen=True)
class Detection:
    cases: int  # cases the pipeline produced
    worked: int  # cases the analysts worked (capacity)
    finds: int  # worked cases that are at least half evasion
    caught_order_ids: frozenset[str]


def work_cases(cases: Sequence[Case], capacity: int, evasive_ids: frozenset[str]) -> Detection:
    ranked = sorted(cases, key=lambda c: (-c.score, c.case_id))
    worked = ranked[: max(0, capacity)]
    caught: set[str] = set()
    finds = 0
    for c in worked:
        if not c.order_ids:
            continue
        hits = [o for o in c.order_ids if o in evasive_ids]
        if 2 * len(hits) >= len(c.order_ids):
            finds += 1
            caught.update(hits)
    return Detection(len(cases), len(worked), finds, frozenset(caught))
