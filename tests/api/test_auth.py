"""Keys: created by the CLI, stored hashed, checked on every request; roles and tenants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from aiexport.cli import app as cli
from tests.api.conftest import ORDER, Keys


def test_keys_create_prints_the_key_on_its_last_line_and_stores_only_its_hash(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    out = CliRunner().invoke(
        cli, ["keys", "create", "--role", "analyst", "--name", "ana", "--db", db]
    )
    assert out.exit_code == 0, out.output
    key = out.output.strip().splitlines()[-1]
    assert key.startswith("aix_")
    secret = key.split("_", 2)[2]
    engine = create_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).all()
        dump = repr(rows) + repr(conn.execute(text("SELECT * FROM api_audit")).all())
    engine.dispose()
    assert len(rows) == 1 and rows[0].role == "analyst"
    assert secret not in dump and key not in dump
    listed = CliRunner().invoke(cli, ["keys", "list", "--db", db])
    assert "ana" in listed.output and secret not in listed.output


def test_keys_create_refuses_an_unknown_role(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli,
        [
            "keys",
            "create",
            "--role",
            "root",
            "--name",
            "x",
            "--db",
            f"sqlite:///{tmp_path / 'k.db'}",
        ],
    )
    assert out.exit_code != 0


def test_requests_without_a_valid_key_are_401(client: Any, keys: Keys) -> None:
    good = keys.acme["Authorization"]
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": good[:-2] + ("AA" if not good.endswith("AA") else "BB")},
        {"Authorization": "Bearer aix_000000000000_" + "A" * 43},
    ):
        r = client.get("/v1/decisions", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["error"] == "AuthError" and r.headers["www-authenticate"] == "Bearer"


def test_a_revoked_key_stops_working(client: Any, keys: Keys) -> None:
    made = client.post(
        "/v1/keys",
        json={"role": "exporter", "name": "temp", "exporter": "Acme Chips"},
        headers=keys.admin,
    ).json()
    h = {"Authorization": f"Bearer {made['key']}"}
    assert client.get("/v1/decisions", headers=h).status_code == 200
    assert client.delete(f"/v1/keys/{made['key_id']}", headers=keys.admin).status_code == 200
    r = client.get("/v1/decisions", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["message"]
    assert all(
        "key" not in k or k["key"] is None
        for k in client.get("/v1/keys", headers=keys.admin).json()["keys"]
    )


def test_roles_gate_what_a_key_may_do(client: Any, keys: Keys) -> None:
    lic = {"license_id": "L-1", "destination": "IN", "tpp": 1_000_000, "valid_from": "2025-06-01"}
    assert client.post("/v1/licenses", json=lic, headers=keys.analyst).status_code == 403
    assert client.post("/v1/licenses", json=lic, headers=keys.acme).status_code == 403
    assert client.post("/v1/licenses", json=lic, headers=keys.admin).status_code == 201
    assert client.get("/v1/licenses", headers=keys.acme).status_code == 403
    assert client.get("/v1/licenses", headers=keys.analyst).status_code == 200
    assert (
        client.post(
            "/v1/keys", json={"role": "admin", "name": "x"}, headers=keys.analyst
        ).status_code
        == 403
    )
    assert client.get("/v1/audit", headers=keys.analyst).status_code == 403
    assert client.post("/v1/investigations", json={}, headers=keys.acme).status_code == 403


def test_an_exporter_sees_only_its_own_orders_and_decisions(client: Any, keys: Keys) -> None:
    mine = client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme).json()
    theirs = client.post(
        "/v1/decisions", json={**ORDER, "order_id": "G-1", "commit": True}, headers=keys.globex
    ).json()
    listed = client.get("/v1/decisions", headers=keys.acme).json()
    assert [d["order_id"] for d in listed["decisions"]] == ["PO-1"] and listed["total"] == 1
    assert (
        client.get("/v1/decisions", params={"exporter": "Globex"}, headers=keys.acme).json()[
            "total"
        ]
        == 1
    )
    assert client.get(f"/v1/decisions/{mine['decision_id']}", headers=keys.acme).status_code == 200
    assert (
        client.get(f"/v1/decisions/{theirs['decision_id']}", headers=keys.acme).status_code == 404
    )
    assert client.get("/v1/decisions", headers=keys.analyst).json()["total"] == 2
    r = client.post(
        "/v1/decisions", json={**ORDER, "order_id": "X", "exporter": "Globex"}, headers=keys.acme
    )
    assert r.status_code == 403
    # The same order id is each exporter's own: Globex's PO-1 is not Acme's PO-1.
    again = client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.globex).json()
    assert again["recorded"] and not again["replayed"]


def test_an_exporter_sees_a_consignees_remaining_allowance_only_as_a_number(
    client: Any, keys: Keys
) -> None:
    client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.globex)
    q = {"consignee_name": ORDER["consignee_name"], "country": "IN", "on": "2025-07-01"}
    r = client.get("/v1/quotas/lpp", params=q, headers=keys.acme)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"consignee", "year", "remaining_tpp"}
    assert 0 < body["remaining_tpp"] < 26_900_000
    assert client.get("/v1/ledger/balances", headers=keys.acme).status_code == 403
    assert (
        client.get(
            "/v1/ledger/accounts/" + f"lpp/{body['consignee']}/2025", headers=keys.acme
        ).status_code
        == 403
    )
    hist = client.get(
        "/v1/ledger/accounts/" + f"lpp/{body['consignee']}/2025", headers=keys.analyst
    )
    assert hist.status_code == 200 and len(hist.json()["entries"]) == 1


def test_every_state_change_is_in_the_audit_log_with_its_actor(client: Any, keys: Keys) -> None:
    client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme)
    client.post(
        "/v1/licenses",
        json={
            "license_id": "L-1",
            "destination": "IN",
            "tpp": 1_000_000,
            "valid_from": "2025-06-01",
        },
        headers=keys.admin,
    )
    veu = {
        "veu_id": "N-1",
        "kind": "NVEU",
        "holder": "dc-1",
        "hq_country": "IN",
        "countries": ["IN"],
        "valid_from": "2025-06-01",
    }
    client.post("/v1/veus", json=veu, headers=keys.admin)
    made = client.post(
        "/v1/keys", json={"role": "analyst", "name": "new"}, headers=keys.admin
    ).json()
    client.delete(f"/v1/keys/{made['key_id']}", headers=keys.admin)
    log = client.get("/v1/audit", headers=keys.admin).json()["entries"]
    actions = {e["action"]: e["actor"] for e in reversed(log)}  # newest wins
    assert actions["decision.commit"].startswith("acme-bot#")
    assert actions["license.register"].startswith("root#")
    assert actions["veu.register"].startswith("root#")
    assert actions["key.create"].startswith("root#") and actions["key.revoke"].startswith("root#")
    entries = client.get("/v1/ledger/accounts/allocation/IN", headers=keys.analyst).json()[
        "entries"
    ]
    assert entries[0]["actor"].startswith("root#")
