"""Validation and conversion of raw columns, once per distinct value.

Each column is factorised (Arrow `dictionary_encode`, or a dict for Python values) and the
reference parser's own method (`io.orders.RowParser`) is applied to each distinct raw value. A
row is marked bad when any of its values fails or a cross-column rule of `RowParser.parse` fails;
the message of the first bad row in file order is then produced by `RowParser.parse` itself on
that raw row, so messages, lines and columns are the reference's by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from aiexport.errors import OrderError
from aiexport.io.orders import (
    BOOL_COLUMNS,
    COUNTRY_COLUMNS,
    DECIMAL_COLUMNS,
    REQUIRED,
    RowParser,
    _authorization,
    _blank,
)
from aiexport.rules.items import ITEM_KINDS
from aiexport.rules.orders import END_USES

from ._read import RawColumn, RawTable


@dataclass
class Col:
    """A converted column: `values[codes[i]]` is row i's value (as `RowParser` converts it)."""

    codes: np.ndarray
    values: list[Any]

    def at(self, i: int) -> Any:
        return self.values[int(self.codes[i])]

    def mask(self, pred: Callable[[Any], bool]) -> np.ndarray:
        table = np.fromiter((pred(v) for v in self.values), dtype=bool, count=len(self.values))
        result: np.ndarray = table[self.codes]
        return result


@dataclass
class Orders:
    """Every order of a file as converted columns, validated."""

    file: str
    n: int
    order_id: pa.Array
    cols: dict[str, Col]
    lines: np.ndarray
    raw: RawTable
    day_ordinal: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def factorize(raw: RawColumn | None, n: int) -> tuple[np.ndarray, list[Any]]:
    """(codes, distinct raw values); nulls get a code of their own holding None."""
    if raw is None:
        return np.zeros(n, dtype=np.int32), [None]
    if isinstance(raw, list):
        index: dict[Any, int] = {}
        uniques: list[Any] = []
        codes = np.empty(n, dtype=np.int32)
        for i, v in enumerate(raw):
            key = _hash_key(v)
            c = index.get(key)
            if c is None:
                c = index[key] = len(uniques)
                uniques.append(v)
            codes[i] = c
        return codes, uniques
    # A dictionary-encoded column (Parquet text, each value once) is its own factorisation.
    enc = raw if isinstance(raw, pa.DictionaryArray) else raw.dictionary_encode()
    uniques = enc.dictionary.to_pylist()
    idx = enc.indices
    if idx.null_count:
        codes = idx.fill_null(len(uniques)).to_numpy().astype(np.int32, copy=False)
        uniques.append(None)
    else:
        codes = idx.to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return codes, uniques


def _hash_key(v: Any) -> Any:
    if isinstance(v, float):
        return ("f", repr(v))
    try:
        hash(v)
    except TypeError:
        return ("u", type(v).__name__, repr(v))
    return (type(v).__name__, v)


def _convert(
    raw: RawColumn | None,
    n: int,
    fn: Callable[[Any], Any],
    factorized: tuple[np.ndarray, list[Any]] | None = None,
) -> tuple[Col, np.ndarray | None]:
    """Apply `fn` to each distinct raw value; rows whose value raised `OrderError` are bad."""
    codes, uniques = factorized if factorized is not None else factorize(raw, n)
    values: list[Any] = []
    bad_u = np.zeros(len(uniques), dtype=bool)
    for k, u in enumerate(uniques):
        try:
            values.append(fn(u))
        except OrderError:
            values.append(None)
            bad_u[k] = True
    return Col(codes, values), (bad_u[codes] if bad_u.any() else None)


