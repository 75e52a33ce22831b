"""Keys: what an order's decision depends on, apart from quota state.

A decision is split in three parts that depend on different things:

* the classification of the item (TPP, ECCN and its reasons): the *item key* — every item field
  and the date's full epoch (which dated value of every law parameter is in force);
* the rest of the decision: the *decision key* — the item's class (ECCN, paragraph, datacenter
  flag, model weights or not), the parties (destination, location, headquarters, government
  ownership), the end use (as ACM and LPP see it), the authorization's kind, and the date's
  *relevant* epoch: only the law parameters the engine actually read for that key (recorded
  while it decides the key's first order), plus the year where an LPP allowance is involved;
* the date itself, the quantity, the consignee and the authorization's reference, which only
  appear as text or in quota arithmetic.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

from aiexport.errors import AiexportError
from aiexport.rules.ruleset import RuleSet

from ._convert import Col, Orders

ITEM_COLUMNS = (
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
)
PARTY_COLUMNS = (
    "destination",
    "consignee_country",
    "consignee_hq_country",
    "consignee_government",
    "secure_storage",
)


def epoch_signature(
    rules: RuleSet,
    day: dt.date,
    names: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
) -> tuple[Any, ...]:
    """What the parameters `names` (default: all) say on `day`: which dated value is in force,
    and for date-valued parameters whether `day` is before that date.

    With `codes`, a country list (`countries.*`) contributes only whether each of those codes is
    in it: a country joining or leaving a group changes nothing for orders of other countries.
    """
    sig: list[Any] = []
    for name in sorted(rules.parameters) if names is None else names:
        p = rules.parameters[name]
        if codes is not None and name.startswith("countries.") and name != "countries.aliases":
            try:
                members = rules.members(name, day)
            except AiexportError:
                sig.append(None)
                continue
            sig.append(tuple(c in members for c in codes))
            continue
        starts = [v.start for v in p.values]
        i = bisect.bisect_right(starts, day)
        sig.append(i)
        if i:
            value = p.values[i - 1].value
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    sig.append(day < dt.date.fromisoformat(value))
    return tuple(sig)


def full_epochs(rules: RuleSet, dates: Col) -> np.ndarray:
    """Epoch id (all parameters and the year) per distinct date code."""
    ids: dict[tuple[Any, ...], int] = {}
    out = np.full(len(dates.values), -1, dtype=np.int64)
    for k, d in enumerate(dates.values):
        if isinstance(d, dt.date):
            out[k] = ids.setdefault((d.year, *epoch_signature(rules, d)), len(ids))
    return out


def auth_kinds(auth: Col) -> np.ndarray:
    """Per authorization code: a code for its kind (prefixed kinds lose their reference)."""
    ids: dict[str | None, int] = {}
    out = np.empty(len(auth.values), dtype=np.int64)
    for k, a in enumerate(auth.values):
        kind = a.split(":", 1)[0] if isinstance(a, str) and ":" in a else a
        out[k] = ids.setdefault(kind, len(ids))
    return out


def special_end_uses(rules: RuleSet) -> frozenset[str]:
    """End uses the engine tests by value: ACM's (at any date) and resale."""
    out = {"resale"}
    try:
        for v in rules.param("exceptions.acm.end_uses").values:
            if isinstance(v.value, frozenset):
                out |= v.value
    except AiexportError:
        pass
    return frozenset(out)


def end_use_classes(rules: RuleSet, end_use: Col) -> np.ndarray:
    """Per end-use code: the value itself when the engine tests it, else one shared class."""
    special = special_end_uses(rules)
    ids: dict[str, int] = {}
    out = np.empty(len(end_use.values), dtype=np.int64)
    for k, e in enumerate(end_use.values):
        out[k] = ids.setdefault(e if e in special else "", len(ids))
    return out


