"""The law as data over the API: catalog, tiers and rules on a date."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Keys


def test_health_needs_no_key(client: Any) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


def test_tiers_on_a_date(client: Any, keys: Keys) -> None:
    cn = client.get("/v1/tiers/cn", params={"on": "2025-06-01"}, headers=keys.acme).json()
    assert cn["tier"] == 3 and "d5" in cn["groups"]
    assert (
        client.get("/v1/tiers/FR", params={"on": "2025-06-01"}, headers=keys.acme).json()["tier"]
        == 1
    )
    all_ = client.get("/v1/tiers", params={"on": "2025-06-01"}, headers=keys.acme).json()[
        "countries"
    ]
    assert len(all_) > 200
    assert client.get("/v1/tiers/QQ", headers=keys.acme).status_code == 422


def test_catalog_items_are_classified(client: Any, keys: Keys) -> None:
    h100 = client.get(
        "/v1/catalog/h100 sxm5", params={"on": "2025-06-01"}, headers=keys.acme
    ).json()
    assert h100["eccn"] == "3A090.a" and h100["reasons"]
    assert client.get("/v1/catalog/NOPE", headers=keys.acme).status_code == 404


def test_rules_in_force_carry_citations(client: Any, keys: Keys) -> None:
    got = client.get(
        "/v1/rules", params={"on": "2025-06-01", "rule_set": "diffusion-2025"}, headers=keys.acme
    ).json()
    assert got["parameters"] and all(p["citation"] for p in got["parameters"])
    assert (
        client.get("/v1/rules", params={"rule_set": "nope"}, headers=keys.acme).status_code == 404
    )
    assert client.get("/v1/rules", params={"on": "yesterday"}, headers=keys.acme).status_code == 422
