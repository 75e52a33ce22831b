"""Quota state as the decision engine sees it.

The engine reads balances and registries through `QuotaView` and returns `Draw`s; it never
writes. `MemoryQuota` is the in-process implementation used by `screen` without `--commit` and by
tests; the ledger (`aiexport.ledger`) implements the same protocol over SQL.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from aiexport.rules.determination import Draw

VeuKind = Literal["UVEU", "NVEU"]


@dataclass(frozen=True, slots=True)
class LicenseInfo:
    """An individual license already granted by BIS and registered with us."""

    license_id: str
    destination: str
    consignee: str | None
    tpp: Decimal
    valid_from: dt.date
    valid_until: dt.date

    def to_record(self) -> dict[str, Any]:
        """JSON-ready; the TPP as an exact decimal string."""
        return {
            "license_id": self.license_id,
            "destination": self.destination,
            "consignee": self.consignee,
            "tpp": str(self.tpp),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class VeuInfo:
    """A Data Center Validated End-User authorization (§ 748.15)."""

    veu_id: str
    kind: VeuKind
    holder: str
    hq_country: str
    countries: frozenset[str]
    valid_from: dt.date
    valid_until: dt.date | None = None
    holder_name: str | None = None

    def to_record(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "veu_id": self.veu_id,
            "kind": self.kind,
            "holder": self.holder,
            "holder_name": self.holder_name,
            "hq_country": self.hq_country,
            "countries": sorted(self.countries),
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


@runtime_checkable
class QuotaView(Protocol):
    """Read access to balances and registries."""

    def used(self, account: str) -> Decimal:
        """TPP currently drawn from `account` (committed plus live reservations)."""
        ...

    def license(self, license_id: str) -> LicenseInfo | None: ...

    def veu(self, veu_id: str) -> VeuInfo | None: ...

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]: ...


@dataclass
class MemoryQuota:
    """Quota state in memory: balances per account plus license and VEU registries."""

    balances: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    licenses: dict[str, LicenseInfo] = field(default_factory=dict)
    veus: dict[str, VeuInfo] = field(default_factory=dict)

    def used(self, account: str) -> Decimal:
        return self.balances.get(account, Decimal(0))

    def license(self, license_id: str) -> LicenseInfo | None:
        return self.licenses.get(license_id)

    def veu(self, veu_id: str) -> VeuInfo | None:
        return self.veus.get(veu_id)

    def veus_for(self, consignee: str) -> Sequence[VeuInfo]:
        return [v for v in self.veus.values() if v.holder == consignee]

    def apply(self, draws: Iterable[Draw]) -> None:
        """Record draws that the engine has already checked against their limits."""
        for d in draws:
            self.balances[d.account] = self.balances.get(d.account, Decimal(0)) + d.amount
