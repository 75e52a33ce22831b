"""One small world per test session, shared by the world tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiexport.world import generate_world


class World:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: pa.Table = pq.read_table(path / "orders.parquet")
        self.rows: list[dict[str, Any]] = self.table.to_pylist()
        self.truth: dict[str, Any] = json.loads((path / "truth.json").read_text(encoding="utf-8"))

    def scheme_order_ids(self) -> set[str]:
        return {o for s in self.truth["schemes"] for o in s["order_ids"]}

    def planted_order_ids(self) -> set[str]:
        return self.scheme_order_ids() | {o for d in self.truth["decoys"] for o in d["order_ids"]}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    out = tmp_path_factory.mktemp("world")
    generate_world(out, seed=11, orders=30_000, chunk_size=7_000)
    return World(out)
