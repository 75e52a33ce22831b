from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from typer.testing import CliRunner

from aiexport.cli import app
from aiexport.intel import bundled_list_path

runner = CliRunner()
SAMPLE = Path(str(resources.files("aiexport") / "data" / "sample_world" / "orders.parquet"))


def test_investigate_and_explain(tmp_path: Path) -> None:
    out = tmp_path / "cases.json"
    r = runner.invoke(app, ["investigate", str(SAMPLE), "--out", str(out), "--top", "3"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    first = doc["cases"][0]["case_id"]
    r = runner.invoke(app, ["investigate", "--explain", first, "--cases", str(out)])
    assert r.exit_code == 0, r.output
    assert first in r.output and "Signals" in r.output and "Timeline" in r.output
    r = runner.invoke(app, ["investigate", "--explain", "CASE-NOPE", "--cases", str(out)])
    assert r.exit_code != 0


def test_screen_parties(tmp_path: Path) -> None:
    lst = str(bundled_list_path())
    r = runner.invoke(
        app,
        ["screen-parties", "中科天枢超算有限公司", "Apex Technology Ltd", "--lists", lst, "--json"],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc[0]["matches"][0]["source"] == "EL" and doc[1]["matches"] == []
    names = tmp_path / "names.txt"
    names.write_text("Kepler Datatech FZE,AE\nNobody Ltd\n")
    r = runner.invoke(app, ["screen-parties", str(names), "--lists", lst])
    assert r.exit_code == 0 and "Kepler" in r.output


def test_screen_with_lists(tmp_path: Path) -> None:
    orders = tmp_path / "o.csv"
    orders.write_text(
        "order_id,order_date,exporter,item,quantity,destination,consignee_name,consignee_country\n"
        "A1,2025-06-01,Acme,H100-SXM5,8,IN,Kepler Data-Tech F.Z.E.,AE\n"
    )
    out = tmp_path / "d.jsonl"
    r = runner.invoke(
        app,
        ["screen", str(orders), "--out", str(out), "--lists", str(bundled_list_path()), "--json"],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text().splitlines()[0])
    assert (rec["status"], rec["review_policy"]) == ("license_required", "presumption_of_denial")
    assert any("744.11" in x["citation"] for x in rec["reasons"])
