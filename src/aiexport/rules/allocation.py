"""Which country allocation a license counts against, and its cap on a date.

§ 742.6(b)(10)(iii)(B): BIS totals the TPP of .a-level items *licensed* to each destination,
cumulatively from 2025, against a per-country allocation; (C) raises it for Supp. No. 5 para (b)
destinations. Tier 1 and Macau/D:5 destinations have no allocation. The engine, the ledger's
`license add` and the API's license registry all ask this one function.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from aiexport.errors import ParameterNotFound
from aiexport.rules.countries import Countries, CountryStatus
from aiexport.rules.ruleset import RuleSet


@dataclass(frozen=True, slots=True)
class Allocation:
    """A country's allocation on a date: the ledger account, its cap and where the cap is written."""

    country: str
    limit_tpp: Decimal
    citation: str
    raised_by: Decimal | None = None

    @property
    def account(self) -> str:
        return f"allocation/{self.country}"


def allocation_of(status: CountryStatus, rules: RuleSet, day: dt.date) -> Allocation | None:
    """The allocation of a country (given its status on `day`), or None where none applies.

    Raises `ParameterNotFound` when the rule sets no allocation for `day` (2028 onward).
    """
    if status.tier1 or status.macau_or_d5:
        return None
    limit = rules.number("allocation.country.limit_tpp", day)
    citation = rules.cite("allocation.country.limit_tpp", day)
    raised: Decimal | None = None
    if status.supp5b:
        raised = rules.number("allocation.country.supp5b_increase", day)
        limit = limit * (1 + raised)
        citation += "; " + rules.cite("allocation.country.supp5b_increase", day)
    return Allocation(status.governed_by, limit, citation, raised)


def license_allocation(
    destination: str, day: dt.date, rules: RuleSet, countries: Countries | None = None
) -> Allocation | None:
    """The allocation a license to `destination` granted on `day` counts against, if any."""
    status = (countries or Countries(rules)).status(destination, day)
    return allocation_of(status, rules, day)


__all__ = ["Allocation", "ParameterNotFound", "allocation_of", "license_allocation"]
