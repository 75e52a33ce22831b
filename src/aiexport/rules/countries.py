"""Country groups, Macau, and the rule's three tiers, evaluated on a date.

The rule never says "Tier": Tier 1 is Supp. No. 5 to part 740 para (a); Tier 3 is "Macau or a
destination specified in Country Group D:5"; Tier 2 is every other destination. An order's tier
considers both where the consignee is and where it (or its ultimate parent) is headquartered.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import pycountry

from aiexport.rules.ruleset import RuleSet

GROUPS = ("a5", "a6", "d1", "d4", "d5")


@functools.cache
def is_country_code(code: str) -> bool:
    """True for an ISO 3166-1 alpha-2 code (Kosovo's user-assigned XK included)."""
    return code == "XK" or pycountry.countries.get(alpha_2=code) is not None


@functools.cache
def country_name(code: str) -> str:
    c = pycountry.countries.get(alpha_2=code)
    return str(getattr(c, "common_name", None) or c.name) if c else code


@dataclass(frozen=True, slots=True)
class CountryStatus:
    """What the rule set says about one country on one date."""

    code: str
    governed_by: str
    groups: frozenset[str]
    tier1: bool
    supp5b: bool
    macau_or_d5: bool
    b_level_named: bool = False

    @property
    def tier(self) -> int:
        if self.macau_or_d5:
            return 3
        return 1 if self.tier1 else 2

    @property
    def restricted_740_2(self) -> bool:
        """In D:1, D:4 or D:5 and not also in A:5 or A:6 (§ 740.2(a)(9)(ii), § 742.6(a)(6)(iii)(B))."""
        g = self.groups
        return bool(g & {"d1", "d4", "d5"}) and not (g & {"a5", "a6"})

    @property
    def b_level_scope(self) -> bool:
        """Where .b-level items need a license (§ 742.6(a)(6)(iii)(B) and the CCL's named additions)."""
        return self.restricted_740_2 or self.b_level_named


class Countries:
    """Group membership and tiers of a rule set, cached per (country, date)."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._cache: dict[tuple[str, dt.date], CountryStatus] = {}

    def status(self, code: str, day: dt.date) -> CountryStatus:
        key = (code, day)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        aliases = self.rules.value("countries.aliases", day)
        governed = str(aliases.get(code, code)) if isinstance(aliases, dict) else code
        groups = frozenset(
            g for g in GROUPS if governed in self.rules.members(f"countries.{g}", day)
        )
        macau = governed in self.rules.members("countries.macau", day)
        tier1 = governed in _members_or_empty(self.rules, "countries.tier1", day)
        supp5b = governed in _members_or_empty(self.rules, "countries.supp5b", day)
        b_named = governed in _members_or_empty(self.rules, "countries.b_level_named", day)
        st = CountryStatus(
            code=code,
            governed_by=governed,
            groups=groups,
            tier1=tier1,
            supp5b=supp5b,
            macau_or_d5=macau or "d5" in groups,
            b_level_named=b_named,
        )
        self._cache[key] = st
        return st

    def tier(self, code: str, day: dt.date) -> int:
        return self.status(code, day).tier

    def table(self, day: dt.date) -> list[CountryStatus]:
        """Every country the law files name, plus all ISO codes (Tier 2 by default)."""
        codes = {c.alpha_2 for c in pycountry.countries}
        return [self.status(c, day) for c in sorted(codes)]


def _members_or_empty(rules: RuleSet, name: str, day: dt.date) -> frozenset[str]:
    from aiexport.errors import ParameterNotFound

    try:
        return rules.members(name, day)
    except ParameterNotFound:
        return frozenset()
