"""Reading order files (contract §1): CSV, Parquet or JSON Lines, validated row by row.

Every error names the file, the line (CSV and JSON Lines: the line in the file; Parquet: the row
number) and the column. Unknown columns are kept out of the `Order` and ignored.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from aiexport.errors import InputError, OrderError
from aiexport.rules.countries import is_country_code
from aiexport.rules.items import ITEM_KINDS
from aiexport.rules.orders import (
    END_USES,
    PLAIN_AUTHORIZATIONS,
    PREFIXED_AUTHORIZATIONS,
    Order,
)

REQUIRED = ("order_id", "order_date", "exporter", "quantity", "destination", "consignee_name")
COUNTRY_COLUMNS = (
    "destination",
    "consignee_country",
    "consignee_hq_country",
    "intermediate_country",
    "payer_country",
)
BOOL_COLUMNS = (
    "datacenter",
    "open_weights",
    "consignee_government",
    "derived_from_published",
    "less_capable_than_open",
    "secure_storage",
)
DECIMAL_COLUMNS = (
    "tpp_per_unit",
    "die_area_mm2",
    "memory_bandwidth_gbps",
    "training_ops",
    "unit_price_usd",
    "additional_training_ops",
)
TEXT_COLUMNS = (
    "exporter",
    "item",
    "consignee_id",
    "consignee_name",
    "consignee_address",
    "consignee_phone",
    "consignee_email",
    "consignee_website",
    "consignee_registration",
    "consignee_officers",
    "intermediate_name",
    "payer_name",
)
KNOWN_COLUMNS = frozenset(
    (
        *REQUIRED,
        *COUNTRY_COLUMNS,
        *BOOL_COLUMNS,
        *DECIMAL_COLUMNS,
        *TEXT_COLUMNS,
        "item_kind",
        "chips_per_unit",
        "consignee_founded",
        "end_use",
        "authorization",
    )
)
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


class RowParser:
    """Turns one raw row (a mapping of column to value) into an `Order`."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, line: int, column: str, message: str) -> OrderError:
        return OrderError(message, file=self.file, line=line, column=column)

    def text(self, raw: dict[str, Any], col: str, line: int) -> str | None:
        v = raw.get(col)
        if _blank(v):
            return None
        return str(v).strip()

    def date(self, raw: dict[str, Any], col: str, line: int) -> dt.date | None:
        v = raw.get(col)
        if _blank(v):
            return None
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        try:
            return dt.date.fromisoformat(str(v).strip())
        except ValueError:
            raise self.fail(line, col, f"{v!r} is not a date YYYY-MM-DD") from None

    def boolean(self, raw: dict[str, Any], col: str, line: int) -> bool | None:
        v = raw.get(col)
        if _blank(v):
            return None
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        s = str(v).strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise self.fail(line, col, f"{v!r} is not a boolean (true/false, 1/0, yes/no)")

    def decimal(self, raw: dict[str, Any], col: str, line: int) -> Decimal | None:
        v = raw.get(col)
        if _blank(v):
            return None
        if isinstance(v, bool):
            raise self.fail(line, col, f"{v!r} is not a number")
        try:
            d = (
                Decimal(str(v).strip().replace(",", ""))
                if not isinstance(v, float)
                else Decimal(repr(v))
            )
        except InvalidOperation:
            raise self.fail(line, col, f"{v!r} is not a number") from None
        if not d.is_finite():
            raise self.fail(line, col, f"{v!r} is not a finite number")
        if d < 0:
            raise self.fail(line, col, f"{v!r} must not be negative")
        return d

    def positive_int(self, raw: dict[str, Any], col: str, line: int) -> int | None:
        v = raw.get(col)
        if _blank(v):
            return None
        if isinstance(v, bool):
            raise self.fail(line, col, f"{v!r} is not an integer")
        try:
            d = Decimal(str(v).strip())
        except InvalidOperation:
            raise self.fail(line, col, f"{v!r} is not an integer") from None
        if not d.is_finite() or d != d.to_integral_value():
            raise self.fail(line, col, f"{v!r} is not an integer")
        if d <= 0:
            raise self.fail(line, col, f"{v!r} must be greater than 0")
        return int(d)

    def country(self, raw: dict[str, Any], col: str, line: int) -> str | None:
        v = self.text(raw, col, line)
        if v is None:
            return None
        code = v.upper()
        if len(code) != 2 or not is_country_code(code):
            raise self.fail(line, col, f"{v!r} is not an ISO 3166-1 alpha-2 country code")
        return code

    def parse(self, raw: dict[str, Any], line: int, position: int) -> Order:
        for col in REQUIRED:
            if _blank(raw.get(col)):
                raise self.fail(line, col, "required value is missing")
        quantity = self.positive_int(raw, "quantity", line)
        assert quantity is not None
        order_date = self.date(raw, "order_date", line)
        assert order_date is not None
        countries = {c: self.country(raw, c, line) for c in COUNTRY_COLUMNS}
        bools = {c: self.boolean(raw, c, line) for c in BOOL_COLUMNS}
        decs = {c: self.decimal(raw, c, line) for c in DECIMAL_COLUMNS}
        texts = {c: self.text(raw, c, line) for c in TEXT_COLUMNS}
        kind = self.text(raw, "item_kind", line)
        if kind is not None:
            kind = kind.lower()
            if kind not in ITEM_KINDS:
                raise self.fail(
                    line, "item_kind", f"{kind!r} is not one of {', '.join(ITEM_KINDS)}"
                )
        if texts["item"] is None and decs["tpp_per_unit"] is None and kind != "model_weights":
            raise self.fail(line, "item", "give `item` (a catalog identifier) or `tpp_per_unit`")
        if kind == "model_weights" and decs["training_ops"] is None:
            raise self.fail(line, "training_ops", "model weights need `training_ops`")
        if decs["die_area_mm2"] is not None and decs["die_area_mm2"] == 0:
            raise self.fail(line, "die_area_mm2", "die area must be greater than 0")
        end_use = (self.text(raw, "end_use", line) or "unknown").lower()
        if end_use not in END_USES:
            raise self.fail(line, "end_use", f"{end_use!r} is not one of {', '.join(END_USES)}")
        auth = self.text(raw, "authorization", line)
        if auth is not None:
            auth = _authorization(auth)
            if auth is None:
                raise self.fail(
                    line,
                    "authorization",
                    f"{raw.get('authorization')!r} is not LPP, AIA, ACM, ACA, NAC, LICENSE:<id>, UVEU:<id> or NVEU:<id>",
                )
        return Order(
            order_id=str(texts.get("order_id") or raw["order_id"]).strip(),
            order_date=order_date,
            exporter=texts["exporter"] or "",
            quantity=quantity,
            destination=countries["destination"] or "",
            consignee_name=texts["consignee_name"] or "",
            item=texts["item"],
            item_kind=kind,
            chips_per_unit=self.positive_int(raw, "chips_per_unit", line),
            tpp_per_unit=decs["tpp_per_unit"],
            die_area_mm2=decs["die_area_mm2"],
            datacenter=bools["datacenter"],
            memory_bandwidth_gbps=decs["memory_bandwidth_gbps"],
            training_ops=decs["training_ops"],
            open_weights=bool(bools["open_weights"]),
            unit_price_usd=decs["unit_price_usd"],
            consignee_id=texts["consignee_id"],
            consignee_address=texts["consignee_address"],
            consignee_country=countries["consignee_country"],
            consignee_hq_country=countries["consignee_hq_country"],
            consignee_government=bool(bools["consignee_government"]),
            consignee_phone=texts["consignee_phone"],
            consignee_email=texts["consignee_email"],
            consignee_website=texts["consignee_website"],
            consignee_registration=texts["consignee_registration"],
            consignee_officers=texts["consignee_officers"],
            consignee_founded=self.date(raw, "consignee_founded", line),
            end_use=end_use,
            intermediate_name=texts["intermediate_name"],
            intermediate_country=countries["intermediate_country"],
            payer_name=texts["payer_name"],
            payer_country=countries["payer_country"],
            authorization=auth,
            derived_from_published=bool(bools["derived_from_published"]),
            additional_training_ops=decs["additional_training_ops"],
            less_capable_than_open=bool(bools["less_capable_than_open"]),
            secure_storage=bool(bools["secure_storage"]),
            position=position,
            line=line,
        )


