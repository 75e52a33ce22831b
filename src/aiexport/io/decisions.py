"""Writing decisions (contract §2) as JSON Lines, CSV or Parquet, chosen by extension.

Files are written to a temporary name beside the target and renamed at the end, so a failed run
leaves no partial output.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiexport.errors import InputError

FIELDS = (
    "order_id",
    "eccn",
    "tpp_total",
    "h100_equivalents",
    "destination_tier",
    "status",
    "authority",
    "review_policy",
    "obligations",
    "quota",
    "reasons",
    "rule_set",
)
FORMATS = (".jsonl", ".ndjson", ".json", ".csv", ".parquet")


def output_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"unknown output type {suffix!r}: give a .jsonl, .csv or .parquet file", file=str(path)
        )
    return "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else suffix[1:]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path that replaces `path` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _csv_cell(key: str, value: Any) -> Any:
    if value is None:
        return ""
    if key == "obligations":
        return ";".join(value)
    if key == "reasons":
        return ";".join(f"{r['rule']}: {r['text']} [{r['citation']}]" for r in value)
    if key == "quota":
        return json.dumps(value, separators=(",", ":"))
    return value


def write_records(records: Iterable[dict[str, Any]], path: str | Path) -> int:
    """Write decision records; returns how many were written."""
    p = Path(path)
    fmt = output_format(p)
    n = 0
    with atomic_path(p) as tmp:
        if fmt == "jsonl":
            with tmp.open("w", encoding="utf-8") as fh:
                for rec in records:
                    fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
                    fh.write("\n")
                    n += 1
        elif fmt == "csv":
            with tmp.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
                writer.writeheader()
                for rec in records:
                    writer.writerow({k: _csv_cell(k, rec.get(k)) for k in FIELDS})
                    n += 1
        else:
            n = _write_parquet(records, tmp)
    return n


def parquet_schema() -> Any:
    import pyarrow as pa

    quota = pa.struct(
        [
            ("account", pa.string()),
            ("used_tpp", pa.float64()),
            ("limit_tpp", pa.float64()),
            ("remaining_tpp", pa.float64()),
            ("draws", pa.bool_()),
        ]
    )
    reason = pa.struct([("rule", pa.string()), ("citation", pa.string()), ("text", pa.string())])
    return pa.schema(
        [
            ("order_id", pa.string()),
            ("eccn", pa.string()),
            ("tpp_total", pa.float64()),
            ("h100_equivalents", pa.float64()),
            ("destination_tier", pa.int8()),
            ("status", pa.string()),
            ("authority", pa.string()),
            ("review_policy", pa.string()),
            ("obligations", pa.list_(pa.string())),
            ("quota", quota),
            ("quota_accounts", pa.string()),
            ("reasons", pa.list_(reason)),
            ("rule_set", pa.string()),
        ]
    )


def _write_parquet(records: Iterable[dict[str, Any]], path: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    n = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[dict[str, Any]] = []
        for rec in records:
            q = rec.get("quota")
            row = dict(rec)
            row["quota"] = (
                None
                if q is None
                else {
                    k: q.get(k)
                    for k in ("account", "used_tpp", "limit_tpp", "remaining_tpp", "draws")
                }
            )
            row["quota_accounts"] = None if q is None else json.dumps(q.get("accounts", [q]))
            batch.append(row)
            if len(batch) >= 50_000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch or n == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n
