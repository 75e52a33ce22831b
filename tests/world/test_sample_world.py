"""The bundled sample world is intact and is what the documented command produces."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from aiexport.world import generate_world

SAMPLE = Path(str(resources.files("aiexport") / "data" / "sample_world"))
FILES = ("orders.csv", "orders.parquet", "truth.json")


def test_sample_world_matches_its_truth() -> None:
    truth = json.loads((SAMPLE / "truth.json").read_text(encoding="utf-8"))
    for name, digest in truth["files"].items():
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == digest, name
    assert truth["orders"] == 4_000 and truth["seed"] == 2025
    assert {s["kind"] for s in truth["schemes"]} >= {"structuring", "transshipment", "front"}


def test_sample_world_is_reproducible(tmp_path: Path) -> None:
    """If this fails after a generator change, regenerate the sample (see its README.md)."""
    generate_world(tmp_path, seed=2025, orders=4_000)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), name
