"""Decision keys: what an order's decision depends on, apart from quota state.

Two orders with the same key get the same decision template from the engine. The key holds every
order field the engine reads except the date, the quantity and the authorization's reference: the
date is replaced by its *epoch* (the calendar year and which dated value of every law parameter
is in force), the reference by a placeholder that the templates carry as a token.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
from typing import Any

import numpy as np

from aiexport.rules.ruleset import RuleSet

from ._convert import Col, Orders

KEY_COLUMNS = (
    "item",
    "item_kind",
    "chips_per_unit",
    "tpp_per_unit",
    "die_area_mm2",
    "datacenter",
    "memory_bandwidth_gbps",
    "training_ops",
    "open_weights",
    "derived_from_published",
    "additional_training_ops",
    "less_capable_than_open",
    "secure_storage",
    "destination",
    "consignee_country",
    "consignee_hq_country",
    "consignee_government",
    "end_use",
)


def epoch_signature(rules: RuleSet, day: dt.date) -> tuple[Any, ...]:
    """Everything about `day` that the engine can see, except the date itself."""
    sig: list[Any] = [day.year]
    for name in sorted(rules.parameters):
        p = rules.parameters[name]
        starts = [v.start for v in p.values]
        i = bisect.bisect_right(starts, day)
        sig.append(i)
        if i:
            value = p.values[i - 1].value
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    sig.append(day < dt.date.fromisoformat(value))
    return tuple(sig)


def epochs(rules: RuleSet, dates: Col) -> np.ndarray:
    """Epoch id per distinct date code."""
    ids: dict[tuple[Any, ...], int] = {}
    out = np.full(len(dates.values), -1, dtype=np.int64)
    for k, d in enumerate(dates.values):
        if isinstance(d, dt.date):
            out[k] = ids.setdefault(epoch_signature(rules, d), len(ids))
    return out


def auth_kinds(auth: Col) -> np.ndarray:
    """Per authorization code: a code for its kind (prefixed kinds lose their reference)."""
    ids: dict[str | None, int] = {}
    out = np.empty(len(auth.values), dtype=np.int64)
    for k, a in enumerate(auth.values):
        kind = a.split(":", 1)[0] if isinstance(a, str) and ":" in a else a
        out[k] = ids.setdefault(kind, len(ids))
    return out


def combine(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by several integer code columns: (group id per row, first row of each group)."""
    n = len(columns[0]) if columns else 0
    acc = np.zeros(n, dtype=np.int64)
    size = 1
    for c in columns:
        c = c.astype(np.int64)
        width = int(c.max()) + 2 if n else 1
        if size * width >= 2**62:
            _, acc = np.unique(acc, return_inverse=True)
            size = int(acc.max()) + 1 if n else 1
        acc = acc * width + (c + 1)
        size *= width
    _uniq, first, inverse = np.unique(acc, return_index=True, return_inverse=True)
    # Number groups in order of their first row, so representatives are the earliest rows.
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def decision_keys(rules: RuleSet, orders: Orders) -> tuple[np.ndarray, np.ndarray]:
    cols = orders.cols
    epoch = epochs(rules, cols["order_date"])[cols["order_date"].codes]
    kinds = auth_kinds(cols["authorization"])[cols["authorization"].codes]
    columns = [epoch, kinds] + [cols[c].codes for c in KEY_COLUMNS]
    return combine(columns)
