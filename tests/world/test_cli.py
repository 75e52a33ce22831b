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


def test_world_command_plants_what_it_is_told(tmp_path: Path) -> None:
    args = ["world", "--orders", "3000", "--out", str(tmp_path), "-q"]
    args += ["--plant", "structuring=4", "--plant", "surge=0", "--plant", "front=0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    kinds = [s["kind"] for s in truth["schemes"]]
    assert kinds.count("structuring") == 4 and "surge" not in kinds and "front" not in kinds
    bad = CliRunner().invoke(app, ["world", "--out", str(tmp_path), "--plant", "nonsense=2"])
    assert bad.exit_code != 0
