"""The core commands end to end, through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from aiexport.cli import app

runner = CliRunner()


def test_screen_sample_writes_every_decision(tmp_path: Path) -> None:
    out = tmp_path / "d.jsonl"
    result = runner.invoke(app, ["screen", "--sample", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    summary = json.loads(result.stdout)
    assert summary["orders"] == len(lines) > 10
    first = json.loads(lines[0])
    assert first["order_id"] == "S-001" and first["authority"] == "AIA"


def test_decide_json_prints_contract_record() -> None:
    result = runner.invoke(
        app,
        [
            "decide",
            "--item",
            "H100-SXM5",
            "--quantity",
            "100",
            "--to",
            "IN",
            "--date",
            "2025-06-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["authority"] == "LPP"
    assert rec["tpp_total"] == 1_583_200
    assert all(r["citation"] for r in rec["reasons"])


def test_bad_row_exits_nonzero_and_writes_nothing(tmp_path: Path) -> None:
    orders = tmp_path / "o.csv"
    orders.write_text(
        "order_id,order_date,exporter,item,quantity,destination,consignee_name\n"
        "1,2025-06-01,X,H100-SXM5,1,IN,A\n"
        "2,2025-13-01,X,H100-SXM5,1,IN,B\n"
    )
    out = tmp_path / "d.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "aiexport", "screen", str(orders), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "line 3" in proc.stderr and "order_date" in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [orders]
