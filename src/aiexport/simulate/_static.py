"""What the rule says about each order before any quota binds: the real engine, called once per
distinct case.

Orders that share every input the engine reads except the consignee's identity and the quantity
get the same decision when no quota is involved. So the simulator groups the orders by
(epoch of constant law, item class, destination, location, headquarters, government ownership,
end use, authorization asked for) and asks `Engine.decide` twice per group: with an empty quota
(which authority carries the order, which tier governs it) and with every LPP allowance used up
(what the order falls back to when its consignee's allowance binds: usually an individual
license, with its review policy and the country allocation it draws on). Quantities, LPP
allowances and country allocations are then replayed exactly, in integers, in `_replay`.

An *item class* is what the engine reads of an item: its ECCN, its 3A090 level and whether it is
a datacenter item, found with the engine's own `item_spec` and `classify` for each item spec and
epoch. An *epoch* is a span of days on which no parameter of the rule set changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from aiexport.errors import ParameterNotFound
from aiexport.rules.countries import CountryStatus
from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination
from aiexport.rules.items import classify
from aiexport.rules.orders import Order
from aiexport.rules.quota import LicenseInfo, MemoryQuota, VeuInfo
from aiexport.rules.ruleset import RuleSet
from aiexport.simulate.scenario import change_dates
from aiexport.simulate.world import EPOCH, to_day

FREE, LPP, LIC = 0, 1, 2
APPROVE, APPROVE_ALLOC, CASE_BY_CASE, DENY = 0, 1, 2, 3
MILLI = 1000
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]


class _LppUsedUp(MemoryQuota):
    """A quota view in which every consignee's LPP allowance is used up."""

    def used(self, account: str) -> Decimal:
        if account.startswith("lpp/"):
            return Decimal(10) ** 30
        return Decimal(0)

    def license(self, license_id: str) -> LicenseInfo | None:
        return None

    def veu(self, veu_id: str) -> VeuInfo | None:
        return None


@dataclass
class Static:
    """Per-row outcome of the rule with no quota binding, plus what quotas apply."""

    unit_tpp: I64  # milli-TPP of one unit (quantity 1)
    cat: I8  # FREE, LPP or LIC
    fallback: I8  # LPP rows: FREE or LIC once the allowance binds
    policy: I8  # license path: APPROVE, APPROVE_ALLOC, CASE_BY_CASE, DENY
    alloc: I32  # index into alloc_names, -1 when no allocation applies
    alloc_limit: I64  # milli-TPP
    lpp_limit: I64  # milli-TPP, per row (the allowance in force on its date)
    tier: I8
    alloc_names: list[str]
    h100_tpp: Decimal
    keys: int


