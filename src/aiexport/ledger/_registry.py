"""Registries of licenses and Data Center VEU authorizations held by our users.

A registered license is an individual license BIS has granted; it counts against its destination's
country allocation (`allocation/<CC>`, § 742.6(b)(10)(iii)(B)) from the moment it is registered,
because the rule counts license approvals, not shipments. VEU records tell the decision engine
which holder may ship where under § 748.15. Rows are written once; re-adding the same record is a
no-op, a different record under the same id is a conflict.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from aiexport.errors import Conflict, InputError
from aiexport.ledger import _tables as t
from aiexport.ledger._amounts import from_micro, to_micro
from aiexport.rules.quota import LicenseInfo, VeuInfo

VEU_KINDS = ("UVEU", "NVEU")


def default_valid_until(valid_from: dt.date) -> dt.date:
    """One year of validity: through the day before the first anniversary.

    >>> default_valid_until(dt.date(2025, 3, 1))
    datetime.date(2026, 2, 28)
    >>> default_valid_until(dt.date(2024, 2, 29))
    datetime.date(2025, 2, 27)
    """
    try:
        anniversary = valid_from.replace(year=valid_from.year + 1)
    except ValueError:  # 29 February
        anniversary = dt.date(valid_from.year + 1, 2, 28)
    return anniversary - dt.timedelta(days=1)


def license_row(info: LicenseInfo) -> dict[str, Any]:
    if info.valid_until < info.valid_from:
        raise InputError(
            f"license {info.license_id}: valid_until {info.valid_until} is before valid_from"
        )
    if len(info.destination) != 2 or not info.destination.isalpha():
        raise InputError(f"license {info.license_id}: destination must be ISO alpha-2")
    return {
        "license_id": info.license_id,
        "destination": info.destination.upper(),
        "consignee": info.consignee,
        "tpp": to_micro(info.tpp),
        "valid_from": info.valid_from.isoformat(),
        "valid_until": info.valid_until.isoformat(),
    }


def _license(row: Any) -> LicenseInfo:
    return LicenseInfo(
        license_id=row.license_id,
        destination=row.destination,
        consignee=row.consignee,
        tpp=from_micro(row.tpp),
        valid_from=dt.date.fromisoformat(row.valid_from),
        valid_until=dt.date.fromisoformat(row.valid_until),
    )


def get_license(conn: Connection, license_id: str) -> LicenseInfo | None:
    row = conn.execute(select(t.licenses).where(t.licenses.c.license_id == license_id)).first()
    return None if row is None else _license(row)


def list_licenses(conn: Connection) -> list[LicenseInfo]:
    rows = conn.execute(select(t.licenses).order_by(t.licenses.c.license_id))
    return [_license(r) for r in rows]


def veu_row(info: VeuInfo) -> dict[str, Any]:
    if info.kind not in VEU_KINDS:
        raise InputError(f"VEU {info.veu_id}: kind must be UVEU or NVEU, not {info.kind!r}")
    if info.kind == "NVEU" and len(info.countries) != 1:
        raise InputError(
            f"NVEU {info.veu_id}: a National VEU covers exactly one country "
            "(§ 748.15(a)(2)(iii)); register one NVEU per country"
        )
    if info.valid_until is not None and info.valid_until < info.valid_from:
        raise InputError(f"VEU {info.veu_id}: valid_until is before valid_from")
    return {
        "veu_id": info.veu_id,
        "kind": info.kind,
        "holder": info.holder,
        "holder_name": info.holder_name,
        "hq_country": info.hq_country.upper(),
        "countries": ",".join(sorted(c.upper() for c in info.countries)),
        "valid_from": info.valid_from.isoformat(),
        "valid_until": info.valid_until.isoformat() if info.valid_until else None,
    }


def _veu(row: Any) -> VeuInfo:
    return VeuInfo(
        veu_id=row.veu_id,
        kind=row.kind,
        holder=row.holder,
        hq_country=row.hq_country,
        countries=frozenset(c for c in row.countries.split(",") if c),
        valid_from=dt.date.fromisoformat(row.valid_from),
        valid_until=dt.date.fromisoformat(row.valid_until) if row.valid_until else None,
        holder_name=row.holder_name,
    )


def get_veu(conn: Connection, veu_id: str) -> VeuInfo | None:
    row = conn.execute(select(t.veus).where(t.veus.c.veu_id == veu_id)).first()
    return None if row is None else _veu(row)


def veus_for(conn: Connection, holder: str) -> Sequence[VeuInfo]:
    rows = conn.execute(select(t.veus).where(t.veus.c.holder == holder).order_by(t.veus.c.veu_id))
    return [_veu(r) for r in rows]


def list_veus(conn: Connection) -> list[VeuInfo]:
    return [_veu(r) for r in conn.execute(select(t.veus).order_by(t.veus.c.veu_id))]


def insert_once(
    conn: Connection, table: Any, key_col: str, row: dict[str, Any], extra: dict[str, Any]
) -> bool:
    """Insert `row` unless an identical one exists; return True when inserted."""
    col = table.c[key_col]
    existing = conn.execute(select(table).where(col == row[key_col])).first()
    if existing is not None:
        m = existing._mapping
        if any(m[k] != v for k, v in row.items()):
            raise Conflict(
                f"{key_col} {row[key_col]!r} is already registered with different details; "
                "use a new id for a new authorization"
            )
        return False
    conn.execute(table.insert().values(**row, **extra))
    return True