def convert(raw: RawTable) -> tuple[Orders, np.ndarray]:
    """Convert every column; returns the orders and the mask of rows that may be bad."""
    n = raw.n
    p = RowParser(raw.file)
    bad = np.zeros(n, dtype=bool)
    cols: dict[str, Col] = {}
    seen: dict[str, tuple[np.ndarray, list[Any]]] = {}

    def factorized(name: str) -> tuple[np.ndarray, list[Any]]:
        f = seen.get(name)
        if f is None:
            f = seen[name] = factorize(raw.columns.get(name), n)
        return f

    def add(name: str, fn: Callable[[Any], Any]) -> Col:
        col, b = _convert(raw.columns.get(name), n, fn, factorized(name))
        if b is not None:
            bad[:] |= b
        cols[name] = col
        return col

    def method(m: Callable[[dict[str, Any], str, int], Any], name: str) -> Callable[[Any], Any]:
        return lambda v: m({name: v}, name, 0)

    for name in REQUIRED:
        if name != "order_id":
            bad |= Col(*factorized(name)).mask(lambda v: not _plain(v) and _blank(v))
    add("order_date", method(p.date, "order_date"))
    add("quantity", method(p.positive_int, "quantity"))
    for c in COUNTRY_COLUMNS:
        add(c, method(p.country, c))
    for c in BOOL_COLUMNS:
        add(c, method(p.boolean, c))
    for c in DECIMAL_COLUMNS:
        if c in VALIDATE_ONLY and _numbers_ok(raw.columns.get(c), bad):
            continue
        add(c, method(p.decimal, c))
    for c in ("item", "consignee_id", "consignee_name"):
        add(c, _plain_or(method(p.text, c)))

    def kind(v: Any) -> str | None:
        t = p.text({"k": v}, "k", 0)
        if t is None:
            return None
        t = t.lower()
        if t not in ITEM_KINDS:
            raise OrderError("bad item_kind")
        return t

    add("item_kind", kind)

    def end_use(v: Any) -> str:
        t = (p.text({"e": v}, "e", 0) or "unknown").lower()
        if t not in END_USES:
            raise OrderError("bad end_use")
        return t

    add("end_use", end_use)

    def auth(v: Any) -> str | None:
        t = p.text({"a": v}, "a", 0)
        if t is None:
            return None
        a = _authorization(t)
        if a is None:
            raise OrderError("bad authorization")
        return a

    add("authorization", auth)
    add("chips_per_unit", method(p.positive_int, "chips_per_unit"))
    add("consignee_founded", method(p.date, "consignee_founded"))

    # Cross-column rules of `RowParser.parse`.
    no_item = cols["item"].mask(lambda v: v is None)
    no_tpp = cols["tpp_per_unit"].mask(lambda v: v is None)
    weights = cols["item_kind"].mask(lambda v: v == "model_weights")
    bad |= no_item & no_tpp & ~weights
    bad |= weights & cols["training_ops"].mask(lambda v: v is None)
    bad |= cols["die_area_mm2"].mask(lambda v: v is not None and v == 0)

    order_id, oid_bad = _order_ids(raw.columns.get("order_id"), n)
    bad |= oid_bad
    orders = Orders(raw.file, n, order_id, cols, raw.lines, raw)
    dates = cols["order_date"]
    ordinals = np.array(
        [v.toordinal() if isinstance(v, dt.date) else 0 for v in dates.values], dtype=np.int64
    )
    orders.day_ordinal = ordinals[dates.codes] if n else np.zeros(0, dtype=np.int64)
    return orders, bad


def _plain(v: Any) -> bool:
    """A string whose first and last characters are printable ASCII other than the space:
    `str.strip()` leaves it as it is, and it is not blank."""
    return type(v) is str and v != "" and "!" <= v[0] <= "~" and "!" <= v[-1] <= "~"


