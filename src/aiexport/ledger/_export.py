"""Export the entries to Parquet for analytics (DuckDB reads it directly)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from aiexport.ledger._amounts import SCALE
from aiexport.ledger._entries import parse_iso

_COLUMNS = (
    ("seq", "int64"),
    ("txn", "string"),
    ("kind", "string"),
    ("account", "string"),
    ("amount_tpp", "decimal"),
    ("order_id", "string"),
    ("actor", "string"),
    ("citation", "string"),
    ("created_at", "timestamp"),
    ("expires_at", "timestamp"),
    ("ref_seq", "int64"),
    ("idem_key", "string"),
    ("prev_hash", "string"),
    ("hash", "string"),
)


def export_parquet(ledger: Any, out: str | Path, *, batch: int = 50_000) -> int:
    """Write every entry, in chain order, to `out`; return the number written.

    Amounts are exact `decimal128(24, 6)` TPP, so the file sums to the same balances.
    """
    import pyarrow as pa  # imported here: it is heavy, and only exports need it
    import pyarrow.parquet as pq

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "decimal": pa.decimal128(24, 6),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    schema = pa.schema([(name, types[kind]) for name, kind in _COLUMNS])
    names = schema.names
    written = 0
    with pq.ParquetWriter(str(out), schema) as writer:
        cols: dict[str, list[Any]] = {n: [] for n in names}

        def flush() -> None:
            if cols["seq"]:
                writer.write_table(pa.table(cols, schema=schema))
                for v in cols.values():
                    v.clear()

        for row in ledger.iter_rows(batch):
            m = row._asdict()
            for n in names:
                if n == "amount_tpp":
                    cols[n].append(Decimal(m["amount"]) / SCALE)
                elif n in ("created_at", "expires_at"):
                    cols[n].append(parse_iso(m[n]) if m[n] else None)
                else:
                    cols[n].append(m[n])
            written += 1
            if len(cols["seq"]) >= batch:
                flush()
        flush()
    return written
