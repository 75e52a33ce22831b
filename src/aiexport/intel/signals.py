"""Risk signals (contract §3 codes) and how they combine into a case score.

Each signal is computed from the data of one resolved party (a cluster of linked consignees)
and carries a strength in [0, 1] and a sentence saying why it fired. The case score is a
noisy-OR of `WEIGHTS[code] × strength`: any one strong signal can make a case, several weak
ones add up, and no count of weak ones reaches the score of a strong one. The weights were set
on generated worlds of tuning seeds (`bench/detect.py --tune`) and are checked on other seeds.

Sources for each signal are in `../shared/research/enforcement.md` §2 (S01-S14) and the BIS
red flags (Supp. No. 3 to part 732; the 13 May 2025 guidance on advanced computing ICs).
"""

from __future__ import annotations

from dataclasses import dataclass

STRUCTURING = "STRUCTURING"
SHARED_IDENTIFIERS = "SHARED_IDENTIFIERS"
TRANSSHIPMENT_HUB = "TRANSSHIPMENT_HUB"
FORWARDER_CONSIGNEE = "FORWARDER_CONSIGNEE"
NEW_ENTITY_LARGE_ORDER = "NEW_ENTITY_LARGE_ORDER"
PAYER_MISMATCH = "PAYER_MISMATCH"
UNDERVALUED = "UNDERVALUED"
PRE_DEADLINE_SURGE = "PRE_DEADLINE_SURGE"
RESTRICTED_PARTY_MATCH = "RESTRICTED_PARTY_MATCH"
HQ_IN_TIER3 = "HQ_IN_TIER3"
LINE_OF_BUSINESS_MISMATCH = "LINE_OF_BUSINESS_MISMATCH"

WEIGHTS: dict[str, float] = {
    STRUCTURING: 0.92,
    RESTRICTED_PARTY_MATCH: 0.9,
    HQ_IN_TIER3: 0.85,
    PRE_DEADLINE_SURGE: 0.75,
    LINE_OF_BUSINESS_MISMATCH: 0.6,
    PAYER_MISMATCH: 0.4,
    TRANSSHIPMENT_HUB: 0.35,
    FORWARDER_CONSIGNEE: 0.35,
    NEW_ENTITY_LARGE_ORDER: 0.35,
    UNDERVALUED: 0.3,
    SHARED_IDENTIFIERS: 0.2,
}
"""How much one signal at full strength moves a case toward 1."""

# Hubs named in transshipment cases and BIS/FinCEN guidance (enforcement.md T5, T7, S07).
TRANSSHIPMENT_HUBS: frozenset[str] = frozenset(
    {"SG", "MY", "TH", "VN", "ID", "AE", "HK", "TW", "PH", "KZ", "AM", "GE", "KG", "TR"}
)
# Name words of businesses whose line does not fit datacenter GPUs (S04: "Janford Realtor").
OFF_PROFILE_WORDS: frozenset[str] = frozenset(
    [
        "realtor",
        "realty",
        "realestate",
        "estate",
        "property",
        "properties",
        "beauty",
        "cosmetics",
        "cosmetic",
        "salon",
        "tea",
        "teas",
        "apparel",
        "garment",
        "garments",
        "fashion",
        "textile",
        "textiles",
        "food",
        "foods",
        "restaurant",
        "catering",
        "bakery",
        "travel",
        "tours",
        "tourism",
        "toys",
        "toy",
        "furniture",
        "jewelry",
        "jewellery",
        "florist",
        "flowers",
        "seafood",
        "fisheries",
        "agriculture",
        "agricultural",
        "appliance",
        "appliances",
        "printing",
        "agro",
        "farm",
        "farms",
        "poultry",
        "dairy",
        "footwear",
        "shoes",
        "tailoring",
        "laundry",
        "spa",
        "dental",
        "clinic",
        "pharmacy",
        "bookstore",
        "stationery",
        "petroleum",
        "mining",
        "cement",
        "tobacco",
        "winery",
    ]
)
# Words of a forwarder's or logistics firm's name (S06: a freight forwarder as consignee).
FORWARDER_WORDS: frozenset[str] = frozenset(
    [
        "logistics",
        "logistic",
        "freight",
        "forwarding",
        "forwarder",
        "forwarders",
        "shipping",
        "cargo",
        "express",
        "courier",
        "transport",
        "transportation",
        "warehousing",
        "warehouse",
        "3pl",
        "supplychain",
    ]
)
# International calling codes of Macau and D:5 countries most seen in diversion cases.
TIER3_CALLING_CODES: dict[str, str] = {
    "86": "CN",
    "852": "HK",
    "853": "MO",
    "7": "RU",
    "98": "IR",
    "850": "KP",
    "375": "BY",
    "963": "SY",
    "53": "CU",
    "58": "VE",
    "95": "MM",
}
TIER3_TLDS: frozenset[str] = frozenset({"cn", "hk", "mo", "ru", "ir", "by"})

NEW_ENTITY_DAYS = 365
LARGE_ORDER_ICS = 64
LARGE_ORDER_USD = 1_000_000
UNDERVALUED_SHARE = 0.5
SURGE_WINDOW_DAYS = 90
SURGE_FACTOR = 4.0
SURGE_MIN_ORDERS = 5
MIN_CASE_SCORE = 0.3


@dataclass(frozen=True)
class Signal:
    """One signal that fired for a case: its code, strength, and why."""

    code: str
    strength: float
    why: str

    @property
    def contribution(self) -> float:
        return WEIGHTS.get(self.code, 0.3) * max(0.0, min(1.0, self.strength))


def combine(signals: list[Signal]) -> float:
    """Noisy-OR of the signals' contributions."""
    miss = 1.0
    for s in signals:
        miss *= 1.0 - s.contribution
    return 1.0 - miss
