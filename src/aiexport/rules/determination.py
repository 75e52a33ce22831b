"""What a decision is: the `Determination` and its parts.

Internal records are frozen dataclasses; the API and file writers turn them into the contract's
shape (`../shared/contracts/orders.md` §2) with `Determination.to_record()`. Two shapes exist on
purpose: the dataclass is cheap to build a million times, the record is what outsiders read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Status = Literal["no_license_required", "license_exception", "license_required"]
Authority = Literal["NLR", "AIA", "ACM", "LPP", "ACA", "NAC", "UVEU", "NVEU", "LICENSE"]
ReviewPolicy = Literal[
    "presumption_of_approval", "case_by_case", "presumption_of_denial", "policy_of_denial"
]

AUTHORITIES: tuple[str, ...] = ("NLR", "AIA", "ACM", "LPP", "ACA", "NAC", "UVEU", "NVEU", "LICENSE")
STATUSES: tuple[str, ...] = ("no_license_required", "license_exception", "license_required")


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of a decision: which rule, where it is written, what it found."""

    rule: str
    citation: str
    text: str

    def to_record(self) -> dict[str, str]:
        return {"rule": self.rule, "citation": self.citation, "text": self.text}


@dataclass(frozen=True, slots=True)
class Draw:
    """An amount of TPP that an order takes from one capped account.

    The ledger knows accounts and amounts, not rules: everything it must enforce travels here.
    `limit` is the cap in force for this draw (from the law files, never from code); `None` means
    the account only tracks a running total (e.g. AIA's certification threshold). `max_share` with
    `share_of` caps the account's balance at a share of another account's balance after the draw
    (UVEU geographic allocations, Supp. No. 10 to part 748 para 6).

    Account names: `lpp/<consignee>/<year>`, `allocation/<CC>`, `license/<id>`,
    `nveu/<veu>/<CC>`, `uveu/<veu>/total`, `uveu/<veu>/outside-tier1`, `uveu/<veu>/country/<CC>`,
    `uveu/<veu>/outside-US`, `aia/<consignee>`.
    """

    account: str
    amount: Decimal
    limit: Decimal | None
    citation: str
    max_share: Decimal | None = None
    share_of: str | None = None

    def to_record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "account": self.account,
            "amount": _num(self.amount),
            "limit": None if self.limit is None else _num(self.limit),
            "citation": self.citation,
        }
        if self.max_share is not None:
            rec["max_share"] = _num(self.max_share)
            rec["share_of"] = self.share_of
        return rec


@dataclass(frozen=True, slots=True)
class QuotaUse:
    """The contract's `quota` object: what the order draws on and what is then left."""

    account: str
    used_tpp: Decimal
    limit_tpp: Decimal | None
    draws: bool

    def to_record(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "used_tpp": _num(self.used_tpp),
            "limit_tpp": None if self.limit_tpp is None else _num(self.limit_tpp),
            "remaining_tpp": None
            if self.limit_tpp is None
            else _num(max(self.limit_tpp - self.used_tpp, Decimal(0))),
            "draws": self.draws,
        }


@dataclass(frozen=True, slots=True)
class Determination:
    """The decision on one order line, with every step that produced it."""

    order_id: str
    eccn: str
    tpp_total: Decimal
    h100_equivalents: Decimal
    destination_tier: int
    status: Status
    authority: Authority
    review_policy: ReviewPolicy | None
    obligations: tuple[str, ...]
    quota: tuple[QuotaUse, ...]
    reasons: tuple[Reason, ...]
    rule_set: str
    draws: tuple[Draw, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())

    def to_record(self) -> dict[str, Any]:
        """The contract §2 record (JSON-ready)."""
        quota: dict[str, Any] | None
        if not self.quota:
            quota = None
        elif len(self.quota) == 1:
            quota = self.quota[0].to_record()
        else:
            first = self.quota[0].to_record()
            quota = {**first, "accounts": [q.to_record() for q in self.quota]}
        return {
            "order_id": self.order_id,
            "eccn": self.eccn,
            "tpp_total": _num(self.tpp_total),
            "h100_equivalents": float(round(self.h100_equivalents, 4)),
            "destination_tier": self.destination_tier,
            "status": self.status,
            "authority": self.authority,
            "review_policy": self.review_policy,
            "obligations": list(self.obligations),
            "quota": quota,
            "reasons": [r.to_record() for r in self.reasons],
            "rule_set": self.rule_set,
        }


def _num(value: Decimal) -> int | float:
    """A JSON number for an exact Decimal: an int when integral, else a float."""
    if value == value.to_integral_value():
        return int(value)
    return float(value)
