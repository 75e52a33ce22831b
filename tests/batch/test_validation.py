"""Bad rows: the batch path reports exactly what `io.orders` reports (message, line, column).

Each case is written as CSV (plain and quoted), JSON Lines and Parquet, preceded and followed by
good rows; the batch path must raise the same error type with the same text as the reference
reader, and `aiexport screen` must write nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiexport.batch import decide_file
from aiexport.errors import AiexportError
from aiexport.io.orders import read_orders
from aiexport.rules.decide import Engine
from aiexport.rules.ruleset import load_rule_set

ENGINE = Engine(load_rule_set("diffusion-2025"))
GOOD: dict[str, Any] = {
    "order_id": "G",
    "order_date": "2025-06-01",
    "exporter": "X",
    "item": "H100-SXM5",
    "quantity": "10",
    "destination": "IN",
    "consignee_name": "Acme",
}
BAD = {
    "bad date": {"order_date": "2025-13-01"},
    "date words": {"order_date": "June 1st"},
    "unknown item": {"item": "NO-SUCH-CHIP"},
    "no item": {"item": ""},
    "quantity zero": {"quantity": "0"},
    "quantity negative": {"quantity": "-3"},
    "quantity fraction": {"quantity": "1.5"},
    "quantity text": {"quantity": "ten"},
    "unknown country": {"destination": "XX"},
    "country name": {"destination": "India"},
    "bad hq": {"consignee_hq_country": "ZZ"},
    "bad payer country": {"payer_country": "Q1"},
    "unknown authorization": {"authorization": "GBS"},
    "license without id": {"authorization": "LICENSE:"},
    "bad boolean": {"consignee_government": "maybe"},
    "negative tpp": {"tpp_per_unit": "-5"},
    "tpp text": {"tpp_per_unit": "lots"},
    "die area zero": {"die_area_mm2": "0", "tpp_per_unit": "5000"},
    "weights without ops": {"item_kind": "model_weights"},
    "bad kind": {"item_kind": "gpu"},
    "bad end use": {"end_use": "mining"},
    "missing name": {"consignee_name": "  "},
    "missing exporter": {"exporter": ""},
    "missing order id": {"order_id": ""},
    "bad founded": {"consignee_founded": "yesterday"},
    "chips zero": {"chips_per_unit": "0"},
    "duplicate id": {"order_id": "G-0"},
}
COLUMNS = sorted({*GOOD, *(k for case in BAD.values() for k in case), "payer_country"})


def rows_with(case: dict[str, str], n_before: int = 3, n_after: int = 2) -> list[dict[str, str]]:
    rows = [{**GOOD, "order_id": f"G-{i}"} for i in range(n_before)]
    rows.append({**GOOD, "order_id": "BAD", **case})
    rows += [{**GOOD, "order_id": f"H-{i}"} for i in range(n_after)]
    return rows


def write(rows: list[dict[str, str]], path: Path, quoted: bool = False) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(
                fh, fieldnames=COLUMNS, quoting=csv.QUOTE_ALL if quoted else csv.QUOTE_MINIMAL
            )
            w.writeheader()
            for r in rows:
                w.writerow({c: r.get(c, "") for c in COLUMNS})
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({k: v for k, v in r.items() if v != ""}) + "\n")
                fh.write("\n")  # blank lines are skipped but counted
    else:
        pq.write_table(
            pa.table({c: pa.array([r.get(c) or None for r in rows], pa.string()) for c in COLUMNS}),
            path,
        )
    return path


def outcome(fn: Any, path: Path) -> tuple[str, str] | None:
    try:
        fn(path)
    except AiexportError as exc:
        return type(exc).__name__, str(exc)
    return None


def check(path: Path) -> tuple[str, str] | None:
    """Reference errors are raised by reading (rows) or by deciding (the engine)."""
    from aiexport.rules.quota import MemoryQuota
    from aiexport.screen import decide_all

    expected = outcome(
        lambda p: decide_all(read_orders(p), ENGINE, MemoryQuota(), file=str(p)), path
    )
    got = outcome(lambda p: decide_file(p, ENGINE), path)
    assert got == expected
    return got


@pytest.mark.parametrize("fmt", [".csv", "quoted.csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_row_same_error(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / ("orders" + fmt if fmt.startswith(".") else fmt)
    write(rows_with(BAD[name]), path, quoted=fmt == "quoted.csv")
    got = check(path)
    assert got is not None, f"{name}: no error"
    assert "line" in got[1]


def test_first_bad_row_in_file_order_wins(tmp_path: Path) -> None:
    rows = [*rows_with(BAD["bad date"]), {**GOOD, "order_id": "Z", "quantity": "0"}]
    rows.insert(1, {**GOOD, "order_id": "EARLY", "destination": "XX"})
    got = check(write(rows, tmp_path / "o.csv"))
    assert got is not None and "line 3" in got[1] and "destination" in got[1]


def test_ragged_csv_and_bad_json_after_a_bad_row(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_text(
        "order_id,order_date,exporter,item,quantity,destination,consignee_name\n"
        "1,2025-06-01,X,H100-SXM5,1,IN,A\n"
        "2,2025-06-01,X,H100-SXM5,1,IN,B,extra\n"
    )
    assert check(p) is not None
    j = tmp_path / "j.jsonl"
    j.write_text(
        json.dumps({**GOOD, "quantity": 0}) + "\n" + "{not json\n",
    )
    got = check(j)
    assert got is not None and "quantity" in got[1]
    j.write_text(json.dumps(GOOD) + "\n" + "[1, 2]\n")
    assert check(j) is not None


def test_typed_parquet_values(tmp_path: Path) -> None:
    """Typed columns: the message shows the value as the reference reader sees it."""
    p = tmp_path / "t.parquet"
    table = pa.table(
        {
            "order_id": pa.array([1, 2, 3], pa.int64()),
            "order_date": pa.array([dt.date(2025, 6, 1)] * 3, pa.date32()),
            "exporter": ["X"] * 3,
            "item": ["H100-SXM5"] * 3,
            "quantity": pa.array([1.0, 2.5, 3.0], pa.float64()),
            "destination": ["IN"] * 3,
            "consignee_name": ["A"] * 3,
            "consignee_government": pa.array([True, False, None]),
        }
    )
    pq.write_table(table, p)
    got = check(p)
    assert got is not None and "line 2" in got[1]


def test_engine_error_reported_for_first_order_in_processing_order(tmp_path: Path) -> None:
    """An item whose die area decides its class, given without one: the engine's own error."""
    rows = [
        {**GOOD, "order_id": "A", "order_date": "2025-07-01", "item": "", "tpp_per_unit": "3000"},
        {**GOOD, "order_id": "B", "order_date": "2025-06-01", "item": "", "tpp_per_unit": "3000"},
    ]
    got = check(write(rows, tmp_path / "e.csv"))
    assert got is not None and "line 3" in got[1]


def test_cli_writes_nothing_on_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from aiexport.cli import app

    src = write(rows_with(BAD["bad date"]), tmp_path / "o.parquet")
    out = tmp_path / "d.parquet"
    result = CliRunner().invoke(app, ["screen", str(src), "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.parquet"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_cli_engines_write_identical_files(tmp_path: Path, suffix: str) -> None:
    from typer.testing import CliRunner

    from aiexport.cli import app

    runner = CliRunner()
    outs = []
    for engine in ("batch", "per-order"):
        out = tmp_path / f"{engine}{suffix}"
        result = runner.invoke(
            app, ["screen", "--sample", "--out", str(out), "--json", "--engine", engine]
        )
        assert result.exit_code == 0, result.output
        outs.append((out, result.stdout))
    (a, sa), (b, sb) = outs
    assert sa == sb
    if suffix == ".parquet":
        assert pq.read_table(a).equals(pq.read_table(b))
    else:
        assert a.read_bytes() == b.read_bytes()
