"""The decision engine: one order, the quota state and a rule set in; a `Determination` out.

Steps, each adding a reason with its citation:

1. Which controls govern the order's date (`controls.regime`): the Framework from its
   compliance date, the earlier controls (`ear-2024`) before it or in the `ear-2024` rule set.
2. Classify the item (TPP, performance density, ECCN).
3. Tiers of the destination, the consignee's location and its headquarters.
4. Is a license required? If not: NLR.
5. Which authorities could apply, in the order of preference: NLR; exceptions that draw no quota
   (AIA, ACA, ACM); a VEU held by the consignee; LPP; NAC; else an individual license, with the
   review policy it would get. An authorization named on the order is honoured when eligible and
   explained when not.

The engine only reads quota state and returns `Draw`s; callers record them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from aiexport.errors import OrderError, ParameterNotFound, UnknownItem
from aiexport.rules.countries import Countries, CountryStatus
from aiexport.rules.determination import (
    Authority,
    Determination,
    Draw,
    QuotaUse,
    Reason,
    ReviewPolicy,
    Status,
)
from aiexport.rules.items import (
    Catalog,
    Classification,
    ItemKind,
    ItemSpec,
    classify,
    default_catalog,
)
from aiexport.rules.orders import Order
from aiexport.rules.quota import QuotaView, VeuInfo
from aiexport.rules.ruleset import RuleSet

ZERO = Decimal(0)
# Exceptions that draw no quota and need no notice first, then a VEU, LPP, NAC.
PREFERENCE: tuple[Authority, ...] = ("AIA", "ACA", "ACM", "UVEU", "NVEU", "LPP", "NAC")

# A hook for restricted-party screening: returns a reason when the consignee (or another party)
# confidently matches the Entity List, which makes a license required (§ 744.11).
PartyScreen = Callable[[Order], Reason | None]


@dataclass
class Option:
    """Whether one authority can carry the order, and what it brings."""

    authority: Authority
    eligible: bool
    reasons: list[Reason] = field(default_factory=list)
    obligations: list[str] = field(default_factory=list)
    draws: list[Draw] = field(default_factory=list)
    quota: list[QuotaUse] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Context:
    """Everything the steps share about one order."""

    order: Order
    rules: RuleSet
    quota: QuotaView
    day: dt.date
    regime: str
    spec: ItemSpec
    cls: Classification
    tpp_total: Decimal
    dest: CountryStatus
    loc: CountryStatus
    hq: CountryStatus
    tier: int
    effective: dt.date
    countries: Countries
    reasons: list[Reason] = field(default_factory=list)

    def cite(self, rule_id: str) -> str:
        return self.rules.citations(rule_id)

    def add(self, rule_id: str, text: str) -> None:
        self.reasons.append(Reason(rule_id, self.cite(rule_id), text))

    @property
    def any_tier3(self) -> bool:
        return self.dest.macau_or_d5 or self.loc.macau_or_d5 or self.hq.macau_or_d5

    def veu_hq_tier1(self, country: str) -> bool:
        """Whether a VEU holder's headquarters is in Supp. No. 5 para (a) (as first published)."""
        return country in self.rules.members("countries.tier1", max(self.day, self.effective))

    @property
    def restricted(self) -> bool:
        """§ 740.2(a)(9)(ii): D:1/D:4/D:5 not also A:5/A:6, or a Macau/D:5 headquarters."""
        return self.dest.restricted_740_2 or self.hq.macau_or_d5


