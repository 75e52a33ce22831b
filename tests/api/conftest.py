"""Fixtures for the service: an app over a fresh database, and one key of each role.

`client` runs on SQLite, and on PostgreSQL too when `AIEXPORT_TEST_PG_URL` is set (marked
`postgres`); the tables are dropped first so every test starts from an empty database. Keys are
made through the same `create_key` the `aiexport keys create` command uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

from aiexport.api import create_app, store
from aiexport.api.auth import create_key
from aiexport.ledger import _tables as ledger_tables

from ..conftest import BACKENDS, PG_URL

ORDER: dict[str, Any] = {
    "order_id": "PO-1",
    "order_date": "2025-06-02",
    "item": "H100-SXM5",
    "quantity": 200,
    "destination": "IN",
    "consignee_name": "Bharat Compute Pvt Ltd",
    "end_use": "training",
    "authorization": "LPP",
}


@dataclass
class Keys:
    admin: dict[str, str]
    analyst: dict[str, str]
    acme: dict[str, str]
    globex: dict[str, str]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _reset_pg(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        store.metadata.drop_all(conn)
        ledger_tables.metadata.drop_all(conn)
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        assert PG_URL
        _reset_pg(PG_URL)
        return PG_URL
    return f"sqlite:///{tmp_path / 'api.db'}"


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    app = create_app(db_url)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def keys(client: TestClient) -> Keys:
    ledger = client.app.state.services.ledger  # type: ignore[attr-defined]

    def make(role: str, name: str, exporter: str | None = None) -> dict[str, str]:
        return _bearer(
            create_key(ledger, role=role, name=name, exporter=exporter, created_by="test").key
        )

    return Keys(
        admin=make("admin", "root"),
        analyst=make("analyst", "ana"),
        acme=make("exporter", "acme-bot", "Acme Chips"),
        globex=make("exporter", "globex-bot", "Globex"),
    )


def head(client: TestClient) -> int:
    seq, _ = client.app.state.services.ledger.head()  # type: ignore[attr-defined]
    return int(seq)
