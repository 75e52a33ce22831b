"""The background reproduces the calibration targets within tolerance."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter

import numpy as np

from aiexport.world._core import item_weights
from aiexport.world.calibration import COUNTRIES, ITEM_BY_ID, ITEMS

from .conftest import World


def _background(world: World) -> list[dict[str, object]]:
    planted = world.planted_order_ids()
    return [r for r in world.rows if r["order_id"] not in planted]


def test_destination_shares(world: World) -> None:
    rows = _background(world)
    got = Counter(str(r["destination"]) for r in rows)
    total_w = sum(c.weight for c in COUNTRIES)
    tier_got: Counter[int] = Counter()
    tier_want: Counter[int] = Counter()
    for c in COUNTRIES:
        tier_got[c.tier] += got[c.code]
        tier_want[c.tier] += c.weight / total_w
        # Each destination within 1.5 points of its share; the corporate-group and similar-name
        # decoys join the background with their own countries.
        assert abs(got[c.code] / len(rows) - c.weight / total_w) < 0.015, c.code
    for tier in (1, 2, 3):
        assert abs(tier_got[tier] / len(rows) - tier_want[tier]) < 0.02, tier
    assert tier_got[1] > tier_got[2] > tier_got[3]


def test_item_mix_follows_the_calibration_by_date(world: World) -> None:
    rows = [r for r in _background(world) if r["destination"] not in ("CN", "HK")]
    expected = np.zeros(len(ITEMS))
    for day, n in Counter(r["order_date"] for r in rows).items():
        expected += n * item_weights(day, False)  # type: ignore[arg-type]
    expected /= len(rows)
    got = Counter(str(r["item"]) for r in rows)
    for i, f in enumerate(ITEMS):
        assert abs(got[f.item] / len(rows) - expected[i]) < 0.015, f.item
    china = [r for r in _background(world) if r["destination"] in ("CN", "HK")]
    assert {str(r["item"]) for r in china} <= {"H20", "L20", "L2", "RTX-4090D"}
    assert all(r["order_date"] < dt.date(2025, 4, 15) for r in china if r["item"] == "H20"), (
        "no H20 to China after the April 2025 license requirement"
    )


def test_order_sizes_are_heavy_tailed(world: World) -> None:
    gpus = sorted(int(r["quantity"]) * int(r["chips_per_unit"]) for r in _background(world))  # type: ignore[call-overload]
    median = statistics.median(gpus)
    p99 = gpus[int(0.99 * len(gpus))]
    assert 4 <= median <= 16
    assert p99 >= 40 * median
    assert max(gpus) >= 1_000
    assert sum(g <= 8 for g in gpus) / len(gpus) > 0.45


def test_prices_match_the_market(world: World) -> None:
    ratios: dict[str, list[float]] = {}
    for r in _background(world):
        f = ITEM_BY_ID[str(r["item"])]
        years = (r["order_date"] - dt.date(2024, 10, 1)).days / 365.25  # type: ignore[operator]
        base = f.price_usd * max(0.4, 1 - f.decline_per_year * years)
        per_gpu = float(r["unit_price_usd"]) / int(r["chips_per_unit"])  # type: ignore[arg-type, call-overload]
        if r["item_kind"] == "computer":
            per_gpu /= 1.3
        ratios.setdefault(f.item, []).append(per_gpu / base)
    for item, rs in ratios.items():
        if len(rs) >= 30:
            assert 0.85 < statistics.median(rs) < 1.05, item


def test_dates_span_both_rule_sets_and_grow(world: World) -> None:
    days = [r["order_date"] for r in _background(world)]
    assert min(days) < dt.date(2025, 1, 13) and max(days) > dt.date(2026, 12, 1)
    h1_2025 = sum(dt.date(2025, 1, 1) <= d < dt.date(2025, 7, 1) for d in days)  # type: ignore[operator]
    h2_2026 = sum(dt.date(2026, 7, 1) <= d for d in days)  # type: ignore[operator]
    assert 1.5 < h2_2026 / h1_2025 < 2.3, "≈55 %/year growth over 1.5 years"
    weekend = sum(d.weekday() >= 5 for d in days) / len(days)  # type: ignore[attr-defined]
    assert weekend < 0.05
