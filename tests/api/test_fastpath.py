"""The dry-run fast path answers exactly as the route does, and hands everything else to the app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from aiexport.api import fastpath
from tests.api.conftest import ORDER, Keys, head


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """For each request that reached the fast path: whether it answered (True) or passed it on."""
    seen: list[bool] = []
    original = fastpath.FastDecisions._decide

    def spy(self: fastpath.FastDecisions, header: bytes, body: bytes) -> bytes | None:
        out = original(self, header, body)
        seen.append(out is not None)
        return out

    monkeypatch.setattr(fastpath.FastDecisions, "_decide", spy)
    yield seen


def _fast(client: Any) -> bool:
    return bool(client.app.state.services.reads_inline)


ORDERS = [
    ORDER,
    {**ORDER, "order_id": "PO-2", "destination": "CN", "authorization": None},
    {**ORDER, "order_id": "PO-3", "item": "H20", "quantity": 5, "destination": "FR"},
    {**ORDER, "order_id": "PO-4", "order_date": "2024-06-02", "authorization": "LICENSE:L-9"},
    {**ORDER, "order_id": "PO-5", "quantity": 100_000, "destination": "AE", "unknown": 1},
]


def test_a_dry_run_is_answered_by_the_fast_path_as_by_the_route(
    client: Any, keys: Keys, answered: list[bool]
) -> None:
    for order in ORDERS:
        first = client.post("/v1/decisions", json=order, headers=keys.acme)
        again = client.post("/v1/decisions", json=order, headers=keys.acme)
        assert first.status_code == again.status_code == 200
        assert first.content == again.content
        assert first.headers["content-type"] == again.headers["content-type"]
        assert first.json()["recorded"] is False
    # the first request checks the key through the app; every later one is the fast path's
    if _fast(client):
        assert answered[0] is False and all(answered[1:])
    assert head(client) == 0


def test_everything_else_goes_to_the_app(client: Any, keys: Keys, answered: list[bool]) -> None:
    client.post("/v1/decisions", json=ORDER, headers=keys.acme)  # the key is now checked
    answered.clear()
    bad = client.post("/v1/decisions", json={**ORDER, "quantity": "many"}, headers=keys.acme)
    assert bad.status_code == 422 and bad.json()["error"] == "InputError"
    assert "quantity" in bad.json()["message"]
    broken = client.post(
        "/v1/decisions",
        content=b"{not json",
        headers={**keys.acme, "Content-Type": "application/json"},
    )
    assert broken.status_code == 422
    listed = client.post(
        "/v1/decisions", content=b"[1]", headers={**keys.acme, "Content-Type": "application/json"}
    )
    assert listed.status_code == 422
    other = client.post("/v1/decisions", json={**ORDER, "exporter": "Globex"}, headers=keys.acme)
    assert other.status_code == 403 and "Acme Chips" in other.json()["message"]
    date = client.post(
        "/v1/decisions", json={**ORDER, "order_date": "1990-01-01"}, headers=keys.acme
    )
    assert date.status_code == 422
    rules = client.post("/v1/decisions", json={**ORDER, "rule_set": "nope"}, headers=keys.acme)
    assert rules.status_code == 404
    if _fast(client):
        assert answered and not any(answered)
    nokey = client.post("/v1/decisions", json=ORDER, headers={"Authorization": "Bearer aix_x"})
    assert nokey.status_code == 401 and nokey.headers["www-authenticate"] == "Bearer"
    none = client.post("/v1/decisions", json=ORDER)
    assert none.status_code == 401
    assert head(client) == 0
    committed = client.post("/v1/decisions", json={**ORDER, "commit": True}, headers=keys.acme)
    assert committed.status_code == 200 and committed.json()["recorded"] is True
    assert head(client) >= 1
    if _fast(client):
        assert not any(answered)


def test_a_revoked_key_is_refused_at_once(client: Any, keys: Keys) -> None:
    assert client.post("/v1/decisions", json=ORDER, headers=keys.acme).status_code == 200
    key_id = keys.acme["Authorization"].split("_")[1]
    assert client.delete(f"/v1/keys/{key_id}", headers=keys.admin).status_code == 200
    r = client.post("/v1/decisions", json=ORDER, headers=keys.acme)
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_an_analyst_dry_run_names_the_exporter(
    client: Any, keys: Keys, answered: list[bool]
) -> None:
    order = {**ORDER, "exporter": "Globex"}
    first = client.post("/v1/decisions", json=order, headers=keys.analyst)
    again = client.post("/v1/decisions", json=order, headers=keys.analyst)
    assert first.status_code == again.status_code == 200 and first.content == again.content
    missing = client.post("/v1/decisions", json=ORDER, headers=keys.analyst)
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "exporter"


def test_a_body_in_pieces_and_a_query_string_reach_the_app_whole(client: Any, keys: Keys) -> None:
    client.post("/v1/decisions", json=ORDER, headers=keys.acme)  # the key is now checked
    app = fastpath.FastDecisions(_echo, client.app.state.services)
    body = json.dumps(ORDER).encode()
    headers = [
        (b"authorization", keys.acme["Authorization"].encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    for query, pieces in [(b"", [body[:10], body[10:]]), (b"x=1", [body])]:
        messages = [
            {"type": "http.request", "body": p, "more_body": i < len(pieces) - 1}
            for i, p in enumerate(pieces)
        ]
        sent: list[dict[str, Any]] = []

        async def receive(messages: list[dict[str, Any]] = messages) -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/decisions",
            "query_string": query,
            "headers": headers,
        }
        asyncio.run(app(scope, receive, send))
        if query or not _fast(client):
            assert sent == [{"type": "echo", "body": body}]
        else:  # whole pieces are joined and decided here
            assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])["order_id"] == "PO-1"


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    chunks = []
    while True:
        m = await receive()
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            break
    await send({"type": "echo", "body": b"".join(chunks)})