class Engine:
    """Decides orders under one rule set; caches country lookups and the catalog."""

    def __init__(
        self,
        rules: RuleSet,
        catalog: Catalog | None = None,
        party_screen: PartyScreen | None = None,
    ) -> None:
        self.rules = rules
        self.catalog = catalog or default_catalog()
        self.countries = Countries(rules)
        self.party_screen = party_screen
        ref = str(rules.param("items.reference_chip").values[-1].value)
        self.h100_tpp = self.catalog.lookup(ref).ic.tpp
        # A fixed date, not a value read "as of" the order: orders dated under the earlier
        # controls (from 2023-11-17) come before it and must still find it.
        self.effective = _date(rules.param("controls.effective_date").values[-1].value)
        # Classifications read only `items.*` parameters of the day: one per (item, day, regime).
        self._classified: dict[tuple[ItemSpec, dt.date, str], Classification] = {}

    # -- inputs -------------------------------------------------------------------------
    def item_spec(self, order: Order) -> ItemSpec:
        """Resolve the order's item against the catalog, honouring the row's overrides."""
        kind = order.item_kind
        if kind == "model_weights":
            return ItemSpec(
                item_id=order.item,
                kind="model_weights",
                tpp_per_ic=ZERO,
                die_area_mm2=None,
                datacenter=True,
                chips_per_unit=1,
                training_ops=order.training_ops,
                open_weights=order.open_weights,
                derived_from_published=order.derived_from_published,
                additional_training_ops=order.additional_training_ops,
                less_capable_than_open=order.less_capable_than_open,
            )
        entry = self.catalog.get(order.item) if order.item else None
        if entry is None and order.tpp_per_unit is None:
            raise UnknownItem(
                f"item {order.item!r} is not in the catalog and the row gives no "
                "`tpp_per_unit`; add the TPP of one IC (and `die_area_mm2`)"
            )
        resolved_kind: ItemKind = "ic"
        if kind in ("ic", "computer"):
            resolved_kind = "computer" if kind == "computer" else "ic"
        elif entry is not None:
            resolved_kind = entry.kind
        chips = order.chips_per_unit or (entry.chips_per_unit if entry else 1)
        if resolved_kind == "ic" and entry is not None and entry.kind == "computer":
            resolved_kind = "computer"
        return ItemSpec(
            item_id=entry.item_id if entry else order.item,
            kind=resolved_kind,
            tpp_per_ic=order.tpp_per_unit if order.tpp_per_unit is not None else entry.ic.tpp,  # type: ignore[union-attr]
            die_area_mm2=order.die_area_mm2
            if order.die_area_mm2 is not None
            else (entry.ic.die_area_mm2 if entry else None),
            datacenter=order.datacenter
            if order.datacenter is not None
            else (entry.ic.datacenter if entry else True),
            chips_per_unit=chips,
            memory_bandwidth_gbps=order.memory_bandwidth_gbps
            if order.memory_bandwidth_gbps is not None
            else (entry.ic.memory_bandwidth_gbps if entry else None),
        )

    def _classify(self, spec: ItemSpec, day: dt.date, regime: str) -> Classification:
        key = (spec, day, regime)
        hit = self._classified.get(key)
        if hit is None:
            if len(self._classified) >= 100_000:
                self._classified.clear()
            hit = self._classified[key] = classify(spec, self.rules, day, regime)
        return hit

    # -- the decision -------------------------------------------------------------------
    def decide(self, order: Order, quota: QuotaView) -> Determination:
        day = order.order_date
        try:
            regime = str(self.rules.value("controls.regime", day))
        except ParameterNotFound as exc:
            raise OrderError(str(exc), line=order.line, column="order_date") from exc
        try:
            spec = self.item_spec(order)
            cls = self._classify(spec, day, regime)
        except UnknownItem as exc:
            raise OrderError(exc.message, line=order.line, column=exc.column) from exc
        tpp_total = Decimal(order.quantity) * spec.chips_per_unit * cls.tpp_per_ic
        if spec.kind == "model_weights":
            tpp_total = ZERO
        tier_day = max(day, self.effective)
        dest = self.countries.status(order.destination, tier_day)
        loc = self.countries.status(order.location, tier_day)
        hq = self.countries.status(order.hq, tier_day)
        dest_now = self.countries.status(order.destination, day)
        loc_now = self.countries.status(order.location, day)
        hq_now = self.countries.status(order.hq, day)
        tier = _governing_tier(dest, loc, hq)
        ctx = Context(
            order=order,
            rules=self.rules,
            quota=quota,
            day=day,
            regime=regime,
            spec=spec,
            cls=cls,
            tpp_total=tpp_total,
            dest=dest_now,
            loc=loc_now,
            hq=hq_now,
            tier=tier,
            effective=self.effective,
            countries=self.countries,
        )
        if regime == "diffusion":
            ctx.add(
                "regime.diffusion",
                f"Order dated {day}: decided under {self.rules.name} (the Framework for AI Diffusion, compliance date passed).",
            )
        else:
            ctx.add(
                "regime.ear2024",
                f"Order dated {day}: decided under the controls in force before the Framework (ear-2024).",
            )
        ctx.reasons.extend(cls.reasons)
        ctx.add("tier.rule", _tier_text(order, dest, loc, hq, tier, tier_day != day))
        screen_reason = self.party_screen(order) if self.party_screen else None
        if regime == "diffusion":
            return self._finish(ctx, *_diffusion(ctx, screen_reason))
        return self._finish(ctx, *_ear2024(ctx, screen_reason))

    def _finish(
        self,
        ctx: Context,
        status: Status,
        authority: Authority,
        policy: ReviewPolicy | None,
        option: Option | None,
    ) -> Determination:
        obligations: tuple[str, ...] = ()
        draws: tuple[Draw, ...] = ()
        quota: tuple[QuotaUse, ...] = ()
        warnings: tuple[str, ...] = ()
        if option is not None:
            ctx.reasons.extend(option.reasons)
            obligations = tuple(option.obligations)
            draws = tuple(option.draws)
            quota = tuple(option.quota)
            warnings = tuple(option.warnings)
        return Determination(
            order_id=ctx.order.order_id,
            eccn=ctx.cls.eccn,
            tpp_total=ctx.tpp_total,
            h100_equivalents=ctx.tpp_total / self.h100_tpp,
            destination_tier=ctx.tier,
            status=status,
            authority=authority,
            review_policy=policy,
            obligations=obligations,
            quota=quota,
            reasons=tuple(ctx.reasons),
            rule_set=self.rules.name,
            draws=draws,
            warnings=warnings,
        )


def _date(value: object) -> dt.date:
    return dt.date.fromisoformat(str(value))


def _governing_tier(dest: CountryStatus, loc: CountryStatus, hq: CountryStatus) -> int:
    if dest.tier == 3 or loc.tier == 3 or hq.tier == 3:
        return 3
    if dest.tier == 1 and loc.tier == 1 and hq.tier == 1:
        return 1
    return 2


def _tier_text(
    order: Order,
    dest: CountryStatus,
    loc: CountryStatus,
    hq: CountryStatus,
    tier: int,
    before_rule: bool,
) -> str:
    parts = [f"Destination {order.destination} is Tier {dest.tier}"]
    if order.location != order.destination:
        parts.append(f"consignee located in {order.location} (Tier {loc.tier})")
    parts.append(f"headquartered in {order.hq} (Tier {hq.tier})")
    text = "; ".join(parts) + f": the order is Tier {tier}."
    if dest.governed_by != dest.code:
        text += (
            f" {dest.code} is governed by the {dest.governed_by} entry of Supp. No. 1 to part 740."
        )
    if before_rule:
        text += " (Tiers shown as the Framework published them; the earlier controls have none.)"
    return text


# ---------------------------------------------------------------------------------------
# The Framework (diffusion regime)
# ---------------------------------------------------------------------------------------

