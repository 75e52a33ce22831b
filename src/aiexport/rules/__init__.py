"""The rule as code: law parameters, items, tiers and the decision engine."""

from aiexport.rules.countries import Countries, CountryStatus
from aiexport.rules.decide import Engine, decide
from aiexport.rules.determination import Determination, Draw, QuotaUse, Reason
from aiexport.rules.items import Catalog, Classification, ItemSpec, classify, default_catalog
from aiexport.rules.orders import Order, consignee_key
from aiexport.rules.quota import LicenseInfo, MemoryQuota, QuotaView, VeuInfo
from aiexport.rules.ruleset import DEFAULT_RULE_SET, RuleSet, available_rule_sets, load_rule_set

__all__ = [
    "DEFAULT_RULE_SET",
    "Catalog",
    "Classification",
    "Countries",
    "CountryStatus",
    "Determination",
    "Draw",
    "Engine",
    "ItemSpec",
    "LicenseInfo",
    "MemoryQuota",
    "Order",
    "QuotaUse",
    "QuotaView",
    "Reason",
    "RuleSet",
    "VeuInfo",
    "available_rule_sets",
    "classify",
    "consignee_key",
    "decide",
    "default_catalog",
    "load_rule_set",
]
