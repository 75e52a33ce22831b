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
import pyarrow as pa
import pyarrow.compute as pc

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
            acc = first_appearance(acc)
            size = int(acc.max()) + 1
        acc = acc * width + (c + 1)
        size *= width
    code = first_appearance(acc)
    # Numbered by first appearance: a row starts a group when its id exceeds every earlier one.
    prev = np.empty(n, dtype=np.int64)
    prev[0] = -1
    np.maximum.accumulate(code[:-1], out=prev[1:])
    return code, np.flatnonzero(code > prev)


def first_appearance(values: np.ndarray) -> np.ndarray:
    """Ids of the distinct values of an int64 array, numbered in the order of their first row
    (a hash table: Arrow's dictionary encoding)."""
    enc = pc.dictionary_encode(pa.array(values, type=pa.int64()))
    out: np.ndarray = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return out


def group_rows(ids: np.ndarray) -> list[np.ndarray]:
    """The rows of each group id (0, 1, ...), each in row order."""
    if not ids.size:
        return []
    top = int(ids.max())
    # A stable sort of small integers is a radix sort.
    small = ids.astype(np.int16) if top < 2**15 else ids
    order = np.argsort(small, kind="stable")
    bounds = np.flatnonzero(np.diff(ids[order])) + 1
    return np.split(order, bounds)


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
    """Relevant-epoch signatures of dates: whether a parameter set says the same on two dates.

    Each parameter's dated entry in force is computed once per date code (a column); comparing
    two dates is then a comparison of the few columns that vary, vectorised over date codes.
    """

    def __init__(self, rules: RuleSet, dates: Col) -> None:
        self.rules = rules
        self.dates = dates
        self.valid = np.array([isinstance(d, dt.date) for d in dates.values], dtype=bool)
        self.ordinals = np.array(
            [d.toordinal() if isinstance(d, dt.date) else 0 for d in dates.values], dtype=np.int64
        )
        self.years = np.array(
            [d.year if isinstance(d, dt.date) else 0 for d in dates.values], dtype=np.int64
        )
        self.columns: dict[Any, np.ndarray] = {}
        self.varying: dict[tuple[tuple[str, ...], bool, tuple[str, ...]], list[np.ndarray]] = {}
        self.constant: dict[Any, bool] = {}

    def _column(self, key: Any) -> np.ndarray:
        col = self.columns.get(key)
        if col is not None:
            return col
        kind = key[0]
        valid = self.valid
        days = self.ordinals
        out = np.zeros(len(days), dtype=np.int64)
        if kind == "year":
            out[valid] = self.years[valid]
        elif kind == "entry":
            p = self.rules.parameters[key[1]]
            starts = np.array([v.start.toordinal() for v in p.values], dtype=np.int64)
            out[valid] = np.searchsorted(starts, days[valid], side="right")
        elif kind == "before":
            # Is the day before the date a date-valued parameter holds (per entry)?
            p = self.rules.parameters[key[1]]
            entry = self._column(("entry", key[1]))
            target = np.zeros(len(p.values) + 1, dtype=np.int64)
            dated = np.zeros(len(p.values) + 1, dtype=bool)
            for i, v in enumerate(p.values, start=1):
                if isinstance(v.value, str):
                    with contextlib.suppress(ValueError):
                        target[i] = dt.date.fromisoformat(v.value).toordinal()
                        dated[i] = True
            rows = valid & dated[entry]
            out[rows] = 1 + (days[rows] < target[entry[rows]])
        else:  # ("member", name, code): is the country in the list on that day
            entry = self._column(("entry", key[1]))
            per_entry = np.zeros(len(self.rules.parameters[key[1]].values) + 1, dtype=np.int64)
            firsts = np.flatnonzero(valid)
            seen_entries, at = np.unique(entry[firsts], return_index=True)
            for i, k in zip(seen_entries.tolist(), firsts[at].tolist(), strict=True):
                try:
                    members = self.rules.members(key[1], self.dates.values[k])
                    per_entry[i] = 1 + int(key[2] in members)
                except AiexportError:
                    per_entry[i] = 0
            out[valid] = per_entry[entry[valid]]
        self.columns[key] = out
        return out

    def same(
        self, names: tuple[str, ...], year: bool, codes: tuple[str, ...], day: int
    ) -> np.ndarray:
        """Per date code: whether the parameters `names` (and the year, with `year`) say the
        same on it as on date code `day`, for the countries `codes` (`ids(...) == ids[day]`,
        without numbering the signatures)."""
        key = (names, year, codes)
        cols = self.varying.get(key)
        if cols is None:
            cols = self.varying[key] = self._varying(names, year, codes)
        out: np.ndarray = self.valid == self.valid[day]
        for col in cols:
            out &= col == col[day]
        return out

    def _varying(
        self, names: tuple[str, ...], year: bool, codes: tuple[str, ...]
    ) -> list[np.ndarray]:
        """The signature's columns that are not the same on every valid date."""
        keys: list[Any] = [("year",)] if year else []
        for name in names:
            if name.startswith("countries.") and name != "countries.aliases":
                keys += [("member", name, c) for c in dict.fromkeys(codes)]
            else:
                keys += [("entry", name), ("before", name)]
        out = []
        for k in keys:
            flat = self.constant.get(k)
            if flat is None:
                col = self._column(k)
                v = col[self.valid]
                flat = self.constant[k] = bool(v.size == 0 or (v == v[0]).all())
            if not flat:
                out.append(self._column(k))
        return out
