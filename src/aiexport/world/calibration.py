"""The public facts the synthetic world is calibrated on, each with its source.

This module is data, not logic: every number the generator draws from lives here, next to where it
comes from. Confidence marks follow `../shared/research/enforcement.md`: **[V]** seen in a source
excerpt, **[R]** from memory or a secondary summary, **[M]** a modelling choice (no public figure
exists; the value is picked to be plausible and is stated so nobody mistakes it for a fact).

Real export records are not public, so shares of *orders* by chip and by destination cannot be
measured; they are modelling choices anchored on the revenue, shipment and price facts cited
beside them. The tests check that the generated background reproduces these targets, so changing a
number here changes the world and its tests together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

# --- dates ------------------------------------------------------------------------------------

WORLD_START = dt.date(2024, 10, 1)
"""[M] First order date: three months before the rule's effective date, so `ear-2024` is exercised."""

WORLD_END = dt.date(2026, 12, 31)
"""[M] Last order date: the end of the rule's second full calendar year."""

EFFECTIVE_DATE = dt.date(2025, 1, 13)
"""[V] AI Diffusion IFR effective date (90 FR 4544; rule-facts.md §6)."""

COMPLIANCE_DATE = dt.date(2025, 5, 15)
"""[V] Compliance date, 120 days after publication (IFR p.1; rule-facts.md §6)."""

H20_LICENSE_DATE = dt.date(2025, 4, 15)
"""[V] NVIDIA 8-K of 15 Apr 2025: H20 needs a license for China and D:5 (chips-notes.md)."""

LPP_ANNUAL_LIMIT_TPP_FALLBACK = 26_900_000
"""[V] § 740.29: 26,900,000 cumulative TPP per ultimate consignee per calendar year (rule-facts §3).

Read from the law files (`exceptions.lpp.annual_limit_tpp`) when `aiexport.rules` provides them;
this copy is only the fallback for when the rule set cannot be loaded."""

ANNUAL_GROWTH = 0.55
"""[R] Order volume grows ~55 %/year, compounding daily. NVIDIA data-center revenue went from
$47.5B (FY2024) to $115.2B (FY2025) (NVIDIA 10-K FY2025); later years grew more slowly, so the
world uses a milder rate."""

WEEKEND_FACTOR = 0.08
"""[M] Weekend days get 8 % of a weekday's orders (export paperwork is dated on business days)."""

# --- items ------------------------------------------------------------------------------------

FormFactor = Literal["sxm", "pcie", "consumer"]


@dataclass(frozen=True, slots=True)
class ItemFact:
    """One chip as the world trades it.

    `tpp` is the per-IC TPP from `chips.csv` (dense peak x bit length); `lpp_eligible` marks
    3A090.a-level parts designed for datacenters, the only items License Exception LPP counts
    (§ 740.29(b)). `weight` is the relative share of background orders among the parts on sale
    on a date ([M], anchored on the notes in `source`). `server_gpus` is the GPU count of the
    usual server (0 = sold as cards only).
    """

    item: str
    vendor: str
    tpp: int
    price_usd: float
    launch: dt.date
    weight: float
    form: FormFactor
    server_gpus: int
    lpp_eligible: bool
    china_sku: bool = False
    decline_per_year: float = 0.10
    source: str = ""


