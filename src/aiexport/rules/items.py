"""Items: the chip catalog and classification (TPP, performance density, ECCN).

TPP = 2 x MacTOPS x bit length of the operation, the highest over the precisions the IC supports,
dense (Technical Notes to 3A090, IFR pp.117-118). Datasheet TOPS/TFLOPS already count a
multiply-accumulate as 2 operations, so TPP = dense TOPS x bit length. Performance density =
TPP / applicable die area (mm²).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from aiexport.errors import LawError, UnknownItem
from aiexport.rules.determination import Reason
from aiexport.rules.params import read_yaml
from aiexport.rules.ruleset import RuleSet

ItemKind = Literal["ic", "computer", "model_weights"]
ITEM_KINDS: tuple[str, ...] = ("ic", "computer", "model_weights")


def normalise_id(text: str) -> str:
    """Catalog keys are case-insensitive, with spaces, `-` and `_` equivalent.

    >>> normalise_id("h100 sxm5") == normalise_id("H100-SXM5")
    True
    """
    return re.sub(r"[\s_\-]+", "", text.strip().lower())


@dataclass(frozen=True, slots=True)
class CatalogIC:
    item_id: str
    name: str
    vendor: str
    dense_tops: tuple[tuple[int, Decimal], ...]
    die_area_mm2: Decimal | None
    memory_bandwidth_gbps: Decimal | None
    datacenter: bool
    estimated: bool

    @property
    def tpp(self) -> Decimal:
        return tpp_from_tops(dict(self.dense_tops))


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """What an identifier resolves to: an IC, or a computer holding `chips_per_unit` ICs."""

    item_id: str
    kind: ItemKind
    ic: CatalogIC
    chips_per_unit: int


def tpp_from_tops(dense_tops: dict[int, Decimal]) -> Decimal:
    """TPP from dense throughput by bit length: the highest `TOPS x bits`.

    >>> tpp_from_tops({16: Decimal("989.4"), 8: Decimal("1979")})
    Decimal('15832')
    """
    if not dense_tops:
        raise ValueError("no throughput figures")
    return max(Decimal(bits) * tops for bits, tops in dense_tops.items())


class Catalog:
    """The bundled catalog of ICs and systems, looked up by normalised identifier."""

    def __init__(self, path: Path) -> None:
        raw = read_yaml(path)
        self.path = str(path)
        if not isinstance(raw, dict) or set(raw) != {"ics", "computers"}:
            raise LawError(self.path, "catalog needs exactly `ics:` and `computers:`")
        self.ics: dict[str, CatalogIC] = {}
        self._index: dict[str, CatalogItem] = {}
        for cid, body in raw["ics"].items():
            ic = self._ic(str(cid), body)
            self.ics[ic.item_id] = ic
            self._add(str(cid), CatalogItem(ic.item_id, "ic", ic, 1))
            for alias in body.get("aliases") or []:
                self._add(str(alias), CatalogItem(ic.item_id, "ic", ic, 1))
        for cid, body in raw["computers"].items():
            unknown = set(body) - {"name", "ic", "chips_per_unit", "aliases"}
            if unknown:
                raise LawError(self.path, f"unknown keys {sorted(unknown)}", str(cid))
            chip = self.ics.get(str(body["ic"]))
            if chip is None:
                raise LawError(self.path, f"unknown ic {body['ic']!r}", str(cid))
            item = CatalogItem(str(cid), "computer", chip, int(body["chips_per_unit"]))
            self._add(str(cid), item)
            for alias in body.get("aliases") or []:
                self._add(str(alias), item)

    def _ic(self, cid: str, body: Any) -> CatalogIC:
        allowed = {
            "name", "vendor", "year", "dense_tops", "die_area_mm2", "memory_bandwidth_gbps",
            "datacenter", "estimated", "aliases", "source",
        }  # fmt: skip
        unknown = set(body) - allowed
        if unknown:
            raise LawError(self.path, f"unknown keys {sorted(unknown)}", cid)
        tops = {int(b): Decimal(str(v)) for b, v in body["dense_tops"].items()}
        if not tops:
            raise LawError(self.path, "dense_tops is empty", cid)
        area = body.get("die_area_mm2")
        bw = body.get("memory_bandwidth_gbps")
        return CatalogIC(
            item_id=cid,
            name=str(body["name"]),
            vendor=str(body["vendor"]),
            dense_tops=tuple(sorted(tops.items())),
            die_area_mm2=None if area is None else Decimal(str(area)),
            memory_bandwidth_gbps=None if bw is None else Decimal(str(bw)),
            datacenter=bool(body["datacenter"]),
            estimated=bool(body.get("estimated", False)),
        )

    def _add(self, key: str, item: CatalogItem) -> None:
        norm = normalise_id(key)
        if norm in self._index and self._index[norm].item_id != item.item_id:
            raise LawError(self.path, f"identifier {key!r} is ambiguous", key)
        self._index[norm] = item

    def get(self, identifier: str) -> CatalogItem | None:
        return self._index.get(normalise_id(identifier))

    def lookup(self, identifier: str) -> CatalogItem:
        item = self.get(identifier)
        if item is None:
            raise UnknownItem(
                f"item {identifier!r} is not in the catalog; give `tpp_per_unit` (and "
                "`die_area_mm2`) for it, or run `aiexport classify --list` to see identifiers"
            )
        return item

    def identifiers(self) -> list[str]:
        return sorted({i.item_id for i in self._index.values()})


@functools.cache
def default_catalog() -> Catalog:
    return Catalog(Path(str(resources.files("aiexport") / "data" / "catalog.yaml")))


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """Everything classification needs about one order line's item."""

    item_id: str | None
    kind: ItemKind
    tpp_per_ic: Decimal
    die_area_mm2: Decimal | None
    datacenter: bool
    chips_per_unit: int
    memory_bandwidth_gbps: Decimal | None = None
    training_ops: Decimal | None = None
    open_weights: bool = False
    derived_from_published: bool = False
    additional_training_ops: Decimal | None = None
    less_capable_than_open: bool = False


