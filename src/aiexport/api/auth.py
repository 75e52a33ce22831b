"""API keys: created by `aiexport keys create`, stored hashed, checked on every request.

A key reads `aix_<key id>_<secret>`. The key id is public and finds the row; the secret is 256
bits from `secrets`, so one SHA-256 of it is enough to store (a slow password hash protects
low-entropy secrets, which these are not) and the comparison is constant-time. The plain key
is shown once, when it is created, and never stored.

Roles, from least to most: an **exporter** key acts for one exporting company (its tenant) and
sees only that company's orders and decisions; an **analyst** sees everything and runs
investigations and simulations; an **admin** also registers licenses and VEUs and manages keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, select

from aiexport.api import store
from aiexport.errors import AuthError, Forbidden, InputError, NotFound
from aiexport.ledger import Ledger

Role = Literal["exporter", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("exporter", "analyst", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
_KEY = re.compile(r"^aix_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DUMMY = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's id, name, role and, for an exporter, its company."""

    key_id: str
    name: str
    role: Role
    exporter: str | None

    @property
    def actor(self) -> str:
        """How the caller is named in the audit log and in ledger entries."""
        return f"{self.name}#{self.key_id}"

    def at_least(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def require(self, role: Role) -> None:
        if not self.at_least(role):
            raise Forbidden(
                f"this needs an {role} key or higher; your key {self.name!r} is {self.role}"
            )

    @property
    def sees_all(self) -> bool:
        return self.role != "exporter"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: its row, and the plain key to hand to its holder once."""

    principal: Principal
    key: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    ledger: Ledger, *, role: str, name: str, exporter: str | None = None, created_by: str
) -> NewKey:
    """Create a key; an exporter key acts for `exporter` (default: its name)."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    name = name.strip()
    if not name:
        raise InputError("give the key a --name saying who holds it")
    tenant = (exporter or name).strip() if role == "exporter" else None
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    principal = Principal(key_id, name, role, tenant)  # type: ignore[arg-type]

    def work(conn: Connection) -> None:
        conn.execute(
            store.keys.insert().values(
                key_id=key_id,
                name=name,
                role=role,
                exporter=tenant,
                secret_sha256=_digest(secret),
                created_at=store.now_iso(),
                created_by=created_by,
            )
        )
        store.log(
            conn,
            created_by,
            "admin",
            "key.create",
            key_id,
            {"name": name, "role": role, "exporter": tenant},
        )

    ledger.db.write(work, lock=False)
    return NewKey(principal, f"aix_{key_id}_{secret}")


def authenticate(ledger: Ledger, header: str | None) -> Principal:
    """The caller of an `Authorization: Bearer <key>` header; `AuthError` when it does not check."""
    return check_key(ledger, bearer_token(header))


def bearer_token(header: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header; `AuthError` when there is none."""
    if not header:
        raise AuthError(
            "send your API key as `Authorization: Bearer <key>` (create one with `aiexport keys create`)"
        )
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("the Authorization header must read `Bearer <key>`")
    return token.strip()


_CACHE_SECONDS = 5.0
_cache: dict[tuple[int, str], tuple[float, Principal]] = {}
_cache_lock = threading.Lock()


def forget_keys() -> None:
    """Drop every cached key check (done on revocation; other processes wait `_CACHE_SECONDS`)."""
    with _cache_lock:
        _cache.clear()


def cached_key(ledger: Ledger, token: str) -> Principal | None:
    """The key's holder if it was checked in the last few seconds, else None (no database read)."""
    hit = _cache.get((id(ledger), _digest(token)))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    return None


def check_key(ledger: Ledger, token: str) -> Principal:
    """The key's holder; a valid key is remembered for a few seconds to spare a read per request."""
    slot = (id(ledger), _digest(token))
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(slot)
    if hit is not None and hit[0] > now:
        return hit[1]
    who = _check_key(ledger, token)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[slot] = (now + _CACHE_SECONDS, who)
    return who


def _check_key(ledger: Ledger, token: str) -> Principal:
    m = _KEY.match(token)
    row = None
    if m:
        with ledger.db.read() as conn:
            row = conn.execute(select(store.keys).where(store.keys.c.key_id == m.group(1))).first()
    stored = row.secret_sha256 if row is not None else _DUMMY
    ok = hmac.compare_digest(stored, _digest(m.group(2) if m else token))
    if row is None or not ok:
        raise AuthError("this API key is not valid; ask an admin for a new one")
    if row.revoked_at is not None:
        raise AuthError(f"this API key was revoked on {row.revoked_at}; ask an admin for a new one")
    return Principal(row.key_id, row.name, row.role, row.exporter)


def list_keys(ledger: Ledger) -> list[dict[str, str | None]]:
    cols = [c for c in store.keys.c if c.name != "secret_sha256"]
    with ledger.db.read() as conn:
        rows = conn.execute(select(*cols).order_by(store.keys.c.created_at, store.keys.c.key_id))
        return [dict(r._mapping) for r in rows]


def revoke_key(ledger: Ledger, key_id: str, *, actor: str, role: str) -> None:
    def work(conn: Connection) -> None:
        k = store.keys.c
        row = conn.execute(select(k.revoked_at).where(k.key_id == key_id)).first()
        if row is None:
            raise NotFound(f"no key with id {key_id!r}; `aiexport keys list` shows the ids")
        if row.revoked_at is None:
            conn.execute(
                store.keys.update().where(k.key_id == key_id).values(revoked_at=store.now_iso())
            )
            store.log(conn, actor, role, "key.revoke", key_id)

    ledger.db.write(work, lock=False)
    forget_keys()