Outcome = tuple[Status, Authority, ReviewPolicy | None, Option | None]


def _diffusion(ctx: Context, screen: Reason | None) -> Outcome:
    cls = ctx.cls
    order = ctx.order
    if screen is not None:
        ctx.reasons.append(screen)
        return "license_required", "LICENSE", "presumption_of_denial", None
    if cls.eccn == "4E091":
        ctx.add(
            "req.4e091", "4E091 model weights need a license to every destination (§ 742.6(a)(13))."
        )
    elif cls.level == "a":
        ctx.add("req.a", f"{cls.eccn} items need a license to every destination worldwide.")
    elif cls.level == "b" and ctx.dest.b_level_scope:
        where = (
            "named in the .b-level CCL entries"
            if not ctx.dest.restricted_740_2
            else "in D:1/D:4/D:5 and not A:5/A:6"
        )
        ctx.add("req.b", f"{cls.eccn} to {order.destination}, {where}: license required.")
    elif cls.level == "b" and ctx.hq.macau_or_d5:
        ctx.add(
            "req.b_hq",
            f"{cls.eccn} to an entity headquartered in {order.hq} (Macau or D:5): license required.",
        )
    elif cls.level == "b":
        ctx.add(
            "req.b_none",
            f"{cls.eccn} to {order.destination} (not D:1/D:4/D:5, or also A:5/A:6) for an entity not headquartered in Macau or D:5: no license required.",
        )
        return "no_license_required", "NLR", None, None
    else:
        ctx.add(
            "req.none",
            "No license is required for this item under the advanced-computing controls: NLR.",
        )
        return "no_license_required", "NLR", None, None
    if ctx.restricted:
        ctx.add(
            "restrict.740_2",
            "§ 740.2(a)(9)(ii) applies (destination in D:1/D:4/D:5 and not A:5/A:6, or a Macau/D:5 "
            "headquarters): only NAC/ACA, ACM and (for 4E091) AIA remain among the exceptions considered.",
        )
    options = _options(ctx)
    requested = order.authorization_kind
    if requested == "LICENSE":
        return _cited_license(ctx)
    if requested is not None:
        chosen = options.get(requested)
        if chosen is not None and chosen.eligible:
            ctx.add(
                "auth.requested",
                f"The order names {order.authorization}; it is eligible and is used.",
            )
            return "license_exception", chosen.authority, None, chosen
        why = "; ".join(r.text for r in chosen.reasons) if chosen else "not applicable to this item"
        ctx.add(
            "auth.requested_ineligible",
            f"The order names {order.authorization}, which is not available: {why}",
        )
        if chosen is not None:
            # Keep the failed condition as its own step, with its own citation.
            ctx.reasons.extend(chosen.reasons)
            chosen.reasons = []
    for name in PREFERENCE:
        opt = options.get(name)
        if opt is None:
            continue
        if opt.eligible:
            return "license_exception", opt.authority, None, opt
        if name != requested:
            ctx.reasons.extend(opt.reasons)
            opt.reasons = []
    policy, lic = _license_policy(ctx)
    return "license_required", "LICENSE", policy, lic


def _options(ctx: Context) -> dict[str, Option]:
    """Evaluate every authority that could carry the order."""
    out: dict[str, Option] = {}
    if ctx.cls.eccn == "4E091":
        blocked = _restriction_blocks(ctx, "AIA")
        out["AIA"] = _no(ctx, "AIA", "restrict.740_2", blocked) if blocked else _aia_weights(ctx)
        return out
    out["AIA"] = _aia(ctx)
    out["ACA"] = _aca(ctx)
    out["ACM"] = _acm(ctx)
    for veu_opt in _veus(ctx):
        out.setdefault(veu_opt.authority, veu_opt)
        if veu_opt.eligible:
            out[veu_opt.authority] = veu_opt
    out["LPP"] = _lpp(ctx)
    out["NAC"] = _nac(ctx)
    for name in ("ACA", "ACM", "NAC"):
        blocked = _restriction_blocks(ctx, name)
        if blocked and out[name].eligible:
            out[name] = _no(ctx, out[name].authority, "restrict.740_2", blocked)
    return out


def _restriction_blocks(ctx: Context, exception: str) -> str | None:
    """Why § 740.2(a)(9)(ii) takes `exception` away from this order, or None.

    The exceptions it leaves, and the items AIA keeps there, are read from
    `exceptions.restriction.*`, so a scenario can change them.
    """
    if not ctx.restricted:
        return None
    allowed = ctx.rules.members("exceptions.restriction.allowed", ctx.day)
    where = (
        f"{ctx.order.destination} is in D:1/D:4/D:5 and not A:5/A:6"
        if ctx.dest.restricted_740_2
        else f"the consignee is headquartered in {ctx.order.hq} (Macau or D:5)"
    )
    if exception not in allowed:
        return f"{where}; § 740.2(a)(9)(ii) leaves no {exception} there."
    if exception == "AIA":
        only = ctx.rules.members("exceptions.restriction.aia_only_for", ctx.day)
        if ctx.cls.eccn not in only:
            return (
                f"{where}; under § 740.2(a)(9)(ii) AIA is left only for {', '.join(sorted(only))}."
            )
    return None


def _no(ctx: Context, authority: Authority, rule_id: str, text: str) -> Option:
    return Option(
        authority, False, [Reason(rule_id, ctx.cite(rule_id), f"{authority} not available: {text}")]
    )


