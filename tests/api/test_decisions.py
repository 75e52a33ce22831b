"""Deciding orders over the API: dry runs, commits, replays, batches, bad input."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import ORDER, Keys, head


def test_a_dry_run_returns_the_contract_record_and_records_nothing(client: Any, keys: Keys) -> None:
    r = client.post("/v1/decisions", json=ORDER, headers=keys.acme)
    assert r.status_code == 200
    body = r.json()
    for field in ("order_id", "eccn", "tpp_total", "h100_equivalents", "destination_tier", "status", "authority",
                  "review_policy", "obligations", "quota", "reasons", "rule_set"):  # fmt: skip
        assert field in body
    assert body["authority"] == "LPP" and body["recorded"] is False
    assert all({"rule", "citation", "text"} <= set(reason) for reason in body["reasons"])
    assert head(client) == 0


def test_a_commit_draws_on_the_ledger_once_however_often_it_is_sent(
    client: Any, keys: Keys
) -> None:
    first = client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme).json()
    assert first["recorded"] and not first["replayed"]
    entries = head(client)
    assert entries >= 1
    again = client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme).json()
    assert again["replayed"] and again["decision_id"] == first["decision_id"]
    assert head(client) == entries
    bal = client.get("/v1/ledger/balances", params={"prefix": "lpp/"}, headers=keys.analyst).json()
    assert bal["balances"][0]["used_tpp"] == str(first["tpp_total"])


def test_the_same_order_id_with_other_details_is_a_conflict(client: Any, keys: Keys) -> None:
    client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme)
    entries = head(client)
    r = client.post(
        "/v1/decisions", json={**ORDER, "quantity": 3, "commit": True}, headers=keys.acme
    )
    assert r.status_code == 409 and "new order_id" in r.json()["message"]
    assert head(client) == entries


def test_malformed_orders_are_422_with_the_field_and_change_nothing(
    client: Any, keys: Keys
) -> None:
    bad = [
        ({**ORDER, "destination": "XX"}, "destination"),
        ({**ORDER, "quantity": 0}, "quantity"),
        ({**ORDER, "order_date": "2025-13-01"}, "order_date"),
        ({**ORDER, "item": "NO-SUCH-CHIP"}, "item"),
        ({**ORDER, "authorization": "PLEASE"}, "authorization"),
        ({k: v for k, v in ORDER.items() if k != "consignee_name"}, "consignee_name"),
    ]
    for body, field in bad:
        r = client.post("/v1/decisions", json={**body, "commit": True}, headers=keys.acme)
        assert r.status_code == 422, body
        err = r.json()
        assert err["message"] and field in err["message"] + str(err.get("details")), err
    r = client.post(
        "/v1/decisions",
        content=b"{not json",
        headers={**keys.acme, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert head(client) == 0
    assert client.get("/v1/decisions", headers=keys.admin).json()["total"] == 0


def test_an_analyst_decides_but_does_not_record(client: Any, keys: Keys) -> None:
    body = {**ORDER, "exporter": "Acme Chips"}
    assert client.post("/v1/decisions", json=body, headers=keys.analyst).status_code == 200
    assert (
        client.post(
            "/v1/decisions", json={**body, "commit": True}, headers=keys.analyst
        ).status_code
        == 403
    )
    assert (
        client.post("/v1/decisions", json=ORDER, headers=keys.analyst).status_code == 422
    )  # no exporter named


def test_a_batch_carries_quota_from_order_to_order_and_records_all(client: Any, keys: Keys) -> None:
    orders = [{**ORDER, "order_id": f"B{i}", "quantity": 1000} for i in range(3)]
    r = client.post(
        "/v1/decisions/batch", json={"orders": orders, "commit": True}, headers=keys.acme
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["recorded"] and len(got["decisions"]) == 3
    # 1,000 H100s is ~15.8M TPP: the first fits the 26.9M LPP allowance, the second does not.
    assert got["decisions"][0]["authority"] == "LPP"
    assert got["decisions"][1]["authority"] != "LPP"
    assert client.get("/v1/decisions", headers=keys.acme).json()["total"] == 3


def test_a_batch_with_one_bad_order_records_nothing_and_names_it(client: Any, keys: Keys) -> None:
    orders = [{**ORDER, "order_id": "B1"}, {**ORDER, "order_id": "B2", "destination": "ZZ"}]
    r = client.post(
        "/v1/decisions/batch", json={"orders": orders, "commit": True}, headers=keys.acme
    )
    assert r.status_code == 422
    assert "line 2" in r.json()["message"] and "destination" in r.json()["message"]
    assert head(client) == 0


def test_a_batch_with_an_order_recorded_before_is_refused(client: Any, keys: Keys) -> None:
    client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme)
    entries = head(client)
    orders = [{**ORDER, "order_id": "NEW"}, ORDER]
    r = client.post(
        "/v1/decisions/batch", json={"orders": orders, "commit": True}, headers=keys.acme
    )
    assert r.status_code == 409
    assert head(client) == entries


def test_an_order_over_the_allowance_is_decided_but_draws_nothing(client: Any, keys: Keys) -> None:
    big = {**ORDER, "quantity": 5000, "commit": True}
    r = client.post("/v1/decisions", json=big, headers=keys.acme).json()
    assert r["status"] == "license_required" and r["recorded"]
    assert head(client) == 0
