"""Decision templates from the real engine, and the exact quota pass.

For every decision key the real `Engine.decide` runs once on a representative order against a
*probe* quota view that records which accounts the engine reads. A key whose decision reads no
quota (or reads quota that cannot change its output) is *pure*: its template is the decision.
Otherwise the key gets a *program* naming the quota-dependent step the engine takes — AIA's
running total, LPP's allowance (and what follows when it is refused), the country allocation read
by a license's review policy or drawn by a cited license — and the orders of such keys are run,
in (order_date, input position) order, through a small kernel that does that step's exact
`Decimal` arithmetic. The first order of every (key, outcome) is decided by the real engine
against the same state; its decision becomes the outcome's template, and is checked: the kernel's
draws and quota lines must equal the engine's, and the reasons that carry numbers must be
reproduced by the kernel's texts. Anything unexpected sends the key to the real engine, order by
order, which is always exact.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from aiexport.errors import AiexportError, ParameterNotFound
from aiexport.io.orders import RowParser
from aiexport.rules.countries import Countries, CountryStatus
from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination, QuotaUse, Reason
from aiexport.rules.orders import Order, consignee_key
from aiexport.rules.quota import LicenseInfo, QuotaView, VeuInfo
from aiexport.rules.ruleset import RuleSet

from ._convert import Orders

if TYPE_CHECKING:
    from ._vector import VecOutcomes

ZERO = Decimal(0)
HUGE = Decimal(10) ** 40
# Stand for the reference of `LICENSE:<id>`, `UVEU:<id>`, `NVEU:<id>`, and for an end use the
# engine only writes (never tests), in templates.
TOKEN = "\u27e6ref\u27e7"
END_TOKEN = "\u27e6end-use\u27e7"


class _Probe:
    """A quota view with fixed balances per account family that records what is read."""

    def __init__(self, values: dict[str, Decimal] | None = None) -> None:
        self.values = values or {}
        self.reads: list[str] = []

    def used(self, account: str) -> Decimal:
        self.reads.append(account)
        v = self.values.get(account)
        if v is not None:
            return v
        return self.values.get(account.split("/", 1)[0], ZERO)

    def license(self, license_id: str) -> LicenseInfo | None:
        return None

    def veu(self, veu_id: str) -> VeuInfo | None:
        return None

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return []

    def families(self) -> set[str]:
        return {a.split("/", 1)[0] for a in self.reads}


class StateView:
    """The kernel's balances over the caller's quota view (registries come from the caller)."""

    def __init__(self, state: dict[str, Decimal], base: QuotaView) -> None:
        self.state = state
        self.base = base

    def used(self, account: str) -> Decimal:
        v = self.state.get(account)
        if v is None:
            v = self.state[account] = self.base.used(account)
        return v

    def license(self, license_id: str) -> LicenseInfo | None:
        return self.base.license(license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return self.base.veu(veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return self.base.veus_for(consignee)


class _PassView(StateView):
    """The kernel's view at one position of the pass: allocation accounts drawn in bulk are read
    as they stand at that position (`_vector.Reader`)."""

    def __init__(self, state: dict[str, Decimal], base: QuotaView) -> None:
        super().__init__(state, base)
        self.readers: dict[str, Any] = {}
        self.position = 0

    def early(self, account: str) -> Any:
        """The reader of `account` if the bulk pass holds it at this position, else None."""
        r = self.readers.get(account)
        return r if r is not None and self.position < r.until else None

    def used(self, account: str) -> Decimal:
        r = self.early(account)
        if r is not None:
            v: Decimal = r.at(self.position)
            return v
        return super().used(account)


class _Renamed:
    """A quota view that reads `token` in account names as the order's reference."""

    def __init__(self, view: QuotaView, token: str, ref: str) -> None:
        self.view, self.token, self.ref = view, token, ref

    def used(self, account: str) -> Decimal:
        return self.view.used(account.replace(self.token, self.ref))

    def license(self, license_id: str) -> LicenseInfo | None:
        return self.view.license(license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return self.view.veu(veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return self.view.veus_for(consignee)


# --- templates --------------------------------------------------------------------------------

STATIC, REGIME, REF, SLOT, CLS = 0, 1, 2, 3, 4


@dataclass
class Template:
    """A decision with holes: the order's date, its authorization reference, its numbers."""

    eccn: str
    tier: int
    status: str
    authority: str
    policy: str | None
    obligations: tuple[str, ...]
    warnings: int
    # (STATIC, Reason) | (REGIME, Reason of the representative) | (REF, Reason with tokens)
    # | (SLOT, (rule, citation, formatter)) | (CLS, None): the item's classification reasons
    items: list[tuple[int, Any]]
    day: str = ""


Formatter = Callable[[dict[str, Any]], str]


def _fmt_lpp_fit(n: dict[str, Any]) -> str:
    return f"LPP applies: the consignee's {n['year']} LPP total becomes {n['lpp_after']:,} of {n['lpp_limit']:,} TPP (all exporters)."


def _fmt_lpp_over(n: dict[str, Any]) -> str:
    return f"LPP not available: the consignee has received {n['lpp_used']:,} TPP under LPP in {n['year']}; this order's {n['tpp']:,} would bring it to {n['lpp_after']:,}, over the {n['lpp_limit']:,} allowance. The order draws nothing."


def _fmt_req_lpp_over(n: dict[str, Any]) -> str:
    return "The order names LPP, which is not available: " + _fmt_lpp_over(n)


def _fmt_notice(n: dict[str, Any]) -> str:
    return f"The shipment's aggregate TPP {n['tpp']:,} is {n['notice']:,} or more: notify BIS ('LPP Shipment') before export."


def _fmt_aia(n: dict[str, Any]) -> str:
    return f"The consignee's cumulative AIA receipts reach {n['aia_after']:,} TPP (>= {n['aia_thr']:,}): submit its certification to BIS (subject 'AIA Certification') before the first export."


def _alloc_ok(raised: str) -> Formatter:
    return lambda n: (
        f"{n['country']}'s country allocation: {n['al_used']:,} TPP licensed so far; with this order {n['al_after']:,} of {n['al_limit']:,}{raised}: presumption of approval."
    )


def _alloc_met(raised: str) -> Formatter:
    return lambda n: (
        f"{n['country']}'s country allocation: {n['al_used']:,} TPP licensed so far; this order would bring it to {n['al_after']:,}, over {n['al_limit']:,}{raised}: policy of denial."
    )


def _fmt_cited_met(n: dict[str, Any]) -> str:
    return f"The country allocation is met ({n['al_used']:,} of {n['al_limit']:,}); the cited license cannot be counted against it. Verify the license with BIS."


def _fmt_counted(n: dict[str, Any]) -> str:
    return f"Licensed TPP counts against {n['al_acc']}: {n['al_after']:,} of {n['al_limit']:,}."


def _fmt_uveu(n: dict[str, Any]) -> str:
    return f"UVEU {n['ref']}: geographic allocations hold after this shipment (holder total {n['uveu_total']:,} TPP)."


def _fmt_uveu_fail(n: dict[str, Any]) -> str:
    return f"UVEU not available: uveu/{n['ref']}/{n['fail_suffix']} would hold {n['fail_after']:,} TPP, over {n['fail_share']:.0%} of the holder's {n['uveu_total']:,} TPP total."


def _fmt_req_uveu_fail(n: dict[str, Any]) -> str:
    return f"The order names UVEU:{n['ref']}, which is not available: " + _fmt_uveu_fail(n)


def _formatters(rule: str, raised: Sequence[str]) -> list[Formatter]:
    table: dict[str, list[Formatter]] = {
        "veu.uveu_geo": [_fmt_uveu, _fmt_uveu_fail],
        "lpp.limit": [_fmt_lpp_fit, _fmt_lpp_over],
        "lpp.notice": [_fmt_notice],
        "auth.requested_ineligible": [_fmt_req_lpp_over, _fmt_req_uveu_fail],
        "aia.report": [_fmt_aia],
        "lic.alloc_ok": [_alloc_ok(r) for r in raised],
        "lic.alloc_met": [_alloc_met(r) for r in raised] + [_fmt_cited_met],
        "lic.counted": [_fmt_counted],
    }
    return table.get(rule, [])


NUMERIC_RULES = frozenset(
    (
        "lpp.limit",
        "lpp.notice",
        "aia.report",
        "lic.alloc_ok",
        "lic.alloc_met",
        "lic.counted",
        "veu.uveu_geo",
    )
)


def make_template(
    d: Determination,
    day: str,
    cls_reasons: Sequence[Reason],
    numbers: dict[str, Any] | None,
    raised: Sequence[str],
) -> Template | None:
    """Turn a decision into a template; None when some text cannot be accounted for."""
    items: list[tuple[int, Any]] = []
    reasons = d.reasons
    k = len(cls_reasons)
    if not reasons or not reasons[0].rule.startswith("regime.") or day not in reasons[0].text:
        return None
    if tuple(reasons[1 : 1 + k]) != tuple(cls_reasons):
        return None
    items.append((REGIME, reasons[0]))
    items.append((CLS, None))
    # A fixed text must not carry this order's running totals (a formatter would be missing).
    figures = [
        f"{v:,}" for v in (numbers or {}).values() if isinstance(v, Decimal) and abs(v) >= 1000
    ]
    for r in reasons[1 + k :]:
        if day in r.text:
            return None
        slot = None
        if numbers is not None:
            for f in _formatters(r.rule, raised):
                try:
                    text = f(numbers)
                except (KeyError, TypeError, ValueError):
                    continue
                if text == r.text:
                    slot = f
                    break
        if slot is not None:
            items.append((SLOT, (r.rule, r.citation, slot)))
        elif r.rule in NUMERIC_RULES or any(f in r.text for f in figures):
            return None
        elif TOKEN in r.text or END_TOKEN in r.text:
            items.append((REF, r))
        else:
            items.append((STATIC, r))
    if any(TOKEN in w or END_TOKEN in w for w in d.warnings):
        pass  # warnings are only counted
    return Template(
        eccn=d.eccn,
        tier=d.destination_tier,
        status=d.status,
        authority=d.authority,
        policy=d.review_policy,
        obligations=d.obligations,
        warnings=len(d.warnings),
        items=items,
        day=day,
    )


# --- programs ---------------------------------------------------------------------------------

PURE, AIA, LPP, ALLOC, LIC, UVEU, ENGINE, ERROR = (
    "pure", "aia", "lpp", "alloc", "lic", "uveu", "engine", "error",
)  # fmt: skip


@dataclass
class Program:
    kind: str
    template: Template | None = None
    over: str | None = None  # for LPP: what the order gets when the allowance is exceeded
    params: dict[str, Any] = field(default_factory=dict)
    error: BaseException | None = None
    # The law parameters the engine read for this key (its relevant epoch), and whether the
    # calendar year matters (LPP allowances are per year).
    names: tuple[str, ...] = ()
    year: bool = False


@dataclass
class ItemInfo:
    """An item key's classification, computed once with the engine's own functions."""

    chips: int = 1
    tpp_per_ic: Decimal = ZERO
    weights: bool = False
    cls_reasons: tuple[Reason, ...] = ()
    klass: tuple[Any, ...] = ()
    error: bool = False


def item_info(engine: Engine, order: Order) -> ItemInfo:
    from aiexport.rules.items import classify

    try:
        day = order.order_date
        regime = str(engine.rules.value("controls.regime", day))
        spec = engine.item_spec(order)
        cls = classify(spec, engine.rules, day, regime)
    except Exception:
        return ItemInfo(error=True)
    weights = spec.kind == "model_weights"
    klass = (cls.eccn, cls.level, spec.datacenter, weights, cls.subject_to_ear)
    return ItemInfo(spec.chips_per_unit, cls.tpp_per_ic, weights, cls.reasons, klass)


_ORDER_FIELDS = (
    "item",
    "item_kind",
    "chips_per_unit",
    "tpp_per_unit",
    "die_area_mm2",
    "datacenter",
    "memory_bandwidth_gbps",
    "training_ops",
    "consignee_id",
    "consignee_country",
    "consignee_hq_country",
    "intermediate_country",
    "payer_country",
    "additional_training_ops",
)
_ORDER_FLAGS = (
    "open_weights",
    "consignee_government",
    "derived_from_published",
    "less_capable_than_open",
    "secure_storage",
)


def order_at(
    orders: Orders, i: int, authorization: str | None = None, end_use: str | None = None
) -> Order:
    """The `Order` of row i, built from converted columns (fields the engine reads);
    `authorization` and `end_use`, when given, replace the row's."""
    c = orders.cols
    kw: dict[str, Any] = {}
    for name in _ORDER_FIELDS:
        col = c[name]
        kw[name] = col.values[col.codes[i]]
    for name in _ORDER_FLAGS:
        col = c[name]
        kw[name] = bool(col.values[col.codes[i]])
    if authorization is None:
        col = c["authorization"]
        authorization = col.values[col.codes[i]]
    if end_use is None:
        col = c["end_use"]
        end_use = col.values[col.codes[i]]
    dest, name_ = c["destination"], c["consignee_name"]
    day, qty = c["order_date"], c["quantity"]
    return Order(
        order_id=str(orders.order_id[i].as_py()),
        order_date=day.values[day.codes[i]],
        exporter="",
        quantity=qty.values[qty.codes[i]],
        destination=dest.values[dest.codes[i]] or "",
        consignee_name=name_.values[name_.codes[i]] or "",
        end_use=end_use,  # type: ignore[arg-type]
        authorization=authorization,
        position=i,
        line=int(orders.lines[i]),
        **kw,
    )


def full_order(orders: Orders, i: int) -> Order:
    """Row i parsed by the reference parser itself."""
    return RowParser(orders.file).parse(orders.raw.raw_row(i), int(orders.lines[i]), i)


def tokenised(auth: str | None) -> str | None:
    if auth and ":" in auth:
        return auth.split(":", 1)[0] + ":" + TOKEN
    return auth


def placeholder_at(orders: Orders, i: int, special_end_uses: frozenset[str]) -> Order:
    """Row i's `Order` as templates see it: its reference and an untested end use as tokens."""
    c = orders.cols
    use = c["end_use"].at(i)
    return order_at(
        orders,
        i,
        authorization=tokenised(c["authorization"].at(i)),
        end_use=use if use in special_end_uses else END_TOKEN,
    )


class _Recorder(dict[str, Any]):
    """A parameter table that records which parameters are looked up."""

    def __init__(self, base: dict[str, Any]) -> None:
        super().__init__(base)
        self.seen: set[str] = set()

    def __getitem__(self, name: str) -> Any:
        self.seen.add(name)
        return super().__getitem__(name)


class _RecordingCountries(Countries):
    """Country statuses shared by every key's recording: a status computed for one key is
    reused by the next, and its lookup records the parameters computing it read."""

    def __init__(self, rules: RuleSet, rec: _Recorder) -> None:
        super().__init__(rules)
        self.rec = rec
        self.known: dict[tuple[str, dt.date], tuple[CountryStatus, frozenset[str]]] = {}

    def status(self, code: str, day: dt.date) -> CountryStatus:
        hit = self.known.get((code, day))
        if hit is not None:
            self.rec.seen.update(hit[1])
            return hit[0]
        outer = self.rec.seen
        self.rec.seen = set()
        try:
            st = super().status(code, day)
            self.known[(code, day)] = (st, frozenset(self.rec.seen))
            return st
        finally:
            outer.update(self.rec.seen)
            self.rec.seen = outer


_MISSING = object()


@dataclass(frozen=True)
class _RecordingRules(RuleSet):
    """The rule set over a `_Recorder`, with dated values and citations memoised per day (a
    memoised lookup is recorded as the lookup would be)."""

    memo: dict[tuple[str, str, dt.date], Any] = field(
        default_factory=dict, compare=False, repr=False
    )

    def _seen(self, name: str) -> None:
        rec = self.parameters
        if isinstance(rec, _Recorder):
            rec.seen.add(name)

    def value(self, name: str, day: dt.date) -> Any:
        hit = self.memo.get(("v", name, day), _MISSING)
        if hit is _MISSING:
            hit = self.memo[("v", name, day)] = super().value(name, day)
        else:
            self._seen(name)
        return hit

    def cite(self, name: str, day: dt.date) -> str:
        hit = self.memo.get(("c", name, day))
        if hit is None:
            hit = self.memo[("c", name, day)] = super().cite(name, day)
        else:
            self._seen(name)
        return str(hit)


def recording_engine(engine: Engine) -> tuple[Engine, _Recorder]:
    """An engine over the same law whose parameter lookups are recorded in `rec.seen` (clear
    it before each key); one serves every key."""
    rec = _Recorder(engine.rules.parameters)
    r = engine.rules
    fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.init}
    rules = _RecordingRules(**{**fields, "parameters": rec, "memo": {}})
    eng = Engine(rules, engine.catalog, engine.party_screen)
    eng.countries = _RecordingCountries(rules, rec)
    rec.seen.clear()
    return eng, rec


def _rules(d: Determination) -> set[str]:
    return {r.rule for r in d.reasons}


def _raised(engine: Engine, order: Order) -> list[str]:
    try:
        inc = engine.rules.number("allocation.country.supp5b_increase", order.order_date)
    except (ParameterNotFound, AiexportError):
        return [""]
    return ["", f" raised by {inc:.0%} for a Supp. No. 5 para (b) destination"]


def plan_key(rep: Order, info: ItemInfo, recording: tuple[Engine, _Recorder]) -> Program:
    """Run the engine on a key's representative and decide how the key's orders are decided.

    `recording` (from `recording_engine(engine)`) is shared by every key of a run."""
    eng, rec = recording
    rec.seen.clear()
    prog = _plan(eng, rep, info)
    prog.names = tuple(sorted(n for n in rec.seen if not n.startswith("items.")))
    return prog


def _plan(
    engine: Engine, rep: Order, info: ItemInfo, base: dict[str, Decimal] | None = None
) -> Program:
    """Classify a key by probing the engine; `base` fixes balances for every probe (used to
    plan what follows a UVEU whose geographic share breaks)."""
    kind = rep.authorization_kind
    forced = base or {}

    def Probe(values: dict[str, Decimal] | None = None) -> _Probe:
        return _Probe({**forced, **(values or {})})

    try:
        probe = Probe()
        d0 = engine.decide(rep, probe)
    except Exception as exc:
        return Program(ERROR, error=exc)
    expect = ZERO if info.weights else Decimal(rep.quantity) * info.chips * info.tpp_per_ic
    if d0.tpp_total != expect or str(d0.tpp_total) != str(expect):
        return Program(ENGINE)
    prog = Program(PURE)
    fam = probe.families()
    if base is None and kind == "UVEU" and fam & {"uveu"} and not fam & {"nveu", "license"}:
        return _plan_uveu(engine, rep, prog, info)
    if fam & {"nveu", "license"} or (base is None and "uveu" in fam):
        prog.kind = ENGINE
        return prog
    day = rep.order_date
    raised = _raised(engine, rep)
    prog.params["raised"] = raised
    if "lpp" in fam:
        over_probe = Probe({"lpp": HUGE})
        try:
            d_fit = (
                d0 if d0.authority == "LPP" else engine.decide(rep, Probe({"lpp": -d0.tpp_total}))
            )
            d_over = engine.decide(rep, over_probe)
        except Exception:
            prog.kind = ENGINE
            return prog
        if d_fit.authority == "LPP" or "lpp.limit" in _rules(d_over):
            if d_fit.authority != "LPP" or not d_fit.quota:
                prog.kind = ENGINE
                return prog
            prog.kind = LPP
            prog.year = True
            prog.params["lpp_limit"] = d_fit.quota[0].limit_tpp
            prog.params["notice"] = engine.rules.number(
                "exceptions.lpp.preshipment_notice_tpp", day
            )
            over_fam = over_probe.families()
            if d_over.authority == "AIA" and "aia" in over_fam:
                prog.over = AIA
                prog.params["aia_thr"] = engine.rules.number(
                    "exceptions.aia.report_threshold_tpp", day
                )
            elif _reads_allocation(d_over):
                prog.over = ALLOC
                if not _alloc_params(prog, d_over):
                    prog.kind = ENGINE
            elif not d_over.quota and not d_over.draws:
                prog.over = "none"
            else:
                prog.kind = ENGINE
            return prog
    rules0 = _rules(d0)
    if d0.authority == "AIA" and "aia" in fam:
        prog.kind = AIA
        prog.params["aia_thr"] = engine.rules.number("exceptions.aia.report_threshold_tpp", day)
    elif kind == "LICENSE" and "allocation" in fam:
        prog.kind = LIC
        if not _alloc_params(prog, d0):
            prog.kind = ENGINE
        else:
            # A license under (A)(2) (Tier 1 links) counts toward the allocation but is never
            # refused by it; a wrong guess shows as a draw mismatch and sends the key to the engine.
            prog.params["exempt"] = "lic.a_t1" in rules0
    elif "allocation" in fam and _reads_allocation(d0):
        prog.kind = ALLOC
        if not _alloc_params(prog, d0):
            prog.kind = ENGINE
    elif base is not None and not d0.quota and not d0.draws:
        pass  # after a broken UVEU share: nothing more draws; texts come from the kernel
    elif not d0.quota and not d0.draws and not (rules0 & NUMERIC_RULES):
        t = make_template(d0, str(day), info.cls_reasons, None, raised)
        if t is None:
            prog.kind = ENGINE
        else:
            prog.template = t
    else:
        prog.kind = ENGINE
    return prog


def _plan_uveu(engine: Engine, rep: Order, prog: Program, info: ItemInfo) -> Program:
    """A UVEU named on the order (unregistered): its total and geographic shares.

    The kernel handles the orders whose shares hold (the UVEU is then used); an order that would
    break a share is decided by the engine.
    """
    prefix = f"uveu/{TOKEN}/"
    try:
        d = engine.decide(rep, _Probe({prefix + "total": HUGE}))
    except Exception:
        prog.kind = ENGINE
        return prog
    ok = (
        d.authority == "UVEU"
        and d.quota
        and d.quota[0].account == prefix + "total"
        and len(d.draws) == len(d.quota)
        and all(x.account.startswith(prefix) for x in d.draws)
        and all(x.max_share is not None for x in d.draws[1:])
    )
    if not ok:
        prog.kind = ENGINE
        return prog
    prog.kind = UVEU
    checks = [(x.account[len(prefix) :], x.max_share) for x in d.draws[1:]]
    prog.params["checks"] = checks
    if checks:
        # What the order gets when a share breaks: the rest of the decision, planned with the
        # first check's account full.
        sub = _plan(engine, rep, info, {prefix + checks[0][0]: HUGE})
        prog.params["fail"] = sub if sub.kind not in (ENGINE, ERROR, UVEU) else None
    return prog


def _reads_allocation(d: Determination) -> bool:
    """A license decision that shows (but does not draw on) a country allocation."""
    return (
        d.authority == "LICENSE"
        and len(d.quota) == 1
        and d.quota[0].account.startswith("allocation/")
        and not d.quota[0].draws
        and not d.draws
    )


def _alloc_params(prog: Program, d: Determination) -> bool:
    uses = [q for q in d.quota if q.account.startswith("allocation/")]
    if not uses or uses[0].limit_tpp is None:
        return False
    prog.params["al_acc"] = uses[0].account
    prog.params["al_limit"] = uses[0].limit_tpp
    prog.params["country"] = uses[0].account.split("/", 1)[1]
    return True


# --- the quota pass ---------------------------------------------------------------------------


# A quota-dependent order's decision: (template id, numbers for its texts, quota lines,
# the engine's own decision when the engine decided it).
Outcome = tuple[int, dict[str, Any] | None, tuple[QuotaUse, ...], Determination | None]


@dataclass
class QuotaPass:
    templates: list[Template]
    outcomes: dict[int, Outcome]
    vec: VecOutcomes | None = None


class _Conflict(Exception):
    """The sequential kernel met an account the vectorised pass owns."""


def run_quota_pass(
    engine: Engine,
    orders: Orders,
    key: np.ndarray,
    programs: list[Program],
    rows: np.ndarray,
    base: QuotaView,
    templates: list[Template],
    file: str,
    item_key: np.ndarray,
    infos: list[ItemInfo],
    special: frozenset[str],
) -> QuotaPass:
    """Decide the quota-dependent rows in processing order, exactly.

    Orders whose outcome cumulative sums decide are decided in bulk first (`_vector`); the rest
    run through the kernel below, one by one. Should the kernel meet an account the bulk pass
    owns (it cannot, by construction; this is the check), the pass is redone one by one.
    """
    args = (engine, orders, key, programs, rows, base, templates, file, item_key, infos, special)
    try:
        return _quota_pass(*args, vectorise=True)
    except _Conflict:
        return _quota_pass(*args, vectorise=False)


def _quota_pass(
    engine: Engine,
    orders: Orders,
    key: np.ndarray,
    programs: list[Program],
    rows: np.ndarray,
    base: QuotaView,
    templates: list[Template],
    file: str,
    item_key: np.ndarray,
    infos: list[ItemInfo],
    special: frozenset[str],
    *,
    vectorise: bool,
) -> QuotaPass:
    from ._vector import Retry, VecResult, vector_pass

    state: dict[str, Decimal] = {}
    view = _PassView(state, base)
    outcomes: dict[int, Outcome] = {}
    slotted = [any(kind == SLOT for kind, _ in t.items) for t in templates]
    branch_tpl: dict[tuple[Any, ...], int] = {}
    cols = orders.cols
    qty = cols["quantity"]
    cid, cname = cols["consignee_id"], cols["consignee_name"]
    ccountry, dest = cols["consignee_country"], cols["destination"]
    dates = cols["order_date"]
    auth_col = cols["authorization"]
    order_rows = rows[np.lexsort((rows, orders.day_ordinal[rows]))]

    owned: frozenset[str] = frozenset()

    def used(acc: str) -> Decimal:
        """The balance at the current position (`_PassView`); an account the bulk pass owns
        and holds no reader for is never the kernel's to read."""
        if acc in owned and acc not in state and view.early(acc) is None:
            raise _Conflict(acc)
        return view.used(acc)

    def write(acc: str, value: Decimal) -> None:
        if view.early(acc) is not None:
            raise _Conflict(acc)  # drawn in bulk and here: excluded by construction
        state[acc] = value

    def by_engine(r: int) -> Determination:
        order = order_at(orders, r)
        try:
            d = engine.decide(order, view)
        except Exception as exc:
            from aiexport.errors import OrderError

            if isinstance(exc, OrderError):
                raise OrderError(
                    exc.detail, file=file, line=order.line, column=exc.column
                ) from None
            raise
        if owned:
            for dr in d.draws:
                if dr.account in owned or view.early(dr.account) is not None:
                    raise _Conflict(order.order_id)
            if any(q.account in owned and q.account not in view.readers for q in d.quota):
                raise _Conflict(order.order_id)
        for dr in d.draws:
            write(dr.account, used(dr.account) + dr.amount)
        return d

    # Per-row inputs of the loop, gathered column-wise once.
    from ._keys import combine

    group, firsts = combine(
        [
            cid.codes[order_rows],
            cname.codes[order_rows],
            ccountry.codes[order_rows],
            dest.codes[order_rows],
        ]
    )
    names = []
    for f in order_rows[firsts].tolist():
        loc = ccountry.at(f) or dest.at(f)
        names.append(consignee_key(cid.at(f), cname.at(f) or "", loc))
    key_p = key[order_rows]
    ik_p = item_key[order_rows]
    year_of = np.array(
        [d.year if hasattr(d, "year") else 0 for d in dates.values] or [0], dtype=np.int64
    )
    year_p = year_of[dates.codes[order_rows]] if order_rows.size else np.zeros(0, np.int64)
    qty_codes = qty.codes[order_rows]
    tpp_cache: dict[tuple[int, int], Decimal] = {}
    aia_names: dict[str, str] = {}

    vr: VecResult | None = None
    cons_ids: dict[str, int] = {}
    cons_of_group = np.array([cons_ids.setdefault(x, len(cons_ids)) for x in names] or [0])
    quantities = [qty.values[c] for c in qty_codes.tolist()] if vectorise else []
    for _attempt in range(8 if vectorise else 0):
        try:
            vr = vector_pass(
                engine,
                orders,
                order_rows,
                key_p,
                cons_of_group[group] if group.size else group,
                list(cons_ids),
                year_p,
                quantities,
                ik_p,
                programs,
                infos,
                base,
                branch_tpl,
                templates,
                special,
            )
            break
        except Retry:
            continue
    # The kernel's inputs, for the orders it decides.
    rest = np.arange(len(order_rows)) if vr is None else np.flatnonzero(~vr.handled)
    if vr is not None:
        state.update(vr.state)
        owned = vr.owned
        view.readers = vr.readers
    rest_l = rest.tolist()
    slotted.extend(any(kind == SLOT for kind, _ in x.items) for x in templates[len(slotted) :])
    rows_l = order_rows[rest].tolist()
    cons_l = [names[g] for g in group[rest].tolist()]
    key_l = key_p[rest].tolist()
    ik_l = ik_p[rest].tolist()
    qty_l = [qty.values[c] for c in qty_codes[rest].tolist()]
    year_l = year_p[rest].tolist()

    for pos, r in enumerate(rows_l):
        view.position = rest_l[pos]
        k = key_l[pos]
        prog = programs[k]
        if prog.kind == ENGINE:
            d = by_engine(r)
            outcomes[r] = (-1, None, d.quota, d)
            continue
        cons = cons_l[pos]
        ik = ik_l[pos]
        info = infos[ik]
        tk = (ik, qty_l[pos])
        tpp_c = tpp_cache.get(tk)
        if tpp_c is None:
            tpp_c = tpp_cache[tk] = (
                ZERO if info.weights else Decimal(qty_l[pos]) * info.chips * info.tpp_per_ic
            )
        tpp = tpp_c
        p = prog.params
        # Fast paths for the commonest outcomes once their template exists (same arithmetic).
        if prog.kind == AIA:
            acc = aia_names.get(cons)
            if acc is None:
                acc = aia_names[cons] = f"aia/{cons}"
            after = used(acc) + tpp
            thr = p["aia_thr"]
            t = branch_tpl.get((k, "aia", after >= thr))
            if t is not None:
                write(acc, after)
                outcomes[r] = (
                    t,
                    {"tpp": tpp, "aia_after": after, "aia_thr": thr} if slotted[t] else None,
                    (QuotaUse(acc, after, None, True),),
                    None,
                )
                continue
        elif prog.kind == LPP:
            year = year_l[pos]
            acc = f"lpp/{cons}/{year}"
            u = used(acc)
            after = u + tpp
            limit = p["lpp_limit"]
            if after <= limit:
                notice = p["notice"]
                t = branch_tpl.get((k, "fit", tpp >= notice, after == limit))
                if t is not None:
                    write(acc, after)
                    outcomes[r] = (
                        t,
                        {
                            "tpp": tpp,
                            "year": year,
                            "lpp_used": u,
                            "lpp_after": after,
                            "lpp_limit": limit,
                            "notice": notice,
                        },
                        (QuotaUse(acc, after, limit, True),),
                        None,
                    )
                    continue
        cur = prog
        n: dict[str, Any] = {"tpp": tpp}
        quota: tuple[QuotaUse, ...] = ()
        dr_list: list[tuple[str, Decimal]] = []
        pending: list[tuple[str, Decimal]] = []
        branch: tuple[Any, ...] = ()
        step = prog.kind
        if step == UVEU:
            ref = str(auth_col.at(r)).split(":", 1)[1]
            total = f"uveu/{ref}/total"
            total_after = used(total) + tpp
            uses = [QuotaUse(total, total_after, None, True)]
            dr_list = [(total, tpp)]
            pending = [(total, total_after)]
            broke = None
            for suffix, share in p["checks"]:
                acc = f"uveu/{ref}/{suffix}"
                after = used(acc) + tpp
                cap = share * total_after
                if after > cap:
                    broke = (suffix, share, after)
                    break
                uses.append(QuotaUse(acc, after, cap, True))
                dr_list.append((acc, tpp))
                pending.append((acc, after))
            n.update(ref=ref, uveu_total=total_after)
            if broke is None:
                quota = tuple(uses)
                branch = ("uveu",)
                step = ""
            else:
                sub = p.get("fail")
                if sub is None:
                    d = by_engine(r)
                    outcomes[r] = (-1, None, d.quota, d)
                    continue
                n.update(fail_suffix=broke[0], fail_share=broke[1], fail_after=broke[2])
                dr_list, pending = [], []
                branch = ("uveu_fail",)
                cur, p, step = sub, sub.params, sub.kind
        if step == LPP:
            day = dates.at(r)
            acc = f"lpp/{cons}/{day.year}"
            u = used(acc)
            after = u + tpp
            limit = p["lpp_limit"]
            n.update(
                year=day.year, lpp_used=u, lpp_after=after, lpp_limit=limit, notice=p["notice"]
            )
            if after <= limit:
                pending.append((acc, after))
                quota = (QuotaUse(acc, after, limit, True),)
                dr_list = [(acc, tpp)]
                branch = (*branch, "fit", tpp >= p["notice"], after == limit)
                step = ""
            else:
                branch = (*branch, "over")
                step = cur.over or ""
        if step == AIA:
            acc = f"aia/{cons}"
            u = used(acc)
            after = u + tpp
            pending.append((acc, after))
            n.update(aia_after=after, aia_thr=p["aia_thr"])
            quota = (QuotaUse(acc, after, None, True),)
            dr_list = [(acc, tpp)]
            branch = (*branch, "aia", after >= p["aia_thr"])
        elif step in (ALLOC, LIC):
            acc = p["al_acc"]
            u = used(acc)
            after = u + tpp
            limit = p["al_limit"]
            ok = after <= limit
            n.update(al_acc=acc, al_used=u, al_after=after, al_limit=limit, country=p["country"])
            if step == LIC and (ok or p["exempt"]):
                pending.append((acc, after))
                quota = (QuotaUse(acc, after, limit, True),)
                dr_list = [(acc, tpp)]
            else:
                quota = (QuotaUse(acc, u, limit, False),)
            branch = (*branch, step, ok)
        bkey = (k, *branch)
        t = branch_tpl.get(bkey)
        if t is None:
            t = branch_template(
                engine, orders, r, view, quota, dr_list, n, prog, templates, info, special
            )
            if t is None:
                prog.kind = ENGINE  # the engine decides the key from now on
                d = by_engine(r)
                outcomes[r] = (-1, None, d.quota, d)
                continue
            branch_tpl[bkey] = t
            slotted.extend(
                any(kind == SLOT for kind, _ in x.items) for x in templates[len(slotted) :]
            )
        for a, v in pending:
            write(a, v)
        outcomes[r] = (t, n, quota, None)
    return QuotaPass(templates, outcomes, None if vr is None else vr.vec)


def branch_template(
    engine: Engine,
    orders: Orders,
    r: int,
    view: StateView,
    quota: tuple[QuotaUse, ...],
    dr_list: list[tuple[str, Decimal]],
    n: dict[str, Any],
    prog: Program,
    templates: list[Template],
    info: ItemInfo,
    special: frozenset[str],
) -> int | None:
    """Decide row r with the engine (state before its draws) and check the kernel against it."""
    order = placeholder_at(orders, r, special)
    ref = n.get("ref")
    seen: QuotaView = view if ref is None else _Renamed(view, TOKEN, str(ref))
    try:
        d = engine.decide(order, seen)
    except Exception:
        return None

    def back(account: str) -> str:
        return account if ref is None else account.replace(TOKEN, str(ref))

    d_quota = tuple(dataclasses.replace(q, account=back(q.account)) for q in d.quota)
    if d_quota != quota or [(back(x.account), x.amount) for x in d.draws] != dr_list:
        return None
    day = str(order.order_date)
    tn = n if ref is None else {**n, "ref": TOKEN}
    t = make_template(d, day, info.cls_reasons, tn, prog.params.get("raised", [""]))
    if t is None:
        return None
    if render_reasons(t, day, {}, tn, info.cls_reasons) != list(d.reasons):
        return None
    templates.append(t)
    return len(templates) - 1


def render_reasons(
    t: Template,
    day: str,
    subs: dict[str, str],
    n: dict[str, Any] | None,
    cls_reasons: Sequence[Reason],
) -> list[Reason]:
    """The reasons of one order from its template (the slow, obviously-correct way)."""
    out: list[Reason] = []
    for kind, item in t.items:
        if kind == REGIME:
            r: Reason = item
            out.append(Reason(r.rule, r.citation, r.text.replace(t.day, day, 1)))
        elif kind == CLS:
            out.extend(cls_reasons)
        elif kind == REF:
            r = item
            out.append(Reason(r.rule, r.citation, substitute(r.text, subs)))
        elif kind == SLOT:
            rule, citation, f = item
            assert n is not None
            out.append(Reason(rule, citation, f(n)))
        else:
            out.append(item)
    return out


def substitute(text: str, subs: dict[str, str]) -> str:
    for token, value in subs.items():
        text = text.replace(token, value)
    return text
