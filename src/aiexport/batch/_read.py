"""Reading an order file into raw columns, with the reference reader's line numbers.

Parquet is read with Arrow as typed columns (row number = line, as in `io.orders`). A CSV file
that is *simple* — no quote characters, no lone carriage returns, no blank lines, every line
with as many cells as the header — is read with Arrow's multi-threaded CSV reader: for such a
file every parser splits the same way, so the cells are exactly those `csv.DictReader` yields and
the line of data row k is k + 2. Anything else (quoted cells, JSON Lines) is read by the
reference reader `io.orders.iter_raw_rows` itself, so quoting and line numbers can never differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa

from aiexport.errors import AiexportError, InputError
from aiexport.io.orders import KNOWN_COLUMNS, iter_raw_rows

# A raw column: an Arrow array (typed input) or the Python values the reference reader yields.
RawColumn: TypeAlias = Any  # pa.Array | list[Any]


@dataclass
class RawTable:
    """The known columns of an order file as read, before any validation."""

    file: str
    n: int
    columns: dict[str, RawColumn]
    # Line of each row (CSV/JSONL: line in the file; Parquet: row number).
    lines: np.ndarray
    # The raw row exactly as `io.orders.iter_raw_rows` yields it (for error messages).
    raw_row: Callable[[int], dict[str, Any]]
    # An error the reference reader raised after the rows read so far (bad JSON, ragged CSV):
    # it is reported unless one of those rows is bad first.
    trailing_error: BaseException | None = None


def read_raw(path: Path) -> RawTable:
    """Read `path` (CSV, Parquet or JSON Lines) into raw columns."""
    if not path.exists():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    if suffix == ".csv":
        fast = _read_simple_csv(path)
        if fast is not None:
            return fast
    return _read_reference(path)


# Free-text columns that can never be invalid and that no decision reads: not loaded.
UNREAD = frozenset(
    {
        "consignee_address",
        "consignee_phone",
        "consignee_email",
        "consignee_website",
        "consignee_registration",
        "consignee_officers",
        "intermediate_name",
        "payer_name",
    }
)


def _read_parquet(path: Path) -> RawTable:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        all_names = list(schema.names)
        if len(set(all_names)) != len(all_names):
            return _read_reference(path)
        names = [c for c in all_names if c in KNOWN_COLUMNS and c not in UNREAD]
        # Text columns come dictionary-encoded as Parquet stores them: their distinct values
        # without hashing every row again (order ids are distinct: read plain).
        texts = [c for c in names if c != "order_id" and pa.types.is_string(schema.field(c).type)]
        table = pq.read_table(path, columns=names, read_dictionary=texts)
    except Exception:
        return _read_reference(path)
    # A dictionary column's chunks combine into one dictionary array, each value once.
    columns: dict[str, RawColumn] = {c: table.column(c).combine_chunks() for c in names}
    n = table.num_rows

    def raw_row(i: int) -> dict[str, Any]:
        """The whole row as the reference reader yields it (only for error messages)."""
        pf = pq.ParquetFile(path)
        seen = 0
        for rg in range(pf.num_row_groups):
            size = pf.metadata.row_group(rg).num_rows
            if i < seen + size:
                row: dict[str, Any] = pf.read_row_group(rg).slice(i - seen, 1).to_pylist()[0]
                return row
            seen += size
        raise IndexError(i)

    return RawTable(str(path), n, columns, np.arange(1, n + 1, dtype=np.int64), raw_row)


def _read_simple_csv(path: Path) -> RawTable | None:
    import pyarrow.csv as pcsv

    data = path.read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0 or (buf == ord('"')).any() or (buf == 0).any():
        return None
    cr = np.flatnonzero(buf == ord("\r"))
    if cr.size and (cr[-1] + 1 >= buf.size or (buf[cr + 1] != ord("\n")).any()):
        return None  # a carriage return outside "\r\n"
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    ends = np.flatnonzero(buf == ord("\n"))
    if not ends.size or ends[-1] != buf.size - 1:
        ends = np.append(ends, buf.size)
    starts = np.concatenate(([start], ends[:-1] + 1))
    has_cr = np.zeros(ends.size, dtype=bool)
    inside = ends[ends > 0] - 1
    has_cr[ends > 0] = buf[inside] == ord("\r")
    if ((ends - starts - has_cr) <= 0).any():
        return None  # blank lines: the reference reader skips them but counts their lines
    prefix = np.concatenate(([0], np.cumsum(buf == ord(","))))
    per_line = prefix[ends] - prefix[starts]
    if (per_line != per_line[0]).any():
        return None  # ragged rows: the reference reader reports or pads them
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    header = data[start : ends[0] - int(has_cr[0])].decode("utf-8")
    names = header.split(",")
    if len(set(names)) != len(names):
        return None
    n = int(ends.size - 1)
    if n == 0:
        return None
    try:
        table = pcsv.read_csv(
            pa.BufferReader(data),
            parse_options=pcsv.ParseOptions(quote_char=False, newlines_in_values=False),
            convert_options=pcsv.ConvertOptions(
                column_types={c: pa.string() for c in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, AiexportError):
        return None
    if table.num_rows != n or table.column_names != names:
        return None
    columns: dict[str, RawColumn] = {
        c: table.column(c).combine_chunks() for c in names if c in KNOWN_COLUMNS
    }

    def raw_row(i: int) -> dict[str, Any]:
        return {c: table.column(c)[i].as_py() for c in names}

    return RawTable(str(path), n, columns, np.arange(2, n + 2, dtype=np.int64), raw_row)


def _read_reference(path: Path) -> RawTable:
    """Read with the reference reader; Python values, exact lines, its errors at their place."""
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    trailing: BaseException | None = None
    try:
        for line, raw in iter_raw_rows(path):
            lines.append(line)
            rows.append(raw)
    except AiexportError as exc:
        if not rows:
            raise
        trailing = exc
    except UnicodeDecodeError as exc:
        if not rows:
            raise
        trailing = exc
    names = sorted({k for r in rows for k in r if k in KNOWN_COLUMNS})
    columns: dict[str, RawColumn] = {c: [r.get(c) for r in rows] for c in names}
    return RawTable(
        str(path),
        len(rows),
        columns,
        np.asarray(lines, dtype=np.int64),
        lambda i: rows[i],
        trailing,
    )