_CHIPS = "chips.csv (Epoch AI ML Hardware DB; vendor datasheets)"
ITEMS: tuple[ItemFact, ...] = (
    ItemFact(
        "H100-SXM5",
        "NVIDIA",
        15_832,
        27_000,
        dt.date(2022, 9, 20),
        16.0,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; price $25k-$40k [R] (stratrix.com pricing lens; "
        "aiinframap.com 'H100 ~= $30,000')",
    ),
    ItemFact(
        "H100-PCIe",
        "NVIDIA",
        12_104,
        24_000,
        dt.date(2022, 9, 20),
        5.0,
        "pcie",
        0,
        True,
        source=f"TPP {_CHIPS}; price [R] trade press",
    ),
    ItemFact(
        "H200",
        "NVIDIA",
        15_832,
        32_000,
        dt.date(2024, 8, 1),
        12.0,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; price ~$35k [R] (aiinframap.com)",
    ),
    ItemFact(
        "B200",
        "NVIDIA",
        36_000,
        38_000,
        dt.date(2025, 1, 15),
        11.0,
        "sxm",
        8,
        True,
        decline_per_year=0.05,
        source=f"TPP {_CHIPS}; price $30k-$40k [R] (J. Huang, CNBC Mar 2024; aiinframap.com)",
    ),
    ItemFact(
        "B100",
        "NVIDIA",
        28_000,
        30_000,
        dt.date(2025, 1, 15),
        2.0,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; price [M] below B200",
    ),
    ItemFact(
        "GB200",
        "NVIDIA",
        40_000,
        43_000,
        dt.date(2025, 3, 1),
        4.0,
        "sxm",
        72,
        True,
        decline_per_year=0.05,
        source=f"TPP {_CHIPS}; NVL72 rack ~$3.1M / 72 GPUs [R] (SemiAnalysis via fetchlogic.net)",
    ),
    ItemFact(
        "A100-SXM4",
        "NVIDIA",
        4_992,
        11_000,
        dt.date(2020, 5, 14),
        4.0,
        "sxm",
        8,
        True,
        decline_per_year=0.25,
        source=f"TPP {_CHIPS}; price [R] secondary market 2024",
    ),
    ItemFact(
        "L40S",
        "NVIDIA",
        5_864,
        8_500,
        dt.date(2023, 8, 8),
        9.0,
        "pcie",
        0,
        True,
        source=f"TPP {_CHIPS}; price [R] distributor listings",
    ),
    ItemFact(
        "L40",
        "NVIDIA",
        2_896,
        7_000,
        dt.date(2022, 10, 13),
        2.0,
        "pcie",
        0,
        False,
        source=f"TPP {_CHIPS} (3A090.b); price [R]",
    ),
    ItemFact(
        "L4",
        "NVIDIA",
        1_940,
        2_500,
        dt.date(2023, 3, 21),
        8.0,
        "pcie",
        0,
        True,
        source=f"TPP {_CHIPS} (3A090.a.2: PD 6.6); price [R]",
    ),
    ItemFact(
        "RTX-4090",
        "NVIDIA",
        5_285,
        1_800,
        dt.date(2022, 10, 12),
        4.0,
        "consumer",
        0,
        False,
        decline_per_year=0.15,
        source=f"TPP {_CHIPS}; MSRP $1,599 [V] NVIDIA; street price higher [R]",
    ),
    ItemFact(
        "RTX-5090",
        "NVIDIA",
        6_704,
        2_300,
        dt.date(2025, 1, 30),
        3.0,
        "consumer",
        0,
        False,
        source=f"TPP {_CHIPS}; MSRP $1,999 [V] NVIDIA; street price higher [R]",
    ),
    ItemFact(
        "MI300X",
        "AMD",
        20_919,
        15_000,
        dt.date(2023, 12, 6),
        5.0,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; price $10k-$15k [R] (Citi estimate, press)",
    ),
    ItemFact(
        "MI325X",
        "AMD",
        20_919,
        20_000,
        dt.date(2024, 10, 10),
        2.5,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; price [M] above MI300X",
    ),
    ItemFact(
        "MI250X",
        "AMD",
        6_128,
        9_000,
        dt.date(2021, 11, 8),
        1.0,
        "sxm",
        8,
        True,
        decline_per_year=0.25,
        source=f"TPP {_CHIPS}; price [R]",
    ),
    ItemFact(
        "Gaudi2",
        "Intel",
        6_920,
        8_100,
        dt.date(2022, 5, 10),
        1.5,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; 8-card kit $65k [R] (Intel, Computex 2024)",
    ),
    ItemFact(
        "Gaudi3",
        "Intel",
        29_360,
        15_600,
        dt.date(2024, 9, 24),
        1.5,
        "sxm",
        8,
        True,
        source=f"TPP {_CHIPS}; 8-card kit $125k [R] (Intel, Computex 2024)",
    ),
    # China SKUs: sold to China and Hong Kong only (below the 3A090 thresholds, or NAC parts).
    ItemFact(
        "H20",
        "NVIDIA",
        2_368,
        12_000,
        dt.date(2024, 2, 1),
        40.0,
        "sxm",
        8,
        False,
        china_sku=True,
        source=f"TPP {_CHIPS}; ~1M H20 (>$12B) ordered before Apr 2025 [V] "
        "(enforcement.md T12) -> ~$12k each",
    ),
    ItemFact(
        "L20",
        "NVIDIA",
        1_912,
        5_000,
        dt.date(2023, 11, 16),
        25.0,
        "pcie",
        0,
        False,
        china_sku=True,
        source=f"TPP {_CHIPS}; price [R]",
    ),
    ItemFact(
        "L2",
        "NVIDIA",
        1_544,
        2_500,
        dt.date(2023, 11, 16),
        10.0,
        "pcie",
        0,
        False,
        china_sku=True,
        source=f"TPP {_CHIPS}; price [R]",
    ),
    ItemFact(
        "RTX-4090D",
        "NVIDIA",
        4_707,
        1_900,
        dt.date(2023, 12, 28),
        25.0,
        "consumer",
        0,
        False,
        china_sku=True,
        decline_per_year=0.15,
        source=f"TPP {_CHIPS}; China MSRP CNY 12,999 [R]",
    ),
)
"""Background chip mix. H800 and A800 are in the contract's catalog but have been unlawful to ship
to China since 17 Nov 2023 and were never sold elsewhere, so the background does not trade them."""

ITEM_BY_ID: dict[str, ItemFact] = {f.item: f for f in ITEMS}

SERVER_SHARE_SXM = 0.7
"""[R] Share of SXM/OAM-part orders shipped as 8-GPU servers (HGX/DGX/OAM platforms) rather than
as modules: SXM parts are sold almost only inside baseboards (NVIDIA 10-K: 'systems, subsystems or
modules'). The rest appear as module-level orders (e.g. baseboards counted per GPU)."""

SERVER_PRICE_FACTOR = 1.30
"""[R] An 8-GPU server costs ~1.3 x its GPUs (HGX H100 servers ~$300k-$350k with 8 x ~$27k GPUs)."""

PRICE_NOISE_SD = 0.08
"""[M] Log-normal noise on negotiated prices (sd of log price)."""

VOLUME_DISCOUNT_PER_DECADE = 0.04
"""[M] 4 % off per tenfold increase in GPUs on the order line."""

# --- destinations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CountryFact:
    """A destination as the world uses it.

    `tier` follows rule-facts.md §1 (Tier 1 = Supp. 5 para (a); Tier 3 = D:5 + Macau; Tier 2 =
    the rest). `lpp_restricted` marks § 740.2(a)(9)(ii) destinations (D:1, D:4 or D:5, excluding
    A:5/A:6), where LPP cannot be used, from `country-groups.csv`. `weight` is the share of
    background orders ([M], anchored on NVIDIA's billing geography and public data-center build-out).
    `hub` marks trans-shipment and billing hubs named in enforcement.md (S07).
    """

    code: str
    name: str
    tier: int
    lpp_restricted: bool
    weight: float
    hub: bool = False


COUNTRIES: tuple[CountryFact, ...] = (
    # Tier 1 (Supp. 5 para (a), rule-facts §1a). The US is Tier 1 but is not an export destination.
    CountryFact("JP", "Japan", 1, False, 8.0),
    CountryFact("KR", "Republic of Korea", 1, False, 6.0),
    CountryFact("TW", "Taiwan", 1, False, 7.0, hub=True),
    CountryFact("GB", "United Kingdom", 1, False, 7.0),
    CountryFact("DE", "Germany", 1, False, 6.0),
    CountryFact("FR", "France", 1, False, 5.0),
    CountryFact("NL", "Netherlands", 1, False, 4.0),
    CountryFact("CA", "Canada", 1, False, 4.0),
    CountryFact("AU", "Australia", 1, False, 3.0),
    CountryFact("IE", "Ireland", 1, False, 2.0),
    CountryFact("SE", "Sweden", 1, False, 1.5),
    CountryFact("FI", "Finland", 1, False, 1.0),
    CountryFact("NO", "Norway", 1, False, 1.0),
    CountryFact("DK", "Denmark", 1, False, 1.0),
    CountryFact("ES", "Spain", 1, False, 1.5),
    CountryFact("IT", "Italy", 1, False, 1.5),
    CountryFact("BE", "Belgium", 1, False, 0.8),
    CountryFact("NZ", "New Zealand", 1, False, 0.5),
    # Tier 2. SG: 22 % of NVIDIA billings Aug-Oct 2024, <1 % of deliveries [V] (enforcement T8);
    # MY: GPU imports $6.45B Jan-Apr 2025 [V] (enforcement T12).
    CountryFact("IN", "India", 2, False, 6.0),
    CountryFact("SG", "Singapore", 2, False, 5.0, hub=True),
    CountryFact("MY", "Malaysia", 2, False, 4.5, hub=True),
    CountryFact("AE", "United Arab Emirates", 2, True, 3.0, hub=True),
    CountryFact("SA", "Saudi Arabia", 2, True, 2.0),
    CountryFact("IL", "Israel", 2, False, 3.0),
    CountryFact("CH", "Switzerland", 2, False, 2.0),
    CountryFact("PL", "Poland", 2, False, 1.5),
    CountryFact("BR", "Brazil", 2, False, 2.0),
    CountryFact("MX", "Mexico", 2, False, 1.5),
    CountryFact("TH", "Thailand", 2, False, 1.5, hub=True),
    CountryFact("ID", "Indonesia", 2, False, 1.0, hub=True),
    CountryFact("VN", "Vietnam", 2, True, 1.0, hub=True),
    CountryFact("TR", "Türkiye", 2, False, 1.0),
    CountryFact("PT", "Portugal", 2, False, 0.5),
    CountryFact("AT", "Austria", 2, False, 0.5),
    CountryFact("CZ", "Czech Republic", 2, False, 0.5),
    # Tier 3 (D:5 + Macau): China SKUs only. China incl. HK was 13 % of NVIDIA FY2025 revenue
    # [R] (10-K, billing location); the world keeps its order share small.
    CountryFact("CN", "China", 3, True, 3.0),
    CountryFact("HK", "Hong Kong", 3, True, 1.0, hub=True),
)

COUNTRY_BY_CODE: dict[str, CountryFact] = {c.code: c for c in COUNTRIES}

LPP_DESTINATIONS: tuple[str, ...] = tuple(
    c.code for c in COUNTRIES if c.tier == 2 and not c.lpp_restricted
)
"""Tier 2 destinations where an order can plausibly ship under LPP."""

# --- buyer segments ---------------------------------------------------------------------------

Segment = Literal["cloud", "enterprise", "research", "distributor", "smb"]


@dataclass(frozen=True, slots=True)
class SegmentFact:
    """A kind of buyer: how many there are, how much they order, what they say it is for.

    GPUs per order line are log-normal with the given median and sd of log (the heavy tail comes
    from the cloud segment: CNAS cites single orders of 2,400 H100s [V enforcement §1]).
    `activity_alpha` is the Pareto shape of per-consignee order counts within the segment
    (smaller = more concentrated: a few big buyers place most orders).
    """

    name: Segment
    consignee_share: float
    order_share: float
    gpus_median: float
    gpus_sigma: float
    activity_alpha: float
    end_uses: tuple[tuple[str, float], ...]


SEGMENTS: tuple[SegmentFact, ...] = (
    SegmentFact(
        "cloud",
        0.04,
        0.22,
        64.0,
        1.4,
        1.1,
        (("datacenter", 0.5), ("training", 0.25), ("inference", 0.2), ("unknown", 0.05)),
    ),
    SegmentFact(
        "enterprise",
        0.34,
        0.33,
        8.0,
        1.1,
        1.6,
        (
            ("inference", 0.35),
            ("development", 0.25),
            ("training", 0.2),
            ("datacenter", 0.1),
            ("unknown", 0.1),
        ),
    ),
    SegmentFact(
        "research",
        0.10,
        0.10,
        8.0,
        1.0,
        1.8,
        (("research", 0.7), ("training", 0.2), ("unknown", 0.1)),
    ),
    SegmentFact(
        "distributor",
        0.07,
        0.17,
        16.0,
        1.1,
        1.3,
        (("resale", 0.85), ("storage", 0.1), ("unknown", 0.05)),
    ),
    SegmentFact(
        "smb",
        0.45,
        0.18,
        2.0,
        0.9,
        2.0,
        (("development", 0.4), ("inference", 0.3), ("training", 0.1), ("unknown", 0.2)),
    ),
)
"""[M] Segment mix. Shares are modelling choices; the medians follow the sizes of real products
(1-2 cards for a workstation, one 8-GPU server for a lab, dozens of servers for a cloud)."""

SEGMENT_BY_NAME: dict[str, SegmentFact] = {s.name: s for s in SEGMENTS}

MAX_GPUS_PER_LINE = 16_384
"""[M] Cap on one order line: a 16k-GPU cluster, about the largest single purchase reported."""

FORWARDER_SHARE = 0.03
"""[M] Share of legitimate order lines with a freight forwarder named as intermediate consignee."""

PAYER_GIVEN_SHARE = 0.6
"""[M] Share of legitimate order lines where the payer is stated (and is the consignee itself)."""

AUTHORIZATION_GIVEN_SHARE = 0.35
"""[M] Share of legitimate order lines on which the exporter states the authority it means to use."""

FREE_MAIL_SHARE_SMB = 0.06
"""[M] Share of small legitimate buyers that use a free-mail address (a signal a legit buyer shows)."""

# --- exporters (fictional) --------------------------------------------------------------------

EXPORTERS: tuple[tuple[str, float], ...] = (
    ("Sierra Compute Systems Inc.", 0.22),
    ("Bayline Servers Inc.", 0.16),
    ("Cascadia Systems Corp.", 0.14),
    ("Redwood Digital Supply LLC", 0.12),
    ("Lakeshore Technology Distribution Inc.", 0.10),
    ("Granite Peak Computing Inc.", 0.09),
    ("Mesa Accelerated Computing LLC", 0.07),
    ("Harborview IT Wholesale Inc.", 0.05),
    ("Keystone Federal Systems Inc.", 0.03),
    ("Northgate Components LLC", 0.02),
)
"""[M] Fictional US exporters (OEMs and distributors) with market shares. Names are invented so no
real company is implied in planted schemes."""
