"""Malformed order rows stop `aiexport screen` (contract §1, issue 2 §6).

For CSV, JSON Lines and Parquet, and for each kind of malformed row, the run exits non-zero, the
message names the file, the line (Parquet: the row) and the column, and no output is written:
the whole batch is refused and nothing is recorded.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer

from aiexport.cli import app
from aiexport.errors import InputError

# Typer's CliRunner rebuilds the click command on every call; build it once for the matrix and
# let errors propagate (the console entry point's handling is tested through a subprocess).
CLI = typer.main.get_command(app)


def invoke(args: list[str]) -> BaseException | None:
    """Run `aiexport ARGS` in-process; the error it stopped with, if any."""
    try:
        CLI.main(args=args, prog_name="aiexport", standalone_mode=False)
    except Exception as exc:
        return exc
    return None


GOOD: list[dict[str, Any]] = [
    {
        "order_id": "A-1",
        "order_date": "2025-06-02",
        "exporter": "Nvidia Corp",
        "item": "H100-SXM5",
        "quantity": 100,
        "destination": "IN",
        "consignee_name": "Yotta Data Services",
        "datacenter": "true",
        "authorization": "",
        "consignee_hq_country": "IN",
    },
    {
        "order_id": "A-2",
        "order_date": "2025-06-03",
        "exporter": "Supermicro",
        "item": "HGX-H100-8",
        "quantity": 10,
        "destination": "DE",
        "consignee_name": "Aleph Rechenzentrum GmbH",
        "datacenter": "",
        "authorization": "AIA",
        "consignee_hq_country": "",
    },
]


@dataclass(frozen=True)
class Bad:
    """One kind of malformed row: how to spoil the third row, and the column to blame."""

    kind: str
    spoil: Callable[[dict[str, Any]], dict[str, Any]]
    column: str
    every_row: bool = False


def _set(**changes: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda row: {**row, **changes}


def _drop(column: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda row: {k: v for k, v in row.items() if k != column}


BAD = [
    Bad("month 13", _set(order_date="2025-13-01"), "order_date"),
    Bad("30 February", _set(order_date="2025-02-30"), "order_date"),
    Bad("not a date", _set(order_date="June 2nd"), "order_date"),
    Bad("unknown item, no tpp_per_unit", _set(item="NOPE-9000"), "item"),
    Bad("no item, no tpp_per_unit", _set(item=""), "item"),
    Bad("quantity zero", _set(quantity=0), "quantity"),
    Bad("quantity negative", _set(quantity=-5), "quantity"),
    Bad("quantity fractional", _set(quantity=1.5), "quantity"),
    Bad("quantity text", _set(quantity="ten"), "quantity"),
    Bad("unknown destination", _set(destination="XX"), "destination"),
    Bad("three-letter destination", _set(destination="IND"), "destination"),
    Bad("unknown headquarters", _set(consignee_hq_country="ZZ"), "consignee_hq_country"),
    Bad("unknown authorization", _set(authorization="STA"), "authorization"),
    Bad("license without id", _set(authorization="LICENSE:"), "authorization"),
    Bad("bad boolean", _set(datacenter="maybe"), "datacenter"),
    Bad("duplicate order_id", _set(order_id="A-1"), "order_id"),
    Bad("missing exporter", _set(exporter=""), "exporter"),
    Bad("missing destination column", _drop("destination"), "destination", every_row=True),
    Bad("missing quantity column", _drop("quantity"), "quantity", every_row=True),
]


def _third(bad: Bad) -> dict[str, Any]:
    return bad.spoil({**GOOD[0], "order_id": "A-3", "order_date": "2025-06-04"})


def rows_for(bad: Bad) -> list[dict[str, Any]]:
    if bad.every_row:
        return [bad.spoil(r) for r in (*GOOD, _third(Bad("", lambda r: r, "")))]
    return [*GOOD, _third(bad)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(_text(r.get(c)) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: dict[str, list[Any]] = {}
    for col in rows[0]:
        values = [r.get(col) for r in rows]
        kinds = {type(v) for v in values if v not in (None, "")}
        if kinds <= {int}:
            columns[col] = [None if v == "" else v for v in values]
        elif kinds <= {int, float}:
            columns[col] = [None if v in ("", None) else float(v) for v in values]
        else:
            columns[col] = [_text(v) for v in values]
    pq.write_table(pa.table(columns), path)


WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], None]] = {
    "csv": write_csv,
    "jsonl": write_jsonl,
    "parquet": write_parquet,
}
# The position an error names for the third row: CSV counts the header line.
THIRD = {"csv": 4, "jsonl": 3, "parquet": 3}
FIRST = {"csv": 2, "jsonl": 1, "parquet": 1}


def screen(
    tmp_path: Path, fmt: str, rows: list[dict[str, Any]]
) -> tuple[BaseException | None, Path, Path]:
    orders = tmp_path / f"orders.{fmt}"
    WRITERS[fmt](orders, rows)
    out = tmp_path / "decisions.jsonl"
    return invoke(["screen", str(orders), "--out", str(out), "--json"]), orders, out


def test_the_good_rows_screen_cleanly_in_every_format(tmp_path: Path) -> None:
    for fmt in WRITERS:
        err, _, out = screen(tmp_path, fmt, list(GOOD))
        assert err is None, (fmt, err)
        decided = [json.loads(line) for line in out.read_text().splitlines()]
        assert [d["authority"] for d in decided] == ["LPP", "AIA"], fmt
        out.unlink()


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("bad", BAD, ids=lambda b: b.kind)
def test_a_malformed_row_refuses_the_whole_batch(tmp_path: Path, fmt: str, bad: Bad) -> None:
    err, orders, out = screen(tmp_path, fmt, rows_for(bad))
    assert isinstance(err, InputError), repr(err)
    message = str(err)
    position = FIRST[fmt] if bad.every_row else THIRD[fmt]
    assert str(orders) in message, message
    assert re.search(rf"\b(line|row) {position}\b", message), message
    assert f"'{bad.column}'" in message, message
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [orders.name]


def test_the_command_line_prints_the_position_and_exits_non_zero(tmp_path: Path) -> None:
    """Through the console entry point (one format: the matrix above runs in-process)."""
    fmt = "parquet"
    orders = tmp_path / f"orders.{fmt}"
    WRITERS[fmt](orders, [*GOOD, _third(BAD[0])])
    out = tmp_path / "decisions.parquet"
    proc = subprocess.run(
        [sys.executable, "-m", "aiexport", "screen", str(orders), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    stderr = " ".join(proc.stderr.split())
    assert orders.name in stderr and "order_date" in stderr, stderr
    assert re.search(rf"\b(line|row) {THIRD[fmt]}\b", stderr), stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [orders.name]


def test_a_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    write_csv(orders, list(GOOD))
    orders.write_text(orders.read_text() + "A-3,2025-06-04,X,H100,1,IN,Z,true,,IN,surplus\n")
    out = tmp_path / "d.jsonl"
    err = invoke(["screen", str(orders), "--out", str(out)])
    assert isinstance(err, InputError)
    assert str(orders) in str(err) and "line 4" in str(err)
    assert not out.exists()


def test_a_line_that_is_not_json_is_refused(tmp_path: Path) -> None:
    orders = tmp_path / "orders.jsonl"
    write_jsonl(orders, list(GOOD))
    orders.write_text(orders.read_text() + '{"order_id": "A-3",\n')
    out = tmp_path / "d.jsonl"
    err = invoke(["screen", str(orders), "--out", str(out)])
    assert isinstance(err, InputError)
    assert str(orders) in str(err) and "line 3" in str(err)
    assert not out.exists()


def test_model_weights_without_training_ops_are_refused(tmp_path: Path) -> None:
    row = {**GOOD[0], "order_id": "A-3", "item": "frontier-model", "item_kind": "model_weights"}
    rows = [{**GOOD[0], "item_kind": ""}, {**GOOD[1], "item_kind": ""}, row]
    err, orders, out = screen(tmp_path, "csv", rows)
    assert isinstance(err, InputError)
    message = str(err)
    assert str(orders) in message and "line 4" in message and "'training_ops'" in message
    assert not out.exists()
