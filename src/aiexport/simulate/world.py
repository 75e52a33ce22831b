"""Reading a world directory: the orders (contract §1) and, when present, what was planted.

`aiexport world` writes `orders.parquet`, `orders.csv` and `truth.json`; the simulator reads the
Parquet file when there is one (typed and fast), else the CSV. `truth.json` tells which orders
belong to planted evasion schemes: the simulator uses it to separate legitimate demand from
evasion, never to detect (detection runs `aiexport.intel` on the orders alone).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aiexport.errors import InputError

EPOCH = dt.date(1970, 1, 1)
# Columns the simulator reads; the rest of contract §1 is carried along for detection.
_NEEDED = ("order_id", "order_date", "quantity", "destination", "consignee_name")


@dataclass(frozen=True)
class Scheme:
    """One planted evasion scheme (truth.json)."""

    scheme_id: str
    kind: str
    consignees: tuple[dict[str, Any], ...]
    order_ids: tuple[str, ...]


@dataclass
class World:
    """The orders of a world as an Arrow table plus the planted schemes."""

    path: Path
    table: pa.Table
    schemes: list[Scheme] = field(default_factory=list)
    has_truth: bool = False

    @property
    def n(self) -> int:
        return int(self.table.num_rows)

    def days(self) -> npt.NDArray[np.int32]:
        """Order dates as days since 1970-01-01."""
        col = self.table.column("order_date").cast(pa.int32())
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int32)

    def scheme_of_row(self) -> npt.NDArray[np.int32]:
        """Index into `schemes` of each row's scheme, -1 for legitimate rows."""
        out = np.full(self.n, -1, dtype=np.int32)
        if not self.schemes:
            return out
        ids: list[str] = []
        idx: list[int] = []
        for i, s in enumerate(self.schemes):
            ids.extend(s.order_ids)
            idx.extend([i] * len(s.order_ids))
        lookup = pa.array(ids, pa.string())
        pos = pc.index_in(self.table.column("order_id"), value_set=lookup)
        hits = np.asarray(pos.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
        found = hits >= 0
        out[found] = np.asarray(idx, dtype=np.int32)[hits[found]]
        return out


def load_world(path: str | Path) -> World:
    """Read `orders.parquet` (or `orders.csv`) and `truth.json` from a world directory.

    A single orders file (.parquet or .csv) is accepted too; it then has no truth.
    """
    p = Path(path)
    if p.is_dir():
        parquet, csv = p / "orders.parquet", p / "orders.csv"
        truth = p / "truth.json"
    else:
        parquet = p if p.suffix == ".parquet" else p.with_suffix(".nonexistent")
        csv = p if p.suffix == ".csv" else p.with_suffix(".nonexistent")
        truth = p.parent / "truth.json" if p.exists() else p
    if parquet.exists():
        table = pq.read_table(parquet)
    elif csv.exists():
        table = pacsv.read_csv(
            csv,
            convert_options=pacsv.ConvertOptions(
                column_types={"order_date": pa.date32(), "consignee_founded": pa.date32()},
                strings_can_be_null=True,
            ),
        )
    else:
        raise InputError(
            f"no orders.parquet or orders.csv in {p}; make a world with "
            "`aiexport world --seed N --orders N --out DIR`",
            file=str(p),
        )
    missing = [c for c in _NEEDED if c not in table.column_names]
    if missing:
        raise InputError(f"the orders lack the columns {missing} (contract §1)", file=str(p))
    if table.column("order_date").type != pa.date32():
        table = table.set_column(
            table.column_names.index("order_date"),
            "order_date",
            pc.cast(table.column("order_date"), pa.date32()),
        )
    world = World(path=p, table=table)
    if truth.exists() and truth.is_file() and truth.suffix == ".json":
        raw = json.loads(truth.read_text(encoding="utf-8"))
        for s in raw.get("schemes", []):
            world.schemes.append(
                Scheme(
                    scheme_id=str(s["scheme_id"]),
                    kind=str(s["kind"]),
                    consignees=tuple(s.get("consignees", [])),
                    order_ids=tuple(str(o) for o in s.get("order_ids", [])),
                )
            )
        world.has_truth = True
    return world


def to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def to_day(date: dt.date) -> int:
    return (date - EPOCH).days
