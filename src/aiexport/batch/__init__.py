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
   that need it: AIA totals, LPP allowances and country allocations with cumulative sums per
   account up to the account's first refusal (`_vector`), everything else through a small
   sequential kernel that does the engine's `Decimal` arithmetic (`_plan`).
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

from ._amounts import Amounts, amounts, from_decimals
from ._convert import Orders, convert, first_error
from ._keys import (
    Signatures,
    coarse_keys,
    combine,
    group_rows,
    item_keys,
    special_end_uses,
)
from ._output import Decisions, build_obligation_ids, build_reason_ids
from ._plan import (
    END_TOKEN,
    ERROR,
    PURE,
    STATIC,
    TOKEN,
    ItemInfo,
    Program,
    Template,
    full_order,
    item_info,
    order_at,
    placeholder_at,
    plan_key,
    recording_engine,
    run_quota_pass,
)
from ._read import read_raw
from ._stages import STAGES, stage
from ._vector import VecOutcomes

__all__ = ["STAGES", "Decisions", "decide_file", "screen_file", "summarise"]

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
    STAGES.clear()
    with stage("read"):
        raw = read_raw(p)
    with stage("validate"):
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
    amounts = from_decimals([d.tpp_total for d in dets], engine.h100_tpp)
    return _assemble(orders, engine, templates, tid, amounts, quota, {}, None, [])


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
    rules = engine.rules
    n = orders.n
    special = special_end_uses(rules)
    with stage("keys and engine templates"):
        planned = plan_keys(orders, engine, special)
    if planned is None:
        return _per_order(orders, engine, base, progress)
    ikey, infos, key, programs = planned
    templates: list[Template] = []
    tid_of_key = np.full(len(programs), -1, dtype=np.int64)
    for k, prog in enumerate(programs):
        if prog.kind == PURE and prog.template is not None:
            tid_of_key[k] = len(templates)
            templates.append(prog.template)
    tid = tid_of_key[key]
    quota_rows = np.flatnonzero(tid < 0)
    with stage("quota pass (kernel, engine per new outcome)"):
        qp = run_quota_pass(
            engine,
            orders,
            key,
            programs,
            quota_rows,
            base,
            templates,
            orders.file,
            ikey,
            infos,
            special,
        )
    quota: dict[int, tuple[QuotaUse, ...]] = {}
    numbers: dict[int, dict[str, object]] = {}
    engine_tpp: dict[int, Decimal] = {}
    for r, (t, nums, uses, det) in qp.outcomes.items():
        if det is not None:
            tid[r] = len(templates)
            templates.append(template_of(det))
            engine_tpp[r] = det.tpp_total
        else:
            tid[r] = t
            if nums is not None:
                numbers[r] = nums
        if uses:
            quota[r] = uses
    if qp.vec is not None:
        tid[qp.vec.rows] = qp.vec.tid
    if progress is not None:
        progress(n)
    with stage("amounts and reasons layout"):
        amts = amounts(orders, ikey, infos, engine_tpp, engine.h100_tpp)
        return _assemble(orders, engine, templates, tid, amts, quota, numbers, ikey, infos, qp.vec)