def combine(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Group rows by several integer code columns: (group id per row, first row of each group).

    Groups are numbered in the order of their first row.
    """
    n = len(columns[0]) if columns else 0
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    acc = np.zeros(n, dtype=np.int64)
    size = 1
    for c in columns:
        c = c.astype(np.int64)
        width = int(c.max()) + 2
        if size * width >= 2**62:
            _, acc = np.unique(acc, return_inverse=True)
            acc = acc.reshape(-1).astype(np.int64)
            size = int(acc.max()) + 1
        acc = acc * width + (c + 1)
        size *= width
    _, first, inverse = np.unique(acc, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[inverse.reshape(-1)], first[order]


def item_keys(rules: RuleSet, orders: Orders) -> tuple[np.ndarray, np.ndarray]:
    cols = orders.cols
    epoch = full_epochs(rules, cols["order_date"])[cols["order_date"].codes]
    return combine([epoch] + [cols[c].codes for c in ITEM_COLUMNS])


def coarse_keys(
    rules: RuleSet, orders: Orders, item_class: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Decision keys before the relevant epoch is known."""
    cols = orders.cols
    kinds = auth_kinds(cols["authorization"])[cols["authorization"].codes]
    uses = end_use_classes(rules, cols["end_use"])[cols["end_use"].codes]
    return combine([item_class, kinds, uses] + [cols[c].codes for c in PARTY_COLUMNS])


class Signatures:
    """Relevant-epoch signatures of dates: for a parameter set, an id per distinct date code.

    Each parameter's dated entry in force is computed once per date code (a column); a
    signature is then the combination of a few columns, so a new parameter set costs only a
    vectorised grouping.
    """

    def __init__(self, rules: RuleSet, dates: Col) -> None:
        self.rules = rules
        self.dates = dates
        self.valid = np.array([isinstance(d, dt.date) for d in dates.values], dtype=bool)
        self.columns: dict[Any, np.ndarray] = {}
        self.cache: dict[tuple[tuple[str, ...], bool, tuple[str, ...]], np.ndarray] = {}

    def _column(self, key: Any) -> np.ndarray:
        col = self.columns.get(key)
        if col is not None:
            return col
        kind = key[0]
        days = self.dates.values
        out = np.zeros(len(days), dtype=np.int64)
        if kind == "year":
            for k, d in enumerate(days):
                if isinstance(d, dt.date):
                    out[k] = d.year
        elif kind == "entry":
            p = self.rules.parameters[key[1]]
            starts = [v.start for v in p.values]
            for k, d in enumerate(days):
                if isinstance(d, dt.date):
                    out[k] = bisect.bisect_right(starts, d)
        elif kind == "before":
            # Is the day before the date a date-valued parameter holds (per entry)?
            p = self.rules.parameters[key[1]]
            entry = self._column(("entry", key[1]))
            for k, d in enumerate(days):
                i = int(entry[k])
                if isinstance(d, dt.date) and i:
                    value = p.values[i - 1].value
                    if isinstance(value, str):
                        with contextlib.suppress(ValueError):
                            out[k] = 1 + int(d < dt.date.fromisoformat(value))
        else:  # ("member", name, code): is the country in the list on that day
            p = self.rules.parameters[key[1]]
            entry = self._column(("entry", key[1]))
            per_entry: dict[int, int] = {}
            for k, d in enumerate(days):
                if not isinstance(d, dt.date):
                    continue
                i = int(entry[k])
                v = per_entry.get(i)
                if v is None:
                    try:
                        members = self.rules.members(key[1], d)
                        v = 1 + int(key[2] in members)
                    except AiexportError:
                        v = 0
                    per_entry[i] = v
                out[k] = v
        self.columns[key] = out
        return out

    def ids(self, names: tuple[str, ...], year: bool, codes: tuple[str, ...]) -> np.ndarray:
        """Signature id of every date code (equal ids: the parameters say the same for the
        countries `codes`)."""
        key = (names, year, codes)
        out = self.cache.get(key)
        if out is None:
            cols: list[np.ndarray] = [self.valid.astype(np.int64)]
            if year:
                cols.append(self._column(("year",)))
            for name in names:
                if name.startswith("countries.") and name != "countries.aliases":
                    cols += [self._column(("member", name, c)) for c in codes]
                else:
                    cols.append(self._column(("entry", name)))
                    cols.append(self._column(("before", name)))
            out, _ = combine(cols)
            self.cache[key] = out
        return out
