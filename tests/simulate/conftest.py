from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from aiexport.simulate import World, load_world


@pytest.fixture(scope="session")
def sample_world_dir() -> Path:
    return Path(str(resources.files("aiexport") / "data" / "sample_world"))


@pytest.fixture(scope="session")
def sample_world(sample_world_dir: Path) -> World:
    return load_world(sample_world_dir)
