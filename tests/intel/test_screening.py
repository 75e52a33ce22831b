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