@dataclass(frozen=True, slots=True)
class Classification:
    """The item's ECCN and the figures that decide it."""

    eccn: str
    level: Literal["a", "b"] | None
    tpp_per_ic: Decimal
    performance_density: Decimal | None
    reasons: tuple[Reason, ...]
    subject_to_ear: bool = True

    @property
    def is_3a090_family(self) -> bool:
        return self.level is not None


def _pd(tpp: Decimal, area: Decimal | None) -> Decimal | None:
    if area is None or area <= 0:
        return None
    return tpp / area


def classify_ic_level(
    spec: ItemSpec, rules: RuleSet, day: dt.date
) -> tuple[Literal["a", "b"] | None, Decimal | None, list[Reason]]:
    """Which paragraph of 3A090 the IC meets (a, b or none), with the reasons."""
    cite = rules.citations
    tpp = spec.tpp_per_ic
    pd = _pd(tpp, spec.die_area_mm2)
    n = functools.partial(rules.number, day=day)
    reasons: list[Reason] = []
    pd_text = "unknown (no die area)" if pd is None else f"{pd:.2f}"
    reasons.append(
        Reason(
            "item.tpp",
            cite("item.tpp"),
            f"TPP per IC {_fmt(tpp)} (2 x MacTOPS x bit length, dense, highest over precisions); "
            f"performance density {pd_text}.",
        )
    )
    if not spec.datacenter and tpp < n("items.3a090.note1_tpp"):
        reasons.append(
            Reason(
                "item.note1",
                rules.cite("items.3a090.note1_tpp", day),
                f"Not designed or marketed for datacenters and TPP {_fmt(tpp)} < "
                f"{_fmt(n('items.3a090.note1_tpp'))}: outside 3A090.a and .b (Note 1).",
            )
        )
        return None, pd, reasons
    if tpp >= n("items.3a090.a1_tpp"):
        reasons.append(
            Reason(
                "item.3a090a1",
                rules.cite("items.3a090.a1_tpp", day),
                f"TPP {_fmt(tpp)} >= {_fmt(n('items.3a090.a1_tpp'))}: 3A090.a.1.",
            )
        )
        return "a", pd, reasons
    if pd is None and tpp >= n("items.3a090.b2_tpp"):
        raise UnknownItem(
            f"TPP {_fmt(tpp)} lies where performance density decides between 3A090.a, .b and "
            "no control; give `die_area_mm2` for this item",
            column="die_area_mm2",
        )
    if pd is not None and tpp >= n("items.3a090.a2_tpp") and pd >= n("items.3a090.a2_pd"):
        reasons.append(
            Reason(
                "item.3a090a2",
                rules.cite("items.3a090.a2_pd", day),
                f"TPP {_fmt(tpp)} >= {_fmt(n('items.3a090.a2_tpp'))} and PD {pd:.2f} >= "
                f"{_fmt(n('items.3a090.a2_pd'))}: 3A090.a.2.",
            )
        )
        return "a", pd, reasons
    if (
        pd is not None
        and n("items.3a090.b1_tpp_min") <= tpp < n("items.3a090.b1_tpp_max")
        and n("items.3a090.b1_pd_min") <= pd < n("items.3a090.b1_pd_max")
    ):
        reasons.append(
            Reason(
                "item.3a090b1",
                rules.cite("items.3a090.b1_tpp_min", day),
                f"TPP {_fmt(tpp)} in [2400, 4800) and PD {pd:.2f} in [1.6, 5.92): 3A090.b.1.",
            )
        )
        return "b", pd, reasons
    if (
        pd is not None
        and tpp >= n("items.3a090.b2_tpp")
        and n("items.3a090.b2_pd_min") <= pd < n("items.3a090.b2_pd_max")
    ):
        reasons.append(
            Reason(
                "item.3a090b2",
                rules.cite("items.3a090.b2_pd_min", day),
                f"TPP {_fmt(tpp)} >= 1600 and PD {pd:.2f} in [3.2, 5.92): 3A090.b.2.",
            )
        )
        return "b", pd, reasons
    reasons.append(
        Reason(
            "item.below",
            rules.cite("items.3a090.b2_tpp", day),
            "Below the 3A090.a and .b parameters: not 3A090 (another ECCN, e.g. 3A991 or "
            "5A992, may apply; decided here as EAR99).",
        )
    )
    return None, pd, reasons