def _aia(ctx: Context) -> Option:
    o = ctx.order
    eligible = ctx.rules.members("exceptions.aia.eligible_eccns", ctx.day)
    if ctx.cls.eccn not in eligible:
        return _no(
            ctx,
            "AIA",
            "aia.items",
            f"{ctx.cls.eccn} is not among the AIA commodities of § 740.27(a)(1).",
        )
    blocked = _restriction_blocks(ctx, "AIA")
    if blocked:
        return _no(ctx, "AIA", "restrict.740_2", blocked)
    if not (ctx.dest.tier1 and ctx.loc.tier1):
        return _no(
            ctx,
            "AIA",
            "aia.scope",
            f"the consignee is not located in a Supp. No. 5 para (a) destination ({o.location}).",
        )
    if not ctx.hq.tier1:
        return _no(
            ctx,
            "AIA",
            "aia.scope",
            f"the consignee is headquartered outside Supp. No. 5 para (a) ({o.hq}).",
        )
    opt = Option("AIA", True)
    opt.reasons.append(
        Reason(
            "aia.scope",
            ctx.cite("aia.scope"),
            "AIA applies: the consignee is located in and headquartered in Supp. No. 5 para (a) destinations.",
        )
    )
    opt.obligations += ["AIA_FURNISH_ECCN", "AIA_CERTIFICATION", "AIA_SHIPMENT_NOTICE"]
    account = f"aia/{o.consignee}"
    used = ctx.quota.used(account)
    after = used + ctx.tpp_total
    threshold = ctx.rules.number("exceptions.aia.report_threshold_tpp", ctx.day)
    if after >= threshold:
        opt.obligations.append("AIA_CERTIFICATION_TO_BIS")
        opt.reasons.append(
            Reason(
                "aia.report",
                ctx.cite("aia.report"),
                f"The consignee's cumulative AIA receipts reach {after:,} TPP (>= {threshold:,}): submit its certification to BIS (subject 'AIA Certification') before the first export.",
            )
        )
    opt.draws.append(Draw(account, ctx.tpp_total, None, ctx.cite("aia.report")))
    opt.quota.append(QuotaUse(account, after, None, True))
    return opt


def _aia_weights(ctx: Context) -> Option:
    """AIA for 4E091 weights: § 740.27(a)(2)(ii) makes them eligible only "subject to the
    additional requirements in paragraph (a)(3)", and (a)'s own scope covers (a)(1) and (a)(2)(i)
    items only. So every AIA export of weights, to a Tier 1 location too, needs (a)(3): Tier 1
    headquarters, a location outside Macau/D:5, and storage meeting Supp. No. 10 paras 14, 15 and
    18 once their delayed compliance date has passed (see law/exceptions/aia.yaml)."""
    o = ctx.order
    if not ctx.hq.tier1:
        return _no(
            ctx,
            "AIA",
            "aia.weights",
            f"the consignee is headquartered outside Supp. No. 5 para (a) ({o.hq}).",
        )
    if ctx.dest.macau_or_d5 or ctx.loc.macau_or_d5:
        return _no(ctx, "AIA", "aia.weights", "the consignee is located in Macau or D:5.")
    security_due = bool(ctx.rules.value("controls.supp10_security_in_force", ctx.day))
    if security_due and not o.secure_storage:
        return _no(
            ctx,
            "AIA",
            "aia.weights",
            "the weights must be stored in a facility meeting Supp. No. 10 to part 748 paras 14, 15 and 18 (order column `secure_storage`).",
        )
    opt = Option("AIA", True)
    if security_due:
        text = "AIA (a)(3) applies: Tier 1 headquarters, located outside Macau/D:5, weights stored in a facility meeting Supp. No. 10 paras 14, 15 and 18."
    else:
        text = "AIA (a)(3) applies: Tier 1 headquarters, located outside Macau/D:5; Supp. No. 10 paras 14, 15 and 18 have a delayed compliance date that has not passed."
    opt.reasons.append(Reason("aia.weights", ctx.cite("aia.weights"), text))
    opt.obligations.append("AIA_WEIGHTS_SECURE_STORAGE")
    return opt


def _nac_aca_items(ctx: Context) -> str | None:
    eligible = ctx.rules.members("exceptions.nac_aca.eligible_eccns", ctx.day)
    if ctx.cls.eccn not in eligible:
        return f"{ctx.cls.eccn} is not among the NAC/ACA items."
    if ctx.cls.level == "a" and ctx.spec.datacenter:
        return "the item is designed or marketed for datacenters and meets 3A090.a."
    return None


def _aca(ctx: Context) -> Option:
    bad_items = _nac_aca_items(ctx)
    if bad_items:
        return _no(ctx, "ACA", "aca.scope", bad_items)
    if ctx.any_tier3:
        return _no(
            ctx,
            "ACA",
            "aca.scope",
            "the destination or the consignee's headquarters is Macau or D:5 (NAC covers those).",
        )
    opt = Option("ACA", True)
    opt.reasons.append(
        Reason(
            "aca.scope",
            ctx.cite("aca.scope"),
            "ACA applies: an item outside the datacenter 3A090.a class, to a destination and consignee outside Macau and D:5; no notice needed.",
        )
    )
    return opt


def _nac(ctx: Context) -> Option:
    bad_items = _nac_aca_items(ctx)
    if bad_items:
        return _no(ctx, "NAC", "nac.scope", bad_items)
    if not ctx.any_tier3:
        return _no(
            ctx,
            "NAC",
            "nac.scope",
            "NAC covers Macau, D:5 and Macau/D:5-headquartered entities only.",
        )
    days = ctx.rules.number("exceptions.nac_aca.notice_days", ctx.day)
    opt = Option("NAC", True)
    opt.reasons.append(
        Reason(
            "nac.scope",
            ctx.cite("nac.scope"),
            "NAC applies: an item outside the datacenter 3A090.a class, to Macau/D:5 or a Macau/D:5-headquartered entity.",
        )
    )
    opt.reasons.append(
        Reason(
            "nac.notice",
            ctx.cite("nac.notice"),
            f"File the NAC notice in SNAP-R at least {days} calendar days before export; BIS may still require a license.",
        )
    )
    opt.obligations.append("NAC_NOTICE_25D")
    return opt


