"""The hot path: a dry-run `POST /v1/decisions` answered without the framework's per-request work.

A dry-run decision is a fraction of a millisecond of CPU (parse, decide against one ledger
snapshot, serialise). Routing through FastAPI's included routers, resolving four dependencies and
the middleware stack costs more than that, so this ASGI middleware answers the common case
itself and hands everything else, unchanged, to the app:

- only `POST /v1/decisions` with a JSON body of at most 64 KiB, `commit` false or absent, a key
  checked in the last few seconds (`auth.cached_key`), on a ledger whose reads never wait
  (SQLite; see `Services.reads_inline`);
- the body is validated by the same model (`DecisionRequest`) and decided by the same function
  (`services.decide_one`) as the route, and the response is the one the route returns;
- anything else — a commit, an unknown or expired key, a body that does not validate, any error
  the decision raises — goes to the app with the body replayed, so every refusal and error is
  produced by the app itself, exactly as without this middleware. A dry run changes nothing, so
  deciding it a second time there is harmless.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiexport.api import services
from aiexport.api.auth import cached_key
from aiexport.api.models import DecisionRequest
from aiexport.api.services import Services

PATH = "/v1/decisions"
MAX_BODY = 64 * 1024
_ORDER_FIELDS = set(DecisionRequest.model_fields) - {"commit", "rule_set"}
_JSON = (b"application/json", b"application/json; charset=utf-8")


class FastDecisions:
    """ASGI middleware answering dry-run single decisions; see the module docstring."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope["query_string"]
            or not self.services.reads_inline
        ):
            await self.app(scope, receive, send)
            return
        token = length = None
        json_type = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                token = value
            elif name == b"content-length":
                length = value
            elif name == b"content-type":
                json_type = value.lower() in _JSON
        if not (token and json_type and length and length.isdigit() and int(length) <= MAX_BODY):
            await self.app(scope, receive, send)
            return
        body, more = await _read(receive)
        out = None if more else self._decide(token, body)
        if out is None:
            await self.app(scope, _replay(body, more, receive), send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(out)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})

    def _decide(self, header: bytes, body: bytes) -> bytes | None:
        """The response body of a dry-run decision, or None to let the app answer."""
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return None
        svc = self.services
        who = cached_key(svc.ledger, token.strip())
        if who is None:
            return None
        try:
            data = orjson.loads(body)
            if not isinstance(data, dict):
                return None
            req = DecisionRequest.model_validate(data)
            if req.commit:
                return None
            raw = req.model_dump(mode="json", include=_ORDER_FIELDS, exclude_none=True)
            got = services.decide_one(svc, who, raw, commit=False, rule_set=req.rule_set)
            return orjson.dumps(got.to_record())
        except Exception:  # bad JSON, a ValidationError, a refusal: the app answers it as ever
            return None


async def _read(receive: Receive) -> tuple[bytes, list[Message]]:
    """The request body; if the client stopped before its end, what was received instead."""
    chunks: list[bytes] = []
    seen: list[Message] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            seen.append(message)
            return b"".join(chunks), seen
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, tail: list[Message], receive: Receive) -> Receive:
    """A `receive` that gives the app the body already read, then the client's own messages."""
    pending: list[Any] = [{"type": "http.request", "body": body, "more_body": bool(tail)}, *tail]

    async def again() -> Message:
        if pending:
            message: Message = pending.pop(0)
            return message
        return await receive()

    return again
