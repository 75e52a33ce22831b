"""A dashboard with data: recorded orders, an investigation and a simulation.

The investigation and simulation results are put in through the job runner with stand-in job
functions that return the libraries' result shapes (contract §3 cases with their evidence;
`aiexport.simulate/1` metrics), so page tests do not pay for Splink or a replay. `aiexport demo`
runs the real ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aiexport.api import create_app
from aiexport.api.auth import Principal, create_key
from aiexport.api.jobs import JobKind
from aiexport.api.services import decide_batch

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient


def _orders() -> list[dict[str, Any]]:
    ring = [
        ("R1", "2025-07-01", "Cobalt Cloud Pvt Ltd", "IN", "+91 22 5550 1000", "Pay Co FZE"),
        ("R2", "2025-07-15", "Cobalt Compute Pvt Ltd", "IN", "+91 22 5550 1000", "Pay Co FZE"),
        ("R3", "2025-08-02", "Aurora Technology Pte Ltd", "SG", "+65 5550 2000", "Pay Co FZE"),
    ]
    out = [
        {"order_id": oid, "order_date": day, "exporter": "Acme Chips", "item": "H100-SXM5", "quantity": 1400,
         "destination": cc, "consignee_id": f"C-{oid}", "consignee_name": name, "consignee_phone": phone,
         "payer_name": payer, "payer_country": "AE", "end_use": "datacenter", "authorization": "LPP"}
        for oid, day, name, cc, phone, payer in ring
    ]  # fmt: skip
    out += [
        {"order_id": f"N{i}", "order_date": f"2025-{6 + i % 6:02d}-10", "exporter": "Globex", "item": item,
         "quantity": q, "destination": cc, "consignee_name": f"Buyer {i}", "end_use": "inference"}
        for i, (item, q, cc) in enumerate([("H100-SXM5", 100, "FR"), ("H200", 50, "BR"), ("L40S", 20, "MX"), ("B200", 300, "DE")])
    ]  # fmt: skip
    return out


CASE = {
    "case_id": "CASE-TEST01",
    "score": 0.93,
    "signals": ["STRUCTURING", "SHARED_IDENTIFIERS", "PAYER_MISMATCH"],
    "parties": ["C-R1", "C-R2", "C-R3"],
    "order_ids": ["R1", "R2", "R3"],
    "tpp_total": 66_502_400,
    "summary": "3 consignees in IN, SG share a phone and a payer; together above the LPP allowance.",
    "evidence": {
        "signals": [
            {
                "code": "STRUCTURING",
                "strength": 1.0,
                "why": "2.5x the allowance across linked consignees",
            }
        ],
        "party_names": {
            "C-R1": "Cobalt Cloud Pvt Ltd",
            "C-R2": "Cobalt Compute Pvt Ltd",
            "C-R3": "Aurora Technology Pte Ltd",
        },
        "links": [
            {
                "between": ["C-R1", "C-R2"],
                "kind": "same or linked company",
                "shared": ["phone"],
                "match_probability": 0.99,
            },
            {"between": ["C-R2", "C-R3"], "kind": "payer", "shared": ["Pay Co FZE"]},
        ],
        "parties": [],
        "timeline": [],
    },
}


def _scenario(name: str, scale: float) -> dict[str, Any]:
    return {
        "scenario": name,
        "delivered_h100": 200_000 * scale,
        "refused_h100": 5_000 * scale,
        "diverted_h100": 40_000 / scale,
        "diverted_caught_h100": 10_000 * scale,
        "license_applications": int(300 * scale),
        "licenses_granted": int(250 * scale),
        "licenses_refused": int(50 * scale),
        "legit_delayed_h100": 1_000 * scale,
        "legit_refused_h100": 100 * scale,
        "evader_new_shells": int(3 * scale),
        "evader_cost_usd": 1e6 * scale,
        "delivered_by_tier": {"1": {"h100": 150_000}, "2": {"h100": 50_000 * scale}},
    }


SIMULATION = {
    "format": "aiexport.simulate/1",
    "notes": [],
    "scenarios": [
        _scenario("diffusion-2025", 1.0),
        _scenario("ear-2024", 0.8),
        _scenario("refinements-2025", 1.2),
    ],
}


@dataclass
class Dashboard:
    client: TestClient
    analyst: str
    exporter: str
    db: str


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    db = f"sqlite:///{Path(tmp_path_factory.mktemp('web')) / 'web.db'}"
    app = create_app(db)
    svc, runner = app.state.services, app.state.jobs
    admin = create_key(svc.ledger, role="admin", name="root", created_by="test")
    decide_batch(svc, admin.principal, _orders(), commit=True)
    runner.kinds["investigation"] = JobKind(
        "investigation", lambda c, p: {"cases": [CASE]}, lambda p: p, "stand-in"
    )
    runner.kinds["simulation"] = JobKind(
        "simulation", lambda c, p: SIMULATION, lambda p: p, "stand-in"
    )
    who: Principal = admin.principal
    runner.submit("investigation", {}, who, wait=True)
    runner.submit("simulation", {}, who, wait=True)
    analyst = create_key(svc.ledger, role="analyst", name="ana", created_by="test").key
    exporter = create_key(
        svc.ledger, role="exporter", name="acme", exporter="Acme Chips", created_by="test"
    ).key
    with TestClient(app) as client:
        h = {"Authorization": f"Bearer {admin.key}"}
        for lic, cc, tpp in (("L-1", "IN", 300_000_000), ("L-2", "BR", 120_000_000)):
            body = {"license_id": lic, "destination": cc, "tpp": tpp, "valid_from": "2025-06-01"}
            assert client.post("/v1/licenses", json=body, headers=h).status_code == 201
        yield Dashboard(client, analyst, exporter, db)
