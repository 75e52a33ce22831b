"""A synthetic world of AI-chip trade with planted evasion, for demos, tests and benchmarks.

Real export records are not public, so the project measures its analytics against a generated
world whose ground truth is known. `generate_world(out_dir, seed=..., orders=...)` writes three
files; the same seed and arguments give byte-identical files::

    orders.csv       contract §1 (`../shared/contracts/orders.md`), every column, in date order
    orders.parquet   the same rows, typed (dates as date32, counts as int64, prices as float64)
    truth.json       what was planted, and the legitimate look-alikes

The command line is `aiexport world --seed N --orders N --out DIR [--plant KIND=N ...]`. How many
schemes and look-alikes are planted scales with the size of the world (`default_counts`: one
structuring ring per 1,500 lines, one transshipment network and one front per 3,000, ..., each
capped, so planted lines are ~3-5 % of a small world and ~0.3 % of a 10M-line one); `--plant`
overrides any count. `bench/world.py` measures throughput: 10M lines run in bounded memory
(~0.7 GB peak) at ~80k lines/s on an idle core.

**Background trade** is sampled from `aiexport.world.calibration` (each figure with its source):
chip mix by date (launches, the H20 license of April 2025), destinations weighted toward Tier 1
and the big Tier 2 markets, buyer segments with heavy-tailed order sizes (a cloud's 2,000-GPU
line next to a startup's two cards), market prices with noise and volume discounts, and order
dates from 2024-10-01 to 2026-12-31 growing ~55 % a year, so both rule sets and the 2025-05-15
compliance date are exercised. Every consignee carries a full identity (address, phone, e-mail,
website, registry number, officers, founding date) and every line an end use.

**Planted schemes** (enforcement.md §1 typologies): `structuring` rings of shells, each under the
LPP allowance per calendar year while the ring is far above it, linked by noisy shared identifiers;
`transshipment` through hub consignees with rotating forwarders and third-country payers;
`front` companies whose line of business does not fit; `surge` buyers (several entities of one
buyer sharing its phone, payer or forwarder) piling up orders before the compliance date; `hidden_tier3_hq` subsidiaries of a Chinese or Hong Kong parent that declare a
local headquarters. Members show different subsets of signals, and legitimate **decoys** show
single signals on purpose: corporate groups sharing domains and payers, big buyers, established
hub distributors, similar names, forwarder users, free-mail buyers, legitimate bursts, new but
legitimate big buyers, single companies that lawfully use most of their LPP allowance.

truth.json (format ``aiexport.world.truth/1``)
----------------------------------------------
A JSON object::

    format            "aiexport.world.truth/1"
    seed, orders      the seed and the number of lines written (requested_orders: as asked)
    period            {"start": "2024-10-01", "end": "2026-12-31"}
    compliance_date   "2025-05-15"
    lpp_limit_tpp     {"2025": 26900000, "2026": ...} allowance per calendar year used to plant
    lpp_destinations  destinations where the generator counts a line toward LPP (Tier 2, not in
                      § 740.2(a)(9)(ii)'s D:1/D:4/D:5-not-A:5/A:6 set)
    tpp_per_ic        TPP per IC the generator used for every item (from chips.csv)
    files             {"orders.csv": sha256, "orders.parquet": sha256}
    counts            consignees, planted_lines, scheme_orders, schemes, decoy_groups
    schemes           list of planted schemes (below), the positives
    decoys            list of look-alike groups (below), the hard negatives

Each scheme::

    scheme_id     "S0001"...; stable for a seed
    kind          structuring | transshipment | front | surge | hidden_tier3_hq
    summary       one sentence
    signals       contract §3 signal codes a detector should raise for the scheme as a whole
                  (STRUCTURING, SHARED_IDENTIFIERS, TRANSSHIPMENT_HUB, FORWARDER_CONSIGNEE,
                  PAYER_MISMATCH, NEW_ENTITY_LARGE_ORDER, PRE_DEADLINE_SURGE, HQ_IN_TIER3) plus
                  LINE_OF_BUSINESS_MISMATCH for fronts
    consignees    [{consignee_id, consignee_name, country, role, signals}] — role is shell,
                  consignee, front, subsidiary or parent; `signals` lists what *this* member
                  shows, e.g. SHARED_ADDRESS, SHARED_OFFICER, SHARED_PHONE, SHARED_EMAIL (which
                  identifiers it shares with the ring, each as it was written, i.e. with noise),
                  NEW_ENTITY, FREE_MAIL, SIMILAR_NAME, PAYER_MISMATCH, UNDERVALUED, THIN_FOOTPRINT,
                  CLUE_OFFICER / CLUE_PHONE / CLUE_DOMAIN / CLUE_PAYER / CLUE_NAME (how a hidden
                  Tier 3 parent shows), HQ_DECLARED (the rare member that states it)
    order_ids     every order line of the scheme, in file order
    tpp_total     Σ quantity × chips_per_unit × tpp_per_ic over those lines
    tpp_by_year   the same per calendar year
    lpp           structuring only: {by_consignee_year: [{consignee_id, year, lpp_tpp,
                  limit_tpp, share}], ring_by_year: {year: tpp}, ring_over_limit: {year: ratio}}
                  — every `share` < 1 and the ring's ratio well above 1
    officers, shared, payers, forwarders, parent, window
                  optional: a ring's officers and the canonical form of its shared addresses,
                  phones and e-mail domain (`shared`), third-country payers, forwarders, the
                  hidden parent (consignee id, name, country) and a surge's date window

Each decoy group has the same shape with `decoy_id` ("D0001"...) instead of `scheme_id`, and
kind one of corporate_group, similar_name, new_big_buyer, lpp_heavy_user, legit_burst,
legit_pre_deadline_buyer, big_buyer, hub_distributor, forwarder_user, free_mail_buyer; `signals`
names the one signal it shows on purpose (NEAR_LPP_LIMIT, MANY_ORDERS, LEGIT_BURST, ... or a
contract §3 code). Decoy `order_ids` list only lines generated for the decoy itself (bursts, the
new buyer's clusters, the heavy LPP user's orders); background orders of decoy consignees are not
listed. A consignee never appears in both a scheme and a decoy.

Choices the contract leaves open: `consignee_id` is always filled and random-looking; the
destination is the consignee's country; `tpp_per_unit`, `die_area_mm2`, `datacenter`,
`memory_bandwidth_gbps`, `training_ops` and `open_weights` are left empty so the catalog applies;
8-GPU (and GB200 72-GPU rack) systems are `item_kind=computer` with `chips_per_unit`; exporters are
fictional US companies; no model-weights lines are generated.
"""

from __future__ import annotations

from aiexport.world._generate import (
    ORDER_COLUMNS,
    ORDER_SCHEMA,
    TRUTH_FORMAT,
    WorldSummary,
    default_counts,
    generate_world,
    lpp_limits,
)

__all__ = [
    "ORDER_COLUMNS",
    "ORDER_SCHEMA",
    "TRUTH_FORMAT",
    "WorldSummary",
    "default_counts",
    "generate_world",
    "lpp_limits",
]
