from __future__ import annotations

import datetime as dt

import pytest

from aiexport.intel import CONFIDENT, Screener, party_screen
from aiexport.rules import Engine, MemoryQuota, Order, RuleSet


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("Zhongke Tianshu Super-computing Co., Ltd", "Zhongke Tianshu Supercomputing Co. Ltd."),
        ("中科天枢超算有限公司", "Zhongke Tianshu Supercomputing Co. Ltd."),
        ("Tianshu Zhongke Supercomputing", "Zhongke Tianshu Supercomputing Co. Ltd."),
        ("Вычислительные Системы Севера", "Vychislitelnye Sistemy Severa OOO"),
        ("LionGate Compute Trading Pte Ltd", "Lion Gate Compute Trading Pte. Ltd."),
        ("Kepler Data-Tech F.Z.E.", "Kepler Datatech FZE"),
    ],
)
def test_spelling_order_legal_form_and_script(screener: Screener, query: str, listed: str) -> None:
    (best, *_) = screener.screen(query)
    assert best.entry.name == listed
    assert best.score >= CONFIDENT
    assert best.features and best.explain()


def test_unrelated_names_do_not_match(screener: Screener) -> None:
    for name in ("Apex Technology Ltd", "Bharat Compute Pvt Ltd", "Sakura Digital K.K."):
        assert screener.screen(name) == []


def test_country_mismatch_lowers_the_score(screener: Screener) -> None:
    here = screener.screen("Kepler Datatech FZE", "AE")[0]
    there = screener.screen("Kepler Datatech FZE", "SG")[0]
    assert there.score < here.score
    assert any(f.name == "country_mismatch" for f in there.features)


def test_entity_list_match_requires_a_license(screener: Screener, diffusion: RuleSet) -> None:
    engine = Engine(diffusion, party_screen=party_screen(screener))
    base = dict(
        order_date=dt.date(2025, 6, 1), exporter="x", quantity=8, destination="IN", item="H100-SXM5"
    )
    listed = Order(
        order_id="1", consignee_name="Kepler Data-Tech F.Z.E.", consignee_country="AE", **base
    )  # type: ignore[arg-type]
    clean = Order(order_id="2", consignee_name="Bharat Compute Pvt Ltd", **base)  # type: ignore[arg-type]
    det = engine.decide(listed, MemoryQuota())
    assert (det.status, det.authority, det.review_policy) == (
        "license_required",
        "LICENSE",
        "presumption_of_denial",
    )
    assert det.reasons[-1].rule == "party.entity_list"
    assert "744.11" in det.reasons[-1].citation
    assert engine.decide(clean, MemoryQuota()).status != "license_required"


def test_non_entity_list_sources_do_not_change_the_decision(
    screener: Screener, diffusion: RuleSet
) -> None:
    hook = party_screen(screener)
    o = Order(
        order_id="1",
        order_date=dt.date(2025, 6, 1),
        exporter="x",
        quantity=1,
        destination="HK",
        consignee_name="Meridian Smart Logistics Limited",  # on the UVL only
        item="H100-SXM5",
    )
    assert hook(o) is None


@pytest.mark.parametrize("compact_key_first", [True, False])
def test_of_names_that_score_alike_the_first_listed_is_reported(
    monkeypatch: pytest.MonkeyPatch, compact_key_first: bool
) -> None:
    """Candidates came from a set filled in the order of the query's keys, itself a set of
    strings whose order changes with the hash seed; names 0 and 8 share a slot of a small set,
    so the one inserted first was scored first and kept on a tie."""
    from aiexport.intel import screening
    from aiexport.intel.lists import ListEntry, ScreeningList

    fillers = tuple(f"Zeta Holdings {chr(65 + i)}" for i in range(7))
    entry = ListEntry(
        "X1",
        "EL",
        "Entity List",
        "Trading Acme Co Ltd",
        alt_names=(*fillers, "Acme Trading Limited"),
    )
    screener = Screener(ScreeningList((entry,), ("test",), "0" * 64))
    keys = screening._keys

    def ordered(n: screening._Name) -> list[str]:  # the query's keys in a chosen order
        return sorted(keys(n), key=lambda k: (k.startswith("c:") != compact_key_first, k))

    monkeypatch.setattr(screening, "_keys", ordered)
    (best,) = screener.screen("Acme Trading Pte")
    assert best.matched_name == "Trading Acme Co Ltd"