def codes(arr: pa.Array | pa.ChunkedArray) -> tuple[I32, list[Any]]:
    """Integer codes and the distinct values (None included) of a column."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr, null_encoding="encode")
    idx = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int32)
    return idx, enc.dictionary.to_pylist()


def _combine(parts: Sequence[tuple[I32, int]]) -> tuple[I64, I64, I64]:
    """Unique combinations of several code columns: (first row of each, inverse, count)."""
    key = np.zeros(len(parts[0][0]), dtype=np.int64)
    span = 1
    for arr, card in parts:
        card = max(card, 1)
        if span * card >= 2**62:
            stacked = np.stack([a for a, _ in parts], axis=1)
            _, first, inverse = np.unique(stacked, axis=0, return_index=True, return_inverse=True)
            return (
                first.astype(np.int64),
                inverse.reshape(-1).astype(np.int64),
                np.int64(len(first)),
            )  # type: ignore[return-value]
        key = key * card + arr
        span *= card
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.astype(np.int64), np.int64(len(first))  # type: ignore[return-value]


def _col(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows)])


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def static_decisions(table: pa.Table, days: I32, engine: Engine) -> Static:
    rules = engine.rules
    auth = _col(table, "authorization").cast(pa.string())
    auth_kind = pc.utf8_upper(pc.replace_substring_regex(auth, pattern=":.*$", replacement=""))
    skip: tuple[str, ...] = ()
    kinds = set(pc.unique(auth_kind).to_pylist())
    if not kinds & {"UVEU", "NVEU"}:
        skip = ("allocation.nveu", "allocation.uveu")
    bounds = np.asarray([to_day(d) for d in change_dates(rules, skip)], dtype=np.int32)
    epoch = (np.searchsorted(bounds, days, side="right")).astype(np.int32)

    # Item specs and their classes per epoch.
    spec_cols = [
        "item",
        "item_kind",
        "chips_per_unit",
        "tpp_per_unit",
        "die_area_mm2",
        "datacenter",
        "memory_bandwidth_gbps",
    ]
    spec_codes = [codes(_col(table, c)) for c in spec_cols]
    sfirst, sinv, _ = _combine([(c, len(v)) for c, v in spec_codes])
    spec_vals = [
        {c: spec_codes[j][1][spec_codes[j][0][r]] for j, c in enumerate(spec_cols)} for r in sfirst
    ]
    unit_tpp_by_spec = np.zeros(len(sfirst), dtype=np.int64)
    for i, sv in enumerate(spec_vals):
        rep = _rep_order(sv, dt.date(2025, 6, 1), "US", "US", "US", False, "unknown", None)
        spec = engine.item_spec(rep)
        unit_tpp_by_spec[i] = int(
            (spec.tpp_per_ic * spec.chips_per_unit * MILLI).to_integral_value()
        )
    unit_tpp = unit_tpp_by_spec[sinv]

    n_epochs = len(bounds) + 1
    pfirst, pinv, _ = _combine([(sinv.astype(np.int32), len(sfirst)), (epoch, n_epochs)])
    class_ids: dict[tuple[str, str | None, bool], int] = {}
    class_rep_spec: list[int] = []
    pair_class = np.zeros(len(pfirst), dtype=np.int32)
    for i, r in enumerate(pfirst):
        day = EPOCH + dt.timedelta(days=int(days[r]))
        sv = spec_vals[sinv[r]]
        rep = _rep_order(sv, day, "US", "US", "US", False, "unknown", None)
        spec = engine.item_spec(rep)
        regime = str(rules.value("controls.regime", day))
        cls = classify(spec, rules, day, regime)
        ckey = (cls.eccn, cls.level, spec.datacenter)
        if ckey not in class_ids:
            class_ids[ckey] = len(class_ids)
            class_rep_spec.append(int(sinv[r]))
        pair_class[i] = class_ids[ckey]
    row_class = pair_class[pinv]

    dest = pc.utf8_upper(_col(table, "destination").cast(pa.string()))
    loc = pc.coalesce(_col(table, "consignee_country").cast(pa.string()), dest)
    hq = pc.coalesce(_col(table, "consignee_hq_country").cast(pa.string()), loc)
    gov = pc.fill_null(_col(table, "consignee_government").cast(pa.bool_()), False)
    end_use = pc.fill_null(_col(table, "end_use").cast(pa.string()), "unknown")
    # The engine reads the end use only for ACM (membership of its end-use list) and LPP
    # (`resale`): orders are grouped by that class, the group's first order stands for it.
    acm_uses: set[str] = set()
    for v in rules.param("exceptions.acm.end_uses").values:
        if isinstance(v.value, frozenset):
            acm_uses |= v.value
    use_codes, use_vals = codes(end_use)
    use_class = np.asarray(
        [0 if u == "resale" else 1 if u in acm_uses else 2 for u in use_vals], dtype=np.int32
    )[use_codes]
    dims = [codes(x) for x in (dest, loc, hq, gov, auth_kind)]
    dims.insert(4, (use_class, ["resale", "acm", "other"]))
    kfirst, kinv, nkeys = _combine(
        [(epoch, n_epochs), (row_class, len(class_ids)), *[(c, len(v)) for c, v in dims]]
    )

    k = int(nkeys)
    cat = np.zeros(k, dtype=np.int8)
    fallback = np.zeros(k, dtype=np.int8)
    policy = np.zeros(k, dtype=np.int8)
    alloc = np.full(k, -1, dtype=np.int32)
    alloc_limit = np.zeros(k, dtype=np.int64)
    lpp_limit = np.zeros(k, dtype=np.int64)
    tier = np.zeros(k, dtype=np.int8)
    alloc_names: list[str] = []
    alloc_index: dict[str, int] = {}
    empty = MemoryQuota()
    used_up = _LppUsedUp()
    countries = engine.countries
    effective = dt.date.fromisoformat(
        str(rules.value("controls.effective_date", dt.date(2025, 6, 1)))
    )
    law_sig: dict[int, str] = {}
    memo: dict[tuple[Any, ...], tuple[int, int, int, int, int, int, bool]] = {}
    # One date stands for each epoch (its first order date): the law is the same all through it.
    epoch_day = np.full(n_epochs, np.iinfo(np.int32).max, dtype=np.int64)
    np.minimum.at(epoch_day, epoch, days.astype(np.int64))
    for i, r in enumerate(kfirst):
        ep = int(epoch[r])
        day = EPOCH + dt.timedelta(days=int(epoch_day[ep]))
        if ep not in law_sig:
            law_sig[ep] = _law_signature(rules, day)
        vals = [v[c[r]] for c, v in dims]
        vals[4] = use_vals[use_codes[r]]
        tier_day = max(day, effective)
        st = [countries.status(str(vals[j]), d) for j in (0, 1, 2) for d in (day, tier_day)]
        # Everything the engine reads, with the countries reduced to their status: orders to
        # two countries of the same status get the same decision (only the allocation account
        # differs, and it is named below).
        sig = (law_sig[ep], int(row_class[r]), *(_status_sig(x) for x in st), *vals[3:])
        hit = memo.get(sig)
        if hit is None:
            sv = spec_vals[class_rep_spec[row_class[r]]]
            kind = vals[5]
            authorization = f"{kind}:SIM" if kind in ("LICENSE", "UVEU", "NVEU") else (kind or None)
            rep = _rep_order(
                sv, day, vals[0], vals[1], vals[2], bool(vals[3]), vals[4], authorization
            )
            hit = _decide_pair(engine, rep, empty, used_up, day)
            memo[sig] = hit
        cat[i], fallback[i], policy[i], lpp_limit[i], tier[i], limit, has_alloc = hit
        if has_alloc:
            dest_st, hq_st = st[0], st[4]
            # § 742.6(b)(10)(iii)(B) as the engine reads it (decide._allocation_country): the
            # destination's allocation when it is outside Tier 1, else the headquarters'.
            side = dest_st if not dest_st.tier1 and not dest_st.macau_or_d5 else hq_st
            name = side.governed_by
            if name not in alloc_index:
                alloc_index[name] = len(alloc_names)
                alloc_names.append(name)
            alloc[i] = alloc_index[name]
            alloc_limit[i] = limit
    return Static(
        unit_tpp=unit_tpp,
        cat=cat[kinv],
        fallback=fallback[kinv],
        policy=policy[kinv],
        alloc=alloc[kinv],
        alloc_limit=alloc_limit[kinv],
        lpp_limit=lpp_limit[kinv],
        tier=tier[kinv],
        alloc_names=alloc_names,
        h100_tpp=engine.h100_tpp,
        keys=k,
    )


def _decide_pair(
    engine: Engine, rep: Order, empty: MemoryQuota, used_up: MemoryQuota, day: dt.date
) -> tuple[int, int, int, int, int, int, bool]:
    """(cat, fallback, policy, lpp limit, tier, allocation limit, has allocation) of one case."""
    d0 = engine.decide(rep, empty)
    lpp_limit = 0
    if d0.authority == "LPP":
        lpp_limit = int(engine.rules.number("exceptions.lpp.annual_limit_tpp", day) * MILLI)
        d1 = engine.decide(rep, used_up)
        if d1.status == "license_required":
            pol = _policy(d1)
            return LPP, LIC, pol[0], lpp_limit, d0.destination_tier, pol[2], pol[1] is not None
        return LPP, FREE, APPROVE, lpp_limit, d0.destination_tier, 0, False
    if d0.status == "license_required":
        pol = _policy(d0)
        return LIC, LIC, pol[0], 0, d0.destination_tier, pol[2], pol[1] is not None
    return FREE, FREE, APPROVE, 0, d0.destination_tier, 0, False


def _status_sig(st: CountryStatus) -> tuple[Any, ...]:
    return (st.groups, st.tier1, st.supp5b, st.macau_or_d5, st.b_level_named)


def _law_signature(rules: RuleSet, day: dt.date) -> str:
    """The values in force on `day` of every parameter except the country lists (which enter
    through each country's status) and the VEU allocations."""
    parts = []
    for (
        name,
        param,
    ) in sorted(rules.parameters.items()):
        if name.startswith(("countries.", "allocation.nveu", "allocation.uveu")):
            continue
        try:
            parts.append(f"{name}={param.at(day)!r}")
        except ParameterNotFound:
            parts.append(f"{name}=-")
    return "|".join(parts)


def _policy(d: Determination) -> tuple[int, str | None, int]:
    if d.review_policy in ("presumption_of_denial", "policy_of_denial"):
        return DENY, None, 0
    if d.review_policy == "case_by_case":
        return CASE_BY_CASE, None, 0
    for q in d.quota:
        if q.account.startswith("allocation/") and q.limit_tpp is not None:
            return APPROVE_ALLOC, q.account.split("/", 1)[1], int(q.limit_tpp * MILLI)
    return APPROVE, None, 0


def _rep_order(
    sv: dict[str, Any],
    day: dt.date,
    dest: str,
    loc: str,
    hq: str,
    gov: bool,
    end_use: str,
    authorization: str | None,
) -> Order:
    chips = sv.get("chips_per_unit")
    return Order(
        order_id="SIM",
        order_date=day,
        exporter="SIM",
        quantity=1,
        destination=dest,
        consignee_name="SIM",
        consignee_id="SIM",
        item=sv.get("item"),
        item_kind=sv.get("item_kind"),
        chips_per_unit=None if chips is None else int(chips),
        tpp_per_unit=_num(sv.get("tpp_per_unit")),
        die_area_mm2=_num(sv.get("die_area_mm2")),
        datacenter=sv.get("datacenter"),
        memory_bandwidth_gbps=_num(sv.get("memory_bandwidth_gbps")),
        consignee_country=loc,
        consignee_hq_country=hq,
        consignee_government=gov,
        end_use=end_use,
        authorization=authorization,
    )