def plan_keys(
    orders: Orders, engine: Engine, special: frozenset[str]
) -> tuple[np.ndarray, list[ItemInfo], np.ndarray, list[Program]] | None:
    """Item keys and their classification, and decision keys with their programs (None when
    some order fails in a way only the per-order path reports: the first error is raised)."""
    rules = engine.rules
    n = orders.n
    ikey, ireps = item_keys(rules, orders)
    infos = [item_info(engine, order_at(orders, int(r))) for r in ireps.tolist()]
    classes: dict[object, int] = {}
    klass = np.array(
        [
            classes.setdefault(("error", k) if f.error else f.klass, len(classes))
            for k, f in enumerate(infos)
        ],
        dtype=np.int64,
    )
    coarse, _ = coarse_keys(rules, orders, klass[ikey])
    dates = orders.cols["order_date"]
    sigs = Signatures(rules, dates)
    recording = recording_engine(engine)
    key = np.full(n, -1, dtype=np.int64)
    programs: list[Program] = []
    suspects: list[np.ndarray] = []
    for rows in group_rows(coarse):
        remaining = rows
        while remaining.size:
            rep = int(remaining[0])
            info = infos[int(ikey[rep])]
            if info.error:
                suspects.append(remaining)
                break
            prog = plan_key(placeholder_at(orders, rep, special), info, recording)
            if prog.kind == ERROR:
                suspects.append(remaining)
                break
            same = sigs.same(
                prog.names, prog.year, _country_codes(engine, orders, rep), int(dates.codes[rep])
            )
            match = same[dates.codes[remaining]]
            key[remaining[match]] = len(programs)
            programs.append(prog)
            remaining = remaining[~match]
    if suspects:
        _raise_first_error(orders, engine, np.concatenate(suspects))
        return None
    return ikey, infos, key, programs


def _country_codes(engine: Engine, orders: Orders, i: int) -> tuple[str, ...]:
    """The countries whose group memberships an order's decision reads (and their aliases)."""
    c = orders.cols
    dest = c["destination"].at(i) or ""
    loc = c["consignee_country"].at(i) or dest
    hq = c["consignee_hq_country"].at(i) or loc
    codes = [dest, loc, hq]
    for day in {c["order_date"].at(i)}:
        try:
            aliases = engine.rules.value("countries.aliases", day)
        except Exception:
            aliases = {}
        if isinstance(aliases, dict):
            codes += [str(aliases.get(x, x)) for x in (dest, loc, hq)]
    return tuple(codes)


def _raise_first_error(orders: Orders, engine: Engine, rows: np.ndarray) -> None:
    """Decide suspect rows in processing order with the engine; the first failure is raised."""
    for r in rows[np.lexsort((rows, orders.day_ordinal[rows]))].tolist():
        decide_all([full_order(orders, r)], engine, MemoryQuota(), file=orders.file)


def _subs(orders: Orders) -> tuple[np.ndarray, list[dict[str, str]]]:
    """The values of the template tokens (authorization reference, end use): a code per row
    and the values per code."""
    auth, end_use = orders.cols["authorization"], orders.cols["end_use"]
    if not orders.n:
        return np.zeros(0, dtype=np.int64), []
    code, firsts = combine([auth.codes, end_use.codes])
    values: list[dict[str, str]] = []
    for i in firsts.tolist():
        a = auth.at(i)
        out = {END_TOKEN: str(end_use.at(i))}
        if isinstance(a, str) and ":" in a:
            out[TOKEN] = a.split(":", 1)[1]
        values.append(out)
    return code, values


def _assemble(
    orders: Orders,
    engine: Engine,
    templates: list[Template],
    tid: np.ndarray,
    amts: Amounts,
    quota: dict[int, tuple[QuotaUse, ...]],
    numbers: dict[int, dict[str, object]],
    ikey: np.ndarray | None,
    infos: list[ItemInfo],
    vec: VecOutcomes | None = None,
) -> Decisions:
    dates = orders.cols["order_date"]
    date_str = [str(d) for d in dates.values]
    r_off, r_ids, reasons = build_reason_ids(
        templates,
        tid,
        dates.codes,
        date_str,
        _subs(orders),
        numbers,
        ikey,
        [f.cls_reasons for f in infos],
        vec,
    )
    o_off, o_ids, obligations = build_obligation_ids(templates, tid)
    return Decisions(
        n=orders.n,
        order_id=orders.order_id,
        rule_set=engine.rules.name,
        templates=templates,
        tid=tid,
        amounts=amts,
        reason_offsets=r_off,
        reason_ids=r_ids,
        reasons=reasons,
        obligation_offsets=o_off,
        obligation_ids=o_ids,
        obligations=obligations,
        quota=quota,
        vec=vec,
    )


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
        s.tpp_by_tier[tier] = d.amounts.total_where(tiers == tier)
    return s


def as_table(d: Decisions) -> pa.Table:
    return d.table()
