"""The batch path of `aiexport screen`: the per-order engine's decisions, vectorised.

    decisions = decide_file("orders.parquet", Engine(load_rule_set()))
    decisions.write(Path("decisions.parquet"))

1. Read the file into columns (Arrow; the reference reader for anything it would read
   differently), convert and validate each column once per distinct value with the reference
   parser's own methods; the first bad row in file order is reported exactly as `io.orders` does.
2. Group orders by *decision key* (everything the engine reads except quota state, the date
   within its epoch, the quantity and the authorization's reference) and run the real
   `Engine.decide` once per key.
3. Re-run the quota-dependent part exactly, in (order_date, input position) order, for the keys
   that need it (`_plan`).
4. Build the output columns from the templates and write them in `io.decisions`' formats.

The per-order path (`aiexport.screen.decide_all`) stays the reference; `tests/batch` proves the
two agree, record for record.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa

from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination, QuotaUse
from aiexport.rules.orders import consignee_key
from aiexport.rules.quota import MemoryQuota, QuotaView
from aiexport.screen import Summary, decide_all

from ._convert import Orders, convert, first_error
from ._keys import decision_keys
from ._output import Decisions, build_obligation_ids, build_reason_ids
from ._plan import (
    ERROR,
    PURE,
    STATIC,
    Program,
    Template,
    full_order,
    order_at,
    plan_key,
    run_quota_pass,
    tokenised,
)
from ._read import read_raw

__all__ = ["Decisions", "decide_file", "screen_file"]

Progress = Callable[[int], None]


def screen_file(
    path: str | Path,
    out: str | Path,
    engine: Engine,
    quota: QuotaView | None = None,
    progress: Progress | None = None,
) -> tuple[Decisions, Summary]:
    """Decide every order of `path` and write the decisions to `out`; returns them and a summary."""
    decisions = decide_file(path, engine, quota, progress=progress)
    decisions.write(Path(out))
    return decisions, summarise(decisions)


def decide_file(
    path: str | Path,
    engine: Engine,
    quota: QuotaView | None = None,
    *,
    progress: Progress | None = None,
) -> Decisions:
    """Every order's decision, exactly as `decide_all` would give it, in input order."""
    p = Path(path)
    raw = read_raw(p)
    orders, bad = convert(raw)
    first_error(orders, bad)
    if raw.trailing_error is not None:
        raise raw.trailing_error
    base: QuotaView = quota if quota is not None else MemoryQuota()
    if engine.party_screen is not None or _registered(orders, base):
        return _per_order(orders, engine, base, progress)
    return _batch(orders, engine, base, progress)


def _registered(orders: Orders, base: QuotaView) -> bool:
    """Whether any order names or may use a registered license or VEU (then: per-order path)."""
    auth = orders.cols["authorization"]
    for a in auth.values:
        if isinstance(a, str) and ":" in a:
            kind, ref = a.split(":", 1)
            found = base.license(ref) if kind == "LICENSE" else base.veu(ref)
            if found is not None:
                return True
    if isinstance(base, MemoryQuota):
        return bool(base.veus)
    cols = orders.cols
    combos = np.unique(
        np.stack(
            [
                cols[c].codes
                for c in ("consignee_id", "consignee_name", "consignee_country", "destination")
            ],
            axis=1,
        ),
        axis=0,
    )
    for cid, name, country, dest in combos.tolist():
        loc = cols["consignee_country"].values[country] or cols["destination"].values[dest]
        key = consignee_key(
            cols["consignee_id"].values[cid], cols["consignee_name"].values[name] or "", loc
        )
        if base.veus_for(key):
            return True
    return False


def _per_order(
    orders: Orders, engine: Engine, base: QuotaView, progress: Progress | None
) -> Decisions:
    parsed = [full_order(orders, i) for i in range(orders.n)]
    state = base if hasattr(base, "apply") else MemoryQuota()
    dets = decide_all(parsed, engine, state, file=orders.file, progress=progress)  # type: ignore[arg-type]
    templates = [template_of(d) for d in dets]
    tid = np.arange(orders.n, dtype=np.int64)
    quota = {i: d.quota for i, d in enumerate(dets) if d.quota}
    tpps = [d.tpp_total for d in dets]
    return _assemble(orders, engine, templates, tid, tpps, quota, {}, {})


def template_of(d: Determination) -> Template:
    """A template that is exactly one decision (for orders the engine decided itself)."""
    return Template(
        eccn=d.eccn,
        tier=d.destination_tier,
        status=d.status,
        authority=d.authority,
        policy=d.review_policy,
        obligations=d.obligations,
        warnings=len(d.warnings),
        items=[(STATIC, r) for r in d.reasons],
    )


