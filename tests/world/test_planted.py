"""The planted schemes are what truth.json says, and structuring rings really structure."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from aiexport.rules import Countries, RuleSet, default_catalog
from aiexport.rules.items import tpp_from_tops

from .conftest import World


def _tpp(row: dict[str, object]) -> int:
    ic = default_catalog().lookup(str(row["item"])).ic
    return (
        int(row["quantity"]) * int(row["chips_per_unit"]) * int(tpp_from_tops(dict(ic.dense_tops)))
    )  # type: ignore[call-overload]


def _lpp_limit(rules: RuleSet, year: int) -> int:
    return int(rules.value("exceptions.lpp.annual_limit_tpp", dt.date(year, 7, 1)))


def test_every_kind_is_planted(world: World) -> None:
    kinds = {s["kind"] for s in world.truth["schemes"]}
    assert kinds == {"structuring", "transshipment", "front", "surge", "hidden_tier3_hq"}
    decoys = {d["kind"] for d in world.truth["decoys"]}
    assert {"corporate_group", "similar_name", "big_buyer", "legit_burst"} <= decoys


def test_truth_points_at_real_rows(world: World) -> None:
    by_id = {r["order_id"]: r for r in world.rows}
    seen: set[str] = set()
    for s in world.truth["schemes"]:
        ids = set(s["order_ids"])
        assert ids and not ids & seen, "schemes do not share orders"
        seen |= ids
        members = {c["consignee_id"] for c in s["consignees"]}
        assert {by_id[o]["consignee_id"] for o in ids} <= members
        assert s["tpp_total"] == sum(_tpp(by_id[o]) for o in ids)
    scheme_parties = {c["consignee_id"] for s in world.truth["schemes"] for c in s["consignees"]}
    decoy_parties = {c["consignee_id"] for d in world.truth["decoys"] for c in d["consignees"]}
    assert not scheme_parties & decoy_parties
    in_file = {r["consignee_id"] for r in world.rows}
    assert decoy_parties <= in_file


def test_structuring_shells_stay_under_while_the_ring_is_far_above(
    world: World, diffusion: RuleSet
) -> None:
    """Counting, like the rule, only 3A090.a datacenter lines to LPP-eligible destinations."""
    countries = Countries(diffusion)
    by_id = {r["order_id"]: r for r in world.rows}
    rings = [s for s in world.truth["schemes"] if s["kind"] == "structuring"]
    assert len(rings) >= 5
    catalog = default_catalog()
    for ring in rings:
        per_shell: dict[tuple[str, int], int] = defaultdict(int)
        for oid in ring["order_ids"]:
            row = by_id[oid]
            day: dt.date = row["order_date"]
            st = countries.status(row["destination"], day)
            ic = catalog.lookup(row["item"]).ic
            assert st.tier == 2 and not st.restricted_740_2 and ic.datacenter
            per_shell[(row["consignee_id"], day.year)] += _tpp(row)
        first = min(by_id[o]["order_date"] for o in ring["order_ids"])
        assert first > dt.date(2025, 5, 15), "rings start once LPP is in force"
        ring_year: dict[int, int] = defaultdict(int)
        for (_, year), tpp in per_shell.items():
            assert tpp < _lpp_limit(diffusion, year), "each shell stays under the allowance"
            ring_year[year] += tpp
        best = max(tpp / _lpp_limit(diffusion, y) for y, tpp in ring_year.items())
        assert best >= 2.0, "the ring takes at least twice the allowance in some year"
        assert len({c for c, _ in per_shell}) >= 4


def test_shells_share_identifiers_but_not_all_of_them(world: World) -> None:
    by_cid: dict[str, dict[str, object]] = {}
    for r in world.rows:
        by_cid.setdefault(r["consignee_id"], r)
    for ring in (s for s in world.truth["schemes"] if s["kind"] == "structuring"):
        sigs = [set(c["signals"]) for c in ring["consignees"]]
        assert all(any(x.startswith("SHARED_") for x in s) for s in sigs)
        assert len({frozenset(s) for s in sigs}) > 1, "members differ in what they show"
        names = {str(by_cid[c["consignee_id"]]["consignee_name"]) for c in ring["consignees"]}
        assert len(names) == len(ring["consignees"]), "every shell has its own name"


def test_surge_sits_before_the_compliance_date(world: World) -> None:
    by_id = {r["order_id"]: r for r in world.rows}
    deadline = dt.date.fromisoformat(world.truth["compliance_date"])
    for s in (s for s in world.truth["schemes"] if s["kind"] == "surge"):
        days = [by_id[o]["order_date"] for o in s["order_ids"]]
        before = sum(deadline - dt.timedelta(days=90) <= d < deadline for d in days)
        assert before / len(days) > 0.75
        assert all(d < deadline for d in days)


def test_hidden_parents_are_tier3_and_mostly_undeclared(world: World) -> None:
    by_cid = {r["consignee_id"]: r for r in world.rows}
    subs = declared = 0
    for s in (s for s in world.truth["schemes"] if s["kind"] == "hidden_tier3_hq"):
        assert s["parent"]["country"] in ("CN", "HK")
        for c in s["consignees"]:
            if c["role"] == "subsidiary":
                subs += 1
                declared += by_cid[c["consignee_id"]]["consignee_hq_country"] in ("CN", "HK")
    assert subs and declared < subs


def test_transshipment_uses_forwarders_and_foreign_payers(world: World) -> None:
    by_id = {r["order_id"]: r for r in world.rows}
    for s in (s for s in world.truth["schemes"] if s["kind"] == "transshipment"):
        rows = [by_id[o] for o in s["order_ids"]]
        assert sum(r["intermediate_name"] is not None for r in rows) / len(rows) > 0.5
        foreign = [r for r in rows if r["payer_country"] not in (None, r["consignee_country"])]
        assert foreign


def test_heavy_lpp_users_stay_under_alone(world: World, diffusion: RuleSet) -> None:
    by_id = {r["order_id"]: r for r in world.rows}
    heavy = [d for d in world.truth["decoys"] if d["kind"] == "lpp_heavy_user"]
    assert heavy
    for d in heavy:
        rows = [by_id[o] for o in d["order_ids"]]
        assert len({r["consignee_id"] for r in rows}) == 1
        assert all(r["authorization"] == "LPP" for r in rows)
        year = rows[0]["order_date"].year
        total = sum(_tpp(r) for r in rows)
        assert 0.5 * _lpp_limit(diffusion, year) < total < _lpp_limit(diffusion, year)
