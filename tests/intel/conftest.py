"""Fixtures of the enforcement-analytics tests: the bundled list, a private list state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from aiexport.intel import Screener, ScreeningList, bundled_list_path, load_lists


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """List snapshots go to a temporary state dir, never the user's."""
    monkeypatch.setenv("AIEXPORT_STATE_DIR", str(tmp_path / "state"))


@pytest.fixture
def synthetic_list() -> ScreeningList:
    return load_lists([bundled_list_path()])


@pytest.fixture
def screener(synthetic_list: ScreeningList) -> Screener:
    return Screener(synthetic_list)