def classify(spec: ItemSpec, rules: RuleSet, day: dt.date, regime: str) -> Classification:
    """Classify one item on `day` under `regime` (`diffusion` or `ear-2024`)."""
    cite = rules.citations
    if spec.kind == "model_weights":
        return _classify_weights(spec, rules, day, regime)
    level, pd, reasons = classify_ic_level(spec, rules, day)
    if level is None:
        return Classification("EAR99", None, spec.tpp_per_ic, pd, tuple(reasons))
    if spec.kind == "computer":
        reasons.append(
            Reason(
                "item.4a090",
                cite(f"item.4a090{level}"),
                f"A computer, assembly or component with {spec.chips_per_unit} IC(s) meeting "
                f"3A090.{level}: 4A090.{level}.",
            )
        )
        return Classification(f"4A090.{level}", level, spec.tpp_per_ic, pd, tuple(reasons))
    return Classification(f"3A090.{level}", level, spec.tpp_per_ic, pd, tuple(reasons))


def _classify_weights(spec: ItemSpec, rules: RuleSet, day: dt.date, regime: str) -> Classification:
    cite = rules.citations
    ops = spec.training_ops
    zero = Decimal(0)
    if regime != "diffusion":
        text = "ECCN 4E091 did not exist under the controls in force on this date: EAR99."
        return Classification(
            "EAR99", None, zero, None, (Reason("item.4e091_absent", cite("regime.ear2024"), text),)
        )
    threshold = rules.number("items.4e091.training_ops", day)
    heading = rules.cite("items.4e091.training_ops", day)
    if ops is None:
        raise UnknownItem(
            "model weights need `training_ops` (total training operations)", column="training_ops"
        )
    if ops < threshold:
        text = f"Trained with {ops:.3E} operations < {threshold:.1E}: not 4E091 (EAR99)."
        return Classification(
            "EAR99", None, zero, None, (Reason("item.4e091_below", heading, text),)
        )
    if spec.open_weights:
        text = (
            "The weights are published (§ 734.7(a)): not subject to the EAR, and 4E091 Note 1 "
            "excludes them (reported as EAR99)."
        )
        return Classification(
            "EAR99",
            None,
            zero,
            None,
            (Reason("item.4e091_published", cite("item.4e091_note1"), text),),
            False,
        )
    if spec.derived_from_published:
        extra = spec.additional_training_ops or zero
        floor = max(
            rules.number("items.4e091.derived_additional_ops", day),
            rules.number("items.4e091.derived_additional_share", day) * ops,
        )
        if extra <= floor:
            text = (
                f"Derived from published weights with {extra:.3E} additional operations, not "
                f"more than {floor:.3E} (the higher of 2.5E+25 and 25% of training): not "
                "controlled (4E091 Note 1; EAR99)."
            )
            return Classification(
                "EAR99",
                None,
                zero,
                None,
                (Reason("item.4e091_derived", cite("item.4e091_note1"), text),),
            )
    if spec.less_capable_than_open:
        text = (
            "Trained with fewer operations than needed to match the most advanced published "
            "model (the order states the Note 2 determination): not 4E091 (EAR99)."
        )
        return Classification(
            "EAR99", None, zero, None, (Reason("item.4e091_note2", cite("item.4e091_note2"), text),)
        )
    text = f"Weights of a model trained with {ops:.3E} operations >= {threshold:.1E}: 4E091."
    return Classification("4E091", None, zero, None, (Reason("item.4e091", heading, text),))


def _fmt(value: Decimal) -> str:
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value:,.2f}"