def _acm(ctx: Context) -> Option:
    o = ctx.order
    eligible = ctx.rules.members("exceptions.acm.eligible_eccns", ctx.day)
    if ctx.cls.eccn not in eligible:
        return _no(ctx, "ACM", "acm.items", f"{ctx.cls.eccn} is not an ACM item.")
    if ctx.any_tier3:
        return _no(
            ctx,
            "ACM",
            "acm.dest",
            "the destination or the consignee's headquarters is Macau or D:5.",
        )
    if o.consignee_government:
        return _no(
            ctx,
            "ACM",
            "acm.private",
            "the consignee is owned or controlled by a government other than the U.S., not a 'private sector end user'.",
        )
    uses = ctx.rules.members("exceptions.acm.end_uses", ctx.day)
    if o.end_use not in uses:
        return _no(
            ctx,
            "ACM",
            "acm.scope",
            f"end use {o.end_use!r} is not development, production or storage before onward shipment.",
        )
    opt = Option("ACM", True)
    opt.reasons.append(
        Reason(
            "acm.scope",
            ctx.cite("acm.scope"),
            f"ACM applies: a private-sector end user, end use {o.end_use!r}, outside Macau and D:5; draws on no country allocation.",
        )
    )
    opt.reasons.append(
        Reason(
            "acm.accounting",
            ctx.cite("acm.accounting"),
            "Keep a per-facility account of items in and out, updated at least every six months.",
        )
    )
    opt.obligations.append("ACM_FACILITY_ACCOUNTING")
    return opt


def _lpp(ctx: Context) -> Option:
    o = ctx.order
    eligible = ctx.rules.members("exceptions.lpp.eligible_eccns", ctx.day)
    if ctx.cls.eccn not in eligible:
        return _no(
            ctx, "LPP", "lpp.items", f"{ctx.cls.eccn} is not an LPP commodity (§ 740.29(b))."
        )
    if ctx.any_tier3:
        return _no(
            ctx,
            "LPP",
            "lpp.dest",
            "the destination or the consignee's headquarters is Macau or D:5.",
        )
    blocked = _restriction_blocks(ctx, "LPP")
    if blocked:
        return _no(ctx, "LPP", "restrict.740_2", blocked)
    if o.end_use == "resale":
        return _no(
            ctx,
            "LPP",
            "lpp.direct",
            "LPP ships directly to the ultimate consignee; an order for resale goes to a distributor.",
        )
    limit = ctx.rules.number("exceptions.lpp.annual_limit_tpp", ctx.day)
    account = f"lpp/{o.consignee}/{ctx.day.year}"
    used = ctx.quota.used(account)
    after = used + ctx.tpp_total
    if after > limit:
        opt = _no(
            ctx,
            "LPP",
            "lpp.limit",
            f"the consignee has received {used:,} TPP under LPP in {ctx.day.year}; this order's {ctx.tpp_total:,} would bring it to {after:,}, over the {limit:,} allowance. The order draws nothing.",
        )
        opt.quota.append(QuotaUse(account, used, limit, False))
        return opt
    opt = Option("LPP", True)
    opt.reasons.append(
        Reason(
            "lpp.limit",
            ctx.cite("lpp.limit"),
            f"LPP applies: the consignee's {ctx.day.year} LPP total becomes {after:,} of {limit:,} TPP (all exporters).",
        )
    )
    opt.obligations += ["LPP_CONSIGNEE_CERTIFICATION", "LPP_CERTIFICATION_COPY_30D"]
    notice = ctx.rules.number("exceptions.lpp.preshipment_notice_tpp", ctx.day)
    if ctx.tpp_total >= notice:
        opt.obligations.append("LPP_PRESHIPMENT_NOTICE")
        opt.reasons.append(
            Reason(
                "lpp.notice",
                ctx.cite("lpp.notice"),
                f"The shipment's aggregate TPP {ctx.tpp_total:,} is {notice:,} or more: notify BIS ('LPP Shipment') before export.",
            )
        )
    if after == limit:
        opt.obligations.append("LPP_LIMIT_REACHED_NOTICE")
        opt.reasons.append(
            Reason(
                "lpp.limit_reached",
                ctx.cite("lpp.limit_reached"),
                "This shipment exhausts the consignee's annual allowance: the consignee must notify BIS ('LPP TPP Limit Reached').",
            )
        )
    opt.draws.append(Draw(account, ctx.tpp_total, limit, ctx.cite("lpp.limit")))
    opt.quota.append(QuotaUse(account, after, limit, True))
    return opt


def _veus(ctx: Context) -> list[Option]:
    """Data Center VEU options: the one the order names, and any held by the consignee."""
    o = ctx.order
    candidates: list[VeuInfo] = []
    warnings: list[str] = []
    kind = o.authorization_kind
    if kind in ("UVEU", "NVEU") and o.authorization_ref:
        found = ctx.quota.veu(o.authorization_ref)
        if found is None:
            found = VeuInfo(
                veu_id=o.authorization_ref,
                kind="UVEU" if kind == "UVEU" else "NVEU",
                holder=o.consignee,
                hq_country=o.hq,
                countries=frozenset({o.destination}) if kind == "NVEU" else frozenset(),
                valid_from=ctx.day,
            )
            warnings.append(f"{o.authorization} is not registered; taken at the exporter's word")
        candidates.append(found)
    for v in ctx.quota.veus_for(o.consignee):
        if all(v.veu_id != c.veu_id for c in candidates):
            candidates.append(v)
    out = []
    for v in candidates:
        opt = _veu(ctx, v)
        opt.warnings.extend(warnings)
        if warnings and opt.eligible:
            opt.reasons.append(
                Reason(
                    "veu.unregistered",
                    ctx.cite("veu.use"),
                    f"Warning: {warnings[0]}; register it with `aiexport veu add`.",
                )
            )
        out.append(opt)
    return out