def _plain_or(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """`fn` for a text method (blank: None, else stripped), skipped for plain strings."""
    return lambda v: v if _plain(v) else fn(v)


# Decimal columns the engine never reads: validated, not converted.
VALIDATE_ONLY = frozenset({"unit_price_usd"})


def _numbers_ok(raw: RawColumn | None, bad: np.ndarray) -> bool:
    """Validate a numeric Arrow column as `RowParser.decimal` would, without converting it.

    Floats are valid when finite and not negative, integers when not negative. Other columns
    (strings, Python values) return False: they go through the reference method.
    """
    if raw is None:
        return True
    if not isinstance(raw, pa.Array):
        return False
    if pa.types.is_floating(raw.type):
        x = raw.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            wrong = ~np.isfinite(x) | (x < 0)
        wrong &= ~np.isnan(x) | raw.is_valid().to_numpy(zero_copy_only=False)
        bad |= wrong & raw.is_valid().to_numpy(zero_copy_only=False)
        return True
    if pa.types.is_integer(raw.type):
        x = raw.fill_null(0).to_numpy(zero_copy_only=False)
        bad |= x < 0
        return True
    return False


def _order_ids(raw: RawColumn | None, n: int) -> tuple[pa.Array, np.ndarray]:
    """`str(raw["order_id"]).strip()` for every row, vectorised for string columns."""
    if raw is None:
        return pa.nulls(n, pa.string()), np.ones(n, dtype=bool)
    if (isinstance(raw, pa.Array) and pa.types.is_string(raw.type)) or (
        isinstance(raw, pa.Array) and pa.types.is_large_string(raw.type)
    ):
        arr = raw.cast(pa.string())
        # Values that may hold whitespace (by Python's definition) at either end, or be blank.
        odd_np = _odd_ends(arr)
        if not odd_np.any():
            return arr, np.zeros(n, dtype=bool)
        values = arr.to_pylist()
        bad = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(odd_np).tolist():
            v = values[i]
            bad[i] = _blank(v)
            values[i] = None if bad[i] else str(v).strip()
        return pa.array(values, type=pa.string()), bad
    values_py = raw.to_pylist() if isinstance(raw, pa.Array) else list(raw)
    bad = np.fromiter((_blank(v) for v in values_py), dtype=bool, count=n)
    out = [None if b else str(v).strip() for v, b in zip(values_py, bad.tolist(), strict=True)]
    return pa.array(out, type=pa.string()), bad


def _odd_ends(arr: pa.Array) -> np.ndarray:
    """Per value of a string array: null, empty, or a first or last byte outside `!`..`~`
    (printable ASCII other than the space; a non-ASCII character has such bytes at both ends).
    Other values are left unchanged by `str.strip()` and are not blank."""
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=bool)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    data_buf = arr.buffers()[2]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    start, end = offsets[:-1], offsets[1:]
    odd = end <= start
    full = ~odd
    first = data[start[full]]
    last = data[end[full] - 1]
    odd[full] = (first < 0x21) | (first > 0x7E) | (last < 0x21) | (last > 0x7E)
    if arr.null_count:
        odd |= ~arr.is_valid().to_numpy(zero_copy_only=False)
    return odd


def first_error(orders: Orders, bad: np.ndarray) -> None:
    """Raise the reference's error for the first bad row in file order, if any."""
    dup = _duplicates(orders.order_id)
    suspects = np.flatnonzero(bad | (dup >= 0))
    if not suspects.size:
        return
    parser = RowParser(orders.file)
    for i in suspects.tolist():
        raw = orders.raw.raw_row(i)
        line = int(orders.lines[i])
        parser.parse(raw, line, i)  # raises the reference's message for a bad row
        if dup[i] >= 0:
            oid = orders.order_id[i].as_py()
            raise OrderError(
                f"order_id {oid!r} repeats line {int(orders.lines[dup[i]])}; order ids are unique within a file",
                file=orders.file,
                line=line,
                column="order_id",
            )
    return


def _duplicates(order_id: pa.Array) -> np.ndarray:
    """For each row, the index of an earlier row with the same id, else -1."""
    n = len(order_id)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    enc = order_id.dictionary_encode()
    if order_id.null_count == 0 and len(enc.dictionary) == n:
        return np.full(n, -1, dtype=np.int64)
    codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    _, first = np.unique(codes, return_index=True)
    first_of = np.full(len(enc.dictionary) + 1, -1, dtype=np.int64)
    uniq = codes[first]
    first_of[uniq] = first
    firsts = first_of[codes]
    out = np.where(firsts != np.arange(n), firsts, -1)
    out[codes < 0] = -1
    return out


def decimal_key(v: Decimal | None) -> str | None:
    return None if v is None else str(v)
