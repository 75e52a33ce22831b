"""Export the entries to Parquet for analytics (DuckDB reads it directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from aiexport.ledger._amounts import SCALE

_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("txn", pa.string()),
        ("kind", pa.string()),
        ("account", pa.string()),
        ("amount_tpp", pa.decimal128(24, 6)),
        ("order_id", pa.string()),
        ("actor", pa.string()),
        ("citation", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("expires_at", pa.timestamp("us", tz="UTC")),
        ("ref_seq", pa.int64()),
        ("idem_key", pa.string()),
        ("prev_hash", pa.string()),
        ("hash", pa.string()),
    ]
)


def export_parquet(ledger: Any, out: str | Path, *, batch: int = 50_000) -> int:
    """Write every entry, in chain order, to `out`; return the number written.

    Amounts are exact `decimal128(24, 6)` TPP, so the file sums to the same balances.
    """
    from decimal import Decimal

    from aiexport.ledger._entries import parse_iso

    names = _SCHEMA.names
    written = 0
    with pq.ParquetWriter(str(out), _SCHEMA) as writer:
        cols: dict[str, list[Any]] = {n: [] for n in names}

        def flush() -> None:
            if cols["seq"]:
                writer.write_table(pa.table(cols, schema=_SCHEMA))
                for v in cols.values():
                    v.clear()

        for row in ledger.iter_rows(batch):
            m = row._mapping
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