def _veu(ctx: Context, v: VeuInfo) -> Option:
    o = ctx.order
    name: Authority = v.kind
    if ctx.cls.level is None:
        return _no(ctx, name, "veu.use", f"{ctx.cls.eccn} is not a Data Center VEU item.")
    if v.holder != o.consignee:
        return _no(
            ctx, name, "veu.use", f"{v.veu_id} is held by {v.holder}, not by this consignee."
        )
    if not v.valid_on(ctx.day):
        return _no(ctx, name, "veu.use", f"{v.veu_id} is not valid on {ctx.day}.")
    if ctx.dest.macau_or_d5:
        return _no(ctx, name, "veu.use", "Data Center VEU facilities may not be in Macau or D:5.")
    if ctx.hq.macau_or_d5 or ctx.countries.status(v.hq_country, ctx.day).macau_or_d5:
        return _no(
            ctx,
            name,
            "veu.hq",
            "a Data Center VEU may not be headquartered (or have its ultimate parent) in Macau or D:5.",
        )
    tpp = ctx.tpp_total
    if v.kind == "NVEU":
        if o.destination not in v.countries:
            return _no(
                ctx,
                name,
                "veu.nveu",
                f"{v.veu_id} covers {', '.join(sorted(v.countries)) or 'no country'}, not {o.destination}; an NVEU is country-specific.",
            )
        try:
            limit = ctx.rules.number("allocation.nveu.installed_base_tpp", ctx.day)
        except ParameterNotFound:
            return _no(ctx, name, "veu.nveu_alloc", f"no NVEU allocation is set for {ctx.day}.")
        account = f"nveu/{v.veu_id}/{o.destination}"
        used = ctx.quota.used(account)
        after = used + tpp
        if after > limit:
            opt = _no(
                ctx,
                name,
                "veu.nveu_alloc",
                f"installed base would reach {after:,} TPP, over this quarter's {limit:,}.",
            )
            opt.quota.append(QuotaUse(account, used, limit, False))
            return opt
        opt = Option(name, True)
        opt.reasons.append(
            Reason(
                "veu.nveu_alloc",
                ctx.cite("veu.nveu_alloc"),
                f"NVEU {v.veu_id} in {o.destination}: installed base becomes {after:,} of {limit:,} TPP this quarter; does not count toward the country allocation.",
            )
        )
        opt.draws.append(Draw(account, tpp, limit, ctx.cite("veu.nveu_alloc")))
        opt.quota.append(QuotaUse(account, after, limit, True))
        opt.obligations.append("VEU_SEMIANNUAL_REPORT")
        return opt
    rules = ctx.rules
    if not ctx.veu_hq_tier1(v.hq_country):
        return _no(
            ctx,
            name,
            "veu.uveu",
            f"a UVEU must be headquartered in Supp. No. 5 para (a) ({v.hq_country} is not).",
        )
    if v.countries and o.destination not in v.countries:
        return _no(
            ctx, name, "veu.uveu", f"{o.destination} is not an authorized location of {v.veu_id}."
        )
    total = f"uveu/{v.veu_id}/total"
    total_after = ctx.quota.used(total) + tpp
    opt = Option(name, True)
    opt.draws.append(Draw(total, tpp, None, ctx.cite("veu.uveu_geo")))
    checks: list[tuple[str, Decimal]] = []
    if not ctx.dest.tier1:
        checks.append(
            (
                f"uveu/{v.veu_id}/outside-tier1",
                rules.number("allocation.uveu.max_share_outside_tier1", ctx.day),
            )
        )
        checks.append(
            (
                f"uveu/{v.veu_id}/country/{o.destination}",
                rules.number("allocation.uveu.max_share_single_country", ctx.day),
            )
        )
    if v.hq_country == "US" and o.destination != "US":
        checks.append(
            (
                f"uveu/{v.veu_id}/outside-US",
                rules.number("allocation.uveu.max_share_outside_us_for_us_hq", ctx.day),
            )
        )
    for account, share in checks:
        after = ctx.quota.used(account) + tpp
        cap = share * total_after
        if after > cap:
            fail = _no(
                ctx,
                name,
                "veu.uveu_geo",
                f"{account} would hold {after:,} TPP, over {share:.0%} of the holder's {total_after:,} TPP total.",
            )
            fail.quota.append(QuotaUse(account, after - tpp, cap, False))
            return fail
        opt.draws.append(
            Draw(account, tpp, None, ctx.cite("veu.uveu_geo"), max_share=share, share_of=total)
        )
        opt.quota.append(QuotaUse(account, after, cap, True))
    opt.reasons.append(
        Reason(
            "veu.uveu_geo",
            ctx.cite("veu.uveu_geo"),
            f"UVEU {v.veu_id}: geographic allocations hold after this shipment (holder total {total_after:,} TPP).",
        )
    )
    opt.quota.insert(0, QuotaUse(total, total_after, None, True))
    opt.obligations.append("VEU_SEMIANNUAL_REPORT")
    return opt


def _allocation_country(ctx: Context) -> str | None:
    """The country whose allocation a license for .a-level items counts against, if any.

    BIS counts "the TPP of 3A090.a, 4A090.a, and corresponding .z items licensed to each
    destination" (§ 742.6(b)(10)(iii)(B)(1)): the destination's allocation, whoever the
    consignee is. Tier 1 and Macau/D:5 destinations have none.
    """
    if not ctx.dest.tier1 and not ctx.dest.macau_or_d5:
        return ctx.dest.governed_by
    return None