def _authorization(text: str) -> str | None:
    t = text.strip()
    upper = t.upper()
    if upper in PLAIN_AUTHORIZATIONS:
        return upper
    if ":" in t:
        kind, ref = t.split(":", 1)
        if kind.strip().upper() in PREFIXED_AUTHORIZATIONS and ref.strip():
            return f"{kind.strip().upper()}:{ref.strip()}"
    return None


def iter_raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, raw row) pairs from a CSV, Parquet or JSON Lines file."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames:
                raise InputError("the file is empty (expected a header row)", file=str(path))
            for row in reader:
                if None in row:
                    raise InputError(
                        "the row has more cells than the header",
                        file=str(path),
                        line=reader.line_num,
                    )
                yield reader.line_num, row
    elif suffix in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as fh:
            for n, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"not valid JSON: {exc.msg}", file=str(path), line=n) from None
                if not isinstance(obj, dict):
                    raise InputError("each line must be a JSON object", file=str(path), line=n)
                yield n, obj
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:
            raise InputError(f"not a readable Parquet file: {exc}", file=str(path)) from None
        row_number = 0
        for batch in pf.iter_batches(batch_size=65536):
            for rec in batch.to_pylist():
                row_number += 1
                yield row_number, rec
    else:
        raise InputError(
            f"unknown file type {suffix!r}: give a .csv, .parquet or .jsonl file", file=str(path)
        )


def read_orders(path: str | Path) -> list[Order]:
    """Read and validate every order; the first bad row stops the run with its position."""
    p = Path(path)
    parser = RowParser(str(p))
    orders: list[Order] = []
    seen: dict[str, int] = {}
    for position, (line, raw) in enumerate(iter_raw_rows(p)):
        order = parser.parse(raw, line, position)
        if order.order_id in seen:
            raise OrderError(
                f"order_id {order.order_id!r} repeats line {seen[order.order_id]}; order ids are unique within a file",
                file=str(p),
                line=line,
                column="order_id",
            )
        seen[order.order_id] = line
        orders.append(order)
    return orders
