"""Same seed, same bytes; another seed, another world."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiexport.world import generate_world

FILES = ("orders.csv", "orders.parquet", "truth.json")


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_world(a, seed=5, orders=3_000, chunk_size=1_000)
    generate_world(b, seed=5, orders=3_000, chunk_size=1_000)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_other_seed_gives_other_world(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_world(a, seed=5, orders=1_000)
    generate_world(b, seed=6, orders=1_000)
    assert (a / "orders.csv").read_bytes() != (b / "orders.csv").read_bytes()


def test_exact_order_count_even_when_tiny(tmp_path: Path) -> None:
    for n in (1, 7, 250):
        s = generate_world(tmp_path / str(n), seed=1, orders=n)
        assert s.orders == n
        lines = (tmp_path / str(n) / "orders.csv").read_text(encoding="utf-8").splitlines()
        assert len(lines) == n + 1


def test_chunk_size_changes_no_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from aiexport.world import _generate

    monkeypatch.setattr(_generate, "BLOCK_LINES", 300)  # many blocks in a small world
    a, b = tmp_path / "a", tmp_path / "b"
    generate_world(a, seed=9, orders=4_000, chunk_size=1_000)
    generate_world(b, seed=9, orders=4_000, chunk_size=250_000)
    assert (a / "orders.csv").read_bytes() == (b / "orders.csv").read_bytes()
    assert pq.read_table(a / "orders.parquet").equals(pq.read_table(b / "orders.parquet"))