def _allocation_limit(ctx: Context) -> tuple[Decimal | None, str]:
    """The destination's allocation on the order's date; None where the rule sets none (2028-)."""
    try:
        limit = ctx.rules.number("allocation.country.limit_tpp", ctx.day)
    except ParameterNotFound:
        return None, ""
    if ctx.dest.supp5b:
        increase = ctx.rules.number("allocation.country.supp5b_increase", ctx.day)
        return limit * (
            1 + increase
        ), f" raised by {increase:.0%} for a Supp. No. 5 para (b) destination"
    return limit, ""


def _license_policy(ctx: Context) -> tuple[ReviewPolicy, Option | None]:
    """The review policy an individual license application would get.

    For .a-level items § 742.6(b)(10)(iii) gives (A)(1) presumption of denial for Macau/D:5 or
    their headquarters, (A)(2) presumption of approval for Supp. No. 5 para (a) destinations *or*
    entities headquartered there, and (B), the allocation policy, for "all other destinations".
    Read with (B)'s heading, (B) is the residual case (rule-facts §10.10; see
    law/allocation/country.yaml): a Tier-1-headquartered entity in a Tier 2 country, or a Tier 2
    entity in a Tier 1 country, gets (A)(2). Licensed TPP to a Tier 2 destination still counts
    toward its allocation, so the option carries the destination's account either way.
    """
    cls = ctx.cls
    if cls.eccn == "4E091":
        if ctx.hq.tier1:
            ctx.add(
                "lic.4e091_t1",
                "License review for 4E091 to an end user headquartered in Supp. No. 5 para (a): presumption of approval.",
            )
            return "presumption_of_approval", None
        ctx.add(
            "lic.4e091_denial",
            f"License review for 4E091 to an end user headquartered outside Supp. No. 5 para (a) ({ctx.order.hq}): presumption of denial.",
        )
        return "presumption_of_denial", None
    if cls.level == "b" or cls.level is None:
        if ctx.any_tier3:
            ctx.add(
                "lic.b_denial",
                "License review for .b-level items to Macau/D:5 or a Macau/D:5-headquartered entity: presumption of denial.",
            )
            return "presumption_of_denial", None
        ctx.add(
            "lic.b_ok",
            "License review for .b-level items outside Macau/D:5: presumption of approval.",
        )
        return "presumption_of_approval", None
    if ctx.any_tier3:
        ctx.add(
            "lic.a_t3",
            "License review to or within Macau/D:5, or for a Macau/D:5-headquartered entity: presumption of denial.",
        )
        return "presumption_of_denial", None
    country = _allocation_country(ctx)
    account = f"allocation/{country}"
    if ctx.dest.tier1 or ctx.hq.tier1:
        where = (
            f"to a Supp. No. 5 para (a) destination ({ctx.order.destination})"
            if ctx.dest.tier1
            else f"for an entity headquartered in Supp. No. 5 para (a) ({ctx.order.hq})"
        )
        ctx.add(
            "lic.a_t1",
            f"License review {where}: presumption of approval, whatever the country allocation.",
        )
        limit, _ = _allocation_limit(ctx)
        if country is None or limit is None:
            return "presumption_of_approval", None
        opt = Option("LICENSE", True)
        opt.quota.append(QuotaUse(account, ctx.quota.used(account), limit, False))
        return "presumption_of_approval", opt
    assert country is not None
    limit, raised = _allocation_limit(ctx)
    if limit is None:
        ctx.add(
            "lic.alloc_unset",
            f"The rule sets no country allocation for {ctx.day.year} (BIS reviews allocations for later years annually): reviewed case by case.",
        )
        return "case_by_case", None
    used = ctx.quota.used(account)
    after = used + ctx.tpp_total
    opt = Option("LICENSE", True)
    opt.quota.append(QuotaUse(account, used, limit, False))
    if after <= limit:
        ctx.add(
            "lic.alloc_ok",
            f"{country}'s country allocation: {used:,} TPP licensed so far; with this order {after:,} of {limit:,}{raised}: presumption of approval.",
        )
        _po_reason(ctx)
        return "presumption_of_approval", opt
    ctx.add(
        "lic.alloc_met",
        f"{country}'s country allocation: {used:,} TPP licensed so far; this order would bring it to {after:,}, over {limit:,}{raised}: policy of denial.",
    )
    return "policy_of_denial", opt


def _po_reason(ctx: Context) -> None:
    ctx.add(
        "lic.po",
        "The application needs the purchase order; BIS generally limits the licensed quantity to it and counts the licensed TPP against the allocation.",
    )


