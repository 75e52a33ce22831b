"""The bulk pass's safety nets: whatever way it gives up, the decisions stay the engine's.

The bulk pass (`batch._vector`) decides AIA, LPP and allocation orders with cumulative sums. It
redoes its analysis when a key's first order does not match the engine (`Retry`), and the whole
quota pass is redone order by order when the sequential kernel meets an account the bulk pass
owns (`_Conflict`). Both are forced here on the synthetic world and the results compared with the
per-order engine, record for record.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

import aiexport.batch._plan as plan
import aiexport.batch._vector as vector
from aiexport.batch import decide_file
from aiexport.io.orders import read_orders
from aiexport.rules.decide import Engine
from aiexport.rules.quota import MemoryQuota
from aiexport.rules.ruleset import load_rule_set
from aiexport.screen import decide_all
from aiexport.world import generate_world

ENGINE = Engine(load_rule_set("diffusion-2025"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, seed=5, orders=6_000)
    src = root / "orders.parquet"
    expected = [d.to_record() for d in decide_all(read_orders(src), ENGINE, MemoryQuota())]
    return src, expected


def test_bulk_pass_decides_most_quota_orders(world: tuple[Path, list[dict[str, Any]]]) -> None:
    src, expected = world
    got = decide_file(src, ENGINE)
    assert got.vec is not None and got.vec.rows.size > len(got.quota)
    assert list(got.records()) == expected


def test_a_key_whose_first_order_does_not_match_is_redone(
    world: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first two templates the bulk pass asks for are refused: their keys go to the engine,
    the analysis is redone without them, and every decision is still the engine's."""
    src, expected = world
    real = vector.branch_template
    refused: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> int | None:
        if len(refused) < 2:
            refused.append(1)
            return None
        return real(*args, **kwargs)

    monkeypatch.setattr(vector, "branch_template", flaky)
    got = decide_file(src, ENGINE)
    assert len(refused) == 2
    assert got.vec is not None
    assert list(got.records()) == expected


def test_a_pass_that_keeps_retrying_gives_way_to_the_kernel(
    world: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every template refused: after its last attempt the bulk pass gives up, the sequential
    kernel decides every quota order, and every decision is still the engine's."""
    src, expected = world
    refused: list[int] = []

    def never(*args: Any, **kwargs: Any) -> int | None:
        refused.append(1)
        return None

    monkeypatch.setattr(vector, "branch_template", never)
    got = decide_file(src, ENGINE)
    assert refused and got.vec is None
    assert list(got.records()) == expected


def test_an_account_the_kernel_meets_sends_the_pass_order_by_order(
    world: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claim that the bulk pass owns every account: the kernel's first read raises the conflict,
    and the pass is redone one order at a time, with the same decisions."""
    src, expected = world
    real = vector.vector_pass

    class Everything(frozenset[str]):
        def __contains__(self, item: object) -> bool:
            return True

    def greedy(*args: Any, **kwargs: Any) -> vector.VecResult | None:
        r = real(*args, **kwargs)
        if r is not None:
            r.owned = Everything()
            r.state.clear()
        return r

    calls: list[bool] = []
    real_pass = plan._quota_pass

    def spy(*args: Any, vectorise: bool) -> plan.QuotaPass:
        calls.append(vectorise)
        return real_pass(*args, vectorise=vectorise)

    monkeypatch.setattr(vector, "vector_pass", greedy)
    monkeypatch.setattr(plan, "_quota_pass", spy)
    got = decide_file(src, ENGINE)
    assert calls == [True, False]
    assert got.vec is None
    assert list(got.records()) == expected


def test_an_exhausted_allocation_is_scanned_past_its_first_refusal(tmp_path: Path) -> None:
    """Cited licenses to India draw its 790,000,000 TPP allocation until one does not fit; that
    one draws nothing, a later smaller license still fits, and license reviews in between read
    the allocation as it stands at their date. The bulk pass decides every order."""
    from aiexport.batch._vector import K_LIC, K_READ

    rows: list[dict[str, str]] = []
    sizes = [300_000_000, 300_000_000, 250_000_000, 150_000_000, 100_000_000, 5_000]
    for i, tpp in enumerate(sizes):
        day = f"2025-07-{2 * i + 1:02d}"
        rows.append(
            {"order_id": f"L-{i}", "order_date": day, "exporter": "X", "item": "CUSTOM",
             "tpp_per_unit": str(tpp), "die_area_mm2": "800", "quantity": "1",
             "destination": "IN", "consignee_name": f"Cloud {i}",
             "authorization": f"LICENSE:D-{i}"}
        )  # fmt: skip
        rows.append(
            {"order_id": f"R-{i}", "order_date": day, "exporter": "X", "item": "H100-SXM5",
             "quantity": str(10_000 + i), "destination": "IN", "consignee_name": "Reviewed",
             "authorization": ""}
        )  # fmt: skip
    path = tmp_path / "orders.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    expected = [d.to_record() for d in decide_all(read_orders(path), ENGINE, MemoryQuota())]
    got = decide_file(path, ENGINE)
    assert list(got.records()) == expected
    by_id = {r["order_id"]: r for r in expected}
    # 300M + 300M drawn; 250M would make 850M: refused; 150M fits (750M); 100M would make 850M:
    # refused; 5,000 fits.
    assert [by_id[f"L-{i}"]["quota"]["draws"] for i in range(6)] == [
        True, True, False, True, False, True,
    ]  # fmt: skip
    assert [by_id[f"L-{i}"]["quota"]["used_tpp"] for i in range(6)] == [
        300_000_000, 600_000_000, 600_000_000, 750_000_000, 750_000_000, 750_005_000,
    ]  # fmt: skip
    # Every cited license is decided in bulk; the reviews (each consignee's LPP allowance is
    # exceeded at once, so the kernel takes them) read the allocation as it stands at their date.
    assert got.vec is not None
    assert all(got.vec.slot[i] >= 0 for i in range(0, 12, 2))
    assert {K_LIC, K_READ} <= set(got.vec.kind.tolist())
    assert [by_id[f"R-{i}"]["quota"]["used_tpp"] for i in range(6)] == [
        300_000_000, 600_000_000, 600_000_000, 750_000_000, 750_000_000, 750_005_000,
    ]  # fmt: skip
