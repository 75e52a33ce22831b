"""`aiexport world` writes the three files."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from aiexport.cli import app


def test_world_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["world", "--seed", "4", "--orders", "800", "--out", str(tmp_path), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"orders.csv", "orders.parquet", "truth.json"}
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert truth["orders"] == 800 and truth["seed"] == 4


def test_world_command_refuses_a_file_as_out(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("")
    result = CliRunner().invoke(app, ["world", "--orders", "10", "--out", str(f), "-q"])
    assert result.exit_code != 0
