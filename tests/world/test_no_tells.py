"""Formatting is not a signal: planted consignees are written as noisily as legitimate ones.

A detector that learns "phone written as 00cc..." or "surname in capitals" must not find the
schemes; only the planted behaviours (shared identifiers, sizes, dates, payers...) may.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import World


def _phone(p: dict[str, Any]) -> str:
    s = str(p["consignee_phone"])
    if s.startswith("00"):
        return "00"
    if s.startswith("("):
        return "paren"
    if s.startswith("+"):
        return "plus-space" if " " in s else "plus"
    return "dash"


def _officer(p: dict[str, Any]) -> str:
    first = str(p["consignee_officers"]).split(";")[0].strip()
    if "," in first:
        return "comma"
    if re.match(r"^[A-Z]\. ", first):
        return "initial"
    head = first.split()[0] if first else ""
    return "upper" if len(head) > 1 and head.isupper() else "plain"


FEATURES: dict[str, Callable[[dict[str, Any]], object]] = {
    "phone format": _phone,
    "officer format": _officer,
    "name in capitals": lambda p: str(p["consignee_name"]).isupper(),
    "address in capitals": lambda p: str(p["consignee_address"]).isupper(),
    "address ends with country": lambda p: str(p["consignee_address"]).count(",") >= 2,
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_format_is_distributed_alike(world: World, feature: str) -> None:
    planted = {c["consignee_id"] for s in world.truth["schemes"] for c in s["consignees"]}
    parties: dict[str, dict[str, Any]] = {}
    for r in world.rows:
        parties.setdefault(r["consignee_id"], r)
    f = FEATURES[feature]
    a = Counter(f(p) for cid, p in parties.items() if cid in planted)
    b = Counter(f(p) for cid, p in parties.items() if cid not in planted)
    na, nb = sum(a.values()), sum(b.values())
    assert na >= 50
    tv = 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in set(a) | set(b))
    assert tv < 0.2, (feature, dict(a), dict(b))
