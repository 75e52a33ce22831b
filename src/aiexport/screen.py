"""Screening a file of orders: decide every line in (order_date, input position) order, carrying
the quota state, and summarise.

This is the per-order path: one `Engine.decide` call per line. `aiexport.batch` gives the same
decisions for large files with vectorised parsing and classification.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from aiexport.errors import OrderError
from aiexport.rules.decide import Engine
from aiexport.rules.determination import Determination, Draw
from aiexport.rules.orders import Order
from aiexport.rules.quota import MemoryQuota, QuotaView


class QuotaState(QuotaView, Protocol):
    """A quota view that also records the draws of each decided order."""

    def apply(self, draws: Sequence[Draw]) -> None: ...


@dataclass
class Summary:
    """Counts by status, authority and tier; TPP by tier."""

    orders: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_authority: Counter[str] = field(default_factory=Counter)
    by_tier: Counter[int] = field(default_factory=Counter)
    tpp_by_tier: dict[int, Decimal] = field(default_factory=dict)
    warnings: int = 0
    rule_set: str = ""

    def add(self, d: Determination) -> None:
        self.orders += 1
        self.by_status[d.status] += 1
        self.by_authority[d.authority] += 1
        self.by_tier[d.destination_tier] += 1
        self.tpp_by_tier[d.destination_tier] = (
            self.tpp_by_tier.get(d.destination_tier, Decimal(0)) + d.tpp_total
        )
        self.warnings += len(d.warnings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "rule_set": self.rule_set,
            "by_status": dict(sorted(self.by_status.items())),
            "by_authority": dict(sorted(self.by_authority.items())),
            "by_tier": {str(k): v for k, v in sorted(self.by_tier.items())},
            "tpp_by_tier": {
                str(k): int(v) if v == v.to_integral_value() else float(v)
                for k, v in sorted(self.tpp_by_tier.items())
            },
            "warnings": self.warnings,
        }


def processing_order(orders: Sequence[Order]) -> list[int]:
    """Indices of `orders` in decision order: by order_date, then input position."""
    return sorted(range(len(orders)), key=lambda i: (orders[i].order_date, orders[i].position))


def decide_all(
    orders: Sequence[Order],
    engine: Engine,
    quota: QuotaState | None = None,
    *,
    file: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Determination]:
    """Decide every order, carrying quota state; results come back in input order."""
    state: QuotaState = quota if quota is not None else MemoryQuota()
    results: list[Determination | None] = [None] * len(orders)
    for n, i in enumerate(processing_order(orders), start=1):
        order = orders[i]
        try:
            det = engine.decide(order, state)
        except OrderError as exc:
            raise OrderError(exc.detail, file=file, line=order.line, column=exc.column) from None
        if det.draws:
            state.apply(det.draws)
        results[i] = det
        if progress is not None and n % 1000 == 0:
            progress(1000)
    if progress is not None:
        progress(len(orders) % 1000)
    return [r for r in results if r is not None]


def summarise(determinations: Sequence[Determination], rule_set: str) -> Summary:
    s = Summary(rule_set=rule_set)
    for d in determinations:
        s.add(d)
    return s