def _cited_license(ctx: Context) -> Outcome:
    """An order shipped under a license already granted (`LICENSE:<id>`)."""
    o = ctx.order
    lic_id = o.authorization_ref or ""
    policy, alloc = _license_policy(ctx) if ctx.regime == "diffusion" else _ear_policy(ctx)
    opt = Option("LICENSE", True)
    registered = ctx.quota.license(lic_id)
    if registered is not None:
        problems = []
        if not registered.valid_from <= ctx.day <= registered.valid_until:
            problems.append(
                f"valid {registered.valid_from} to {registered.valid_until}, not on {ctx.day}"
            )
        if registered.destination != o.destination:
            problems.append(f"issued for {registered.destination}, not {o.destination}")
        if registered.consignee and registered.consignee != o.consignee:
            problems.append(f"issued to {registered.consignee}, not {o.consignee}")
        account = f"license/{lic_id}"
        used = ctx.quota.used(account)
        after = used + ctx.tpp_total
        if after > registered.tpp:
            problems.append(f"its balance would reach {after:,} of {registered.tpp:,} TPP")
        if problems:
            ctx.add(
                "lic.cited_invalid",
                f"License {lic_id} cannot carry this order: {'; '.join(problems)}. A license must be sought.",
            )
            return "license_required", "LICENSE", policy, None
        ctx.add(
            "lic.cited",
            f"Shipped under license {lic_id} (registered): its balance becomes {after:,} of {registered.tpp:,} TPP; the grant already counted against the country allocation.",
        )
        opt.draws.append(Draw(account, ctx.tpp_total, registered.tpp, ctx.cite("lic.cited")))
        opt.quota.append(QuotaUse(account, after, registered.tpp, True))
        if alloc is not None:
            opt.quota.extend(alloc.quota)
        return "license_required", "LICENSE", policy, opt
    warning = f"license {lic_id} is not registered; taken at the exporter's word"
    opt.warnings.append(warning)
    ctx.add("lic.cited", f"Warning: {warning} (register it with `aiexport license add`).")
    if alloc is not None and ctx.cls.level == "a" and ctx.regime == "diffusion":
        use = alloc.quota[0]
        limit = use.limit_tpp or ZERO
        after = use.used_tpp + ctx.tpp_total
        # (A)(2) licenses (Tier-1-headquartered consignee) count toward the allocation but are
        # not refused by it, so their draw carries no cap.
        exempt = ctx.hq.tier1
        if after > limit and not exempt:
            ctx.add(
                "lic.alloc_met",
                f"The country allocation is met ({use.used_tpp:,} of {limit:,}); the cited license cannot be counted against it. Verify the license with BIS.",
            )
            opt.quota.append(QuotaUse(use.account, use.used_tpp, limit, False))
            return "license_required", "LICENSE", policy, opt
        cap = None if exempt else limit
        opt.draws.append(Draw(use.account, ctx.tpp_total, cap, ctx.cite("lic.alloc_ok")))
        opt.quota.append(QuotaUse(use.account, after, limit, True))
        ctx.add(
            "lic.counted", f"Licensed TPP counts against {use.account}: {after:,} of {limit:,}."
        )
    return "license_required", "LICENSE", policy, opt


# ---------------------------------------------------------------------------------------
# The controls before the Framework (ear-2024)
# ---------------------------------------------------------------------------------------


def _ear_policy(ctx: Context) -> tuple[ReviewPolicy, Option | None]:
    if ctx.any_tier3:
        ctx.add(
            "ear.lic_denial",
            "License review to Macau/D:5 or for a Macau/D:5-headquartered entity: presumption of denial.",
        )
        return "presumption_of_denial", None
    ctx.add("ear.lic_cbc", "License review for other destinations: case by case.")
    return "case_by_case", None


def _ear2024(ctx: Context, screen: Reason | None) -> Outcome:
    cls = ctx.cls
    o = ctx.order
    if screen is not None:
        ctx.reasons.append(screen)
        return "license_required", "LICENSE", "presumption_of_denial", None
    if cls.level is None:
        ctx.add(
            "ear.none", "No license is required for this item under the controls in force: NLR."
        )
        return "no_license_required", "NLR", None, None
    if ctx.dest.restricted_740_2:
        ctx.add(
            "ear.req",
            f"{cls.eccn} to {o.destination}, in D:1/D:4/D:5 and not A:5/A:6: license required.",
        )
    elif ctx.hq.macau_or_d5:
        ctx.add(
            "ear.req_hq",
            f"{cls.eccn} for an entity headquartered in {o.hq} (Macau or D:5): license required.",
        )
    else:
        ctx.add(
            "ear.nlr",
            f"{cls.eccn} to {o.destination} for an entity not headquartered in Macau/D:5: no license required before the Framework.",
        )
        return "no_license_required", "NLR", None, None
    if o.authorization_kind == "LICENSE":
        return _cited_license(ctx)
    bad_items = _nac_aca_items(ctx)
    requested = o.authorization_kind
    if requested is not None and requested not in ("NAC", "ACA"):
        ctx.add(
            "auth.requested_ineligible",
            f"The order names {o.authorization}, which the controls in force on {ctx.day} do not provide.",
        )
    if bad_items is None:
        if ctx.any_tier3:
            opt = Option("NAC", True)
            days = ctx.rules.number("exceptions.nac_aca.notice_days", ctx.day)
            opt.reasons.append(
                Reason(
                    "ear.nac",
                    ctx.cite("ear.nac"),
                    f"NAC applies (Macau/D:5 or Macau/D:5 headquarters): file the notice at least {days} days before export.",
                )
            )
            opt.obligations.append("NAC_NOTICE_25D")
            return "license_exception", "NAC", None, opt
        if ctx.dest.groups & {"d1", "d4"}:
            opt = Option("ACA", True)
            opt.reasons.append(
                Reason(
                    "ear.aca",
                    ctx.cite("ear.aca"),
                    "ACA applies (D:1/D:4 destination outside Macau/D:5); no notice needed.",
                )
            )
            return "license_exception", "ACA", None, opt
    else:
        ctx.add("ear.nac", f"NAC/ACA not available: {bad_items}")
    policy, _ = _ear_policy(ctx)
    return "license_required", "LICENSE", policy, None


def decide(
    order: Order,
    quota: QuotaView,
    rules: RuleSet,
    *,
    catalog: Catalog | None = None,
    party_screen: PartyScreen | None = None,
) -> Determination:
    """Decide one order. For many orders build one `Engine` and call `Engine.decide`."""
    return Engine(rules, catalog, party_screen).decide(order, quota)