def _batch(orders: Orders, engine: Engine, base: QuotaView, progress: Progress | None) -> Decisions:
    n = orders.n
    key, reps = decision_keys(engine.rules, orders)
    auth = orders.cols["authorization"]
    programs: list[Program] = [
        plan_key(engine, order_at(orders, int(r), tokenised(auth.at(int(r)))))
        for r in reps.tolist()
    ]
    kinds = np.array([p.kind for p in programs], dtype=object)
    is_error = np.fromiter((k == ERROR for k in kinds), dtype=bool, count=len(kinds))
    if is_error.any():
        _raise_first_error(orders, engine, np.flatnonzero(is_error[key]))
    templates: list[Template] = []
    tid_of_key = np.full(len(programs), -1, dtype=np.int64)
    for k, prog in enumerate(programs):
        if prog.kind == PURE and prog.template is not None:
            tid_of_key[k] = len(templates)
            templates.append(prog.template)
    tid = tid_of_key[key]
    quota_rows = np.flatnonzero(tid < 0)
    qp = run_quota_pass(engine, orders, key, programs, quota_rows, base, templates, orders.file)
    quota: dict[int, tuple[QuotaUse, ...]] = {}
    numbers: dict[int, dict[str, object]] = {}
    engine_tpp: dict[int, Decimal] = {}
    for r, oc in qp.outcomes.items():
        if oc.det is not None:
            tid[r] = len(templates)
            templates.append(template_of(oc.det))
            engine_tpp[r] = oc.det.tpp_total
        else:
            tid[r] = oc.template
            if oc.numbers is not None:
                numbers[r] = oc.numbers
        if oc.quota:
            quota[r] = oc.quota
    if progress is not None:
        progress(n)
    tpps = _tpp_exact(orders, key, programs, engine_tpp)
    refs = _refs(orders)
    return _assemble(orders, engine, templates, tid, tpps, quota, numbers, refs)


def _raise_first_error(orders: Orders, engine: Engine, rows: np.ndarray) -> None:
    first = rows[np.lexsort((rows, orders.day_ordinal[rows]))][0]
    order = full_order(orders, int(first))
    decide_all([order], engine, MemoryQuota(), file=orders.file)
    raise AssertionError("the engine decided an order whose key failed")  # pragma: no cover


def _tpp_exact(
    orders: Orders, key: np.ndarray, programs: list[Program], engine_tpp: dict[int, Decimal]
) -> list[Decimal]:
    qty = orders.cols["quantity"]
    out: list[Decimal] = []
    zero = Decimal(0)
    for i, k in enumerate(key.tolist()):
        prog = programs[k]
        if i in engine_tpp:
            out.append(engine_tpp[i])
        elif prog.weights:
            out.append(zero)
        else:
            out.append(Decimal(qty.at(i)) * prog.chips * prog.tpp_per_ic)
    return out


def _refs(orders: Orders) -> dict[int, str]:
    auth = orders.cols["authorization"]
    has_ref = np.array([isinstance(a, str) and ":" in a for a in auth.values], dtype=bool)
    rows = np.flatnonzero(has_ref[auth.codes])
    return {int(i): str(auth.at(int(i))).split(":", 1)[1] for i in rows}


def _assemble(
    orders: Orders,
    engine: Engine,
    templates: list[Template],
    tid: np.ndarray,
    tpps: list[Decimal],
    quota: dict[int, tuple[QuotaUse, ...]],
    numbers: dict[int, dict[str, object]],
    refs: dict[int, str],
) -> Decisions:
    dates = orders.cols["order_date"]
    date_str = [str(d) for d in dates.values]
    r_off, r_ids, reasons = build_reason_ids(templates, tid, dates.codes, date_str, refs, numbers)  # type: ignore[arg-type]
    o_off, o_ids, obligations = build_obligation_ids(templates, tid)
    h100 = engine.h100_tpp
    h_cache: dict[Decimal, float] = {}
    tpp_float = np.empty(orders.n)
    h = np.empty(orders.n)
    for i, t in enumerate(tpps):
        tpp_float[i] = float(_num_value(t))
        v = h_cache.get(t)
        if v is None:
            v = h_cache[t] = float(round(t / h100, 4))
        h[i] = v
    return Decisions(
        n=orders.n,
        order_id=orders.order_id,
        rule_set=engine.rules.name,
        templates=templates,
        tid=tid,
        tpp=list(tpps),
        tpp_float=tpp_float,
        h100=h,
        reason_offsets=r_off,
        reason_ids=r_ids,
        reasons=reasons,
        obligation_offsets=o_off,
        obligation_ids=o_ids,
        obligations=obligations,
        quota=quota,
        tpp_exact=lambda i: tpps[i],
    )


def _num_value(v: Decimal) -> float:
    if v == v.to_integral_value():
        return float(int(v))
    return float(v)


def summarise(d: Decisions) -> Summary:
    """The summary `aiexport screen` prints, from the columns."""
    s = Summary(rule_set=d.rule_set)
    s.orders = d.n
    counts = np.bincount(d.tid, minlength=len(d.templates)) if d.n else np.zeros(0, dtype=np.int64)
    by_status: Counter[str] = Counter()
    by_authority: Counter[str] = Counter()
    by_tier: Counter[int] = Counter()
    for t, c in zip(d.templates, counts.tolist(), strict=True):
        if not c:
            continue
        by_status[t.status] += c
        by_authority[t.authority] += c
        by_tier[t.tier] += c
        s.warnings += t.warnings * c
    s.by_status, s.by_authority, s.by_tier = by_status, by_authority, by_tier
    tiers = np.array([t.tier for t in d.templates], dtype=np.int64)[d.tid] if d.n else np.zeros(0)
    for tier in sorted(by_tier):
        total = Decimal(0)
        for i in np.flatnonzero(tiers == tier).tolist():
            total += d.tpp[i]
        s.tpp_by_tier[tier] = total
    return s


def as_table(d: Decisions) -> pa.Table:
    return d.table()
