"""Orders into DuckDB for analytics: read, validate, and add what the rule says about each line.

The per-order path (`aiexport.io.orders`) builds one Python object per line; a million lines are
better read column-wise. Here the file is scanned by DuckDB, checked with set-based queries (the
first bad row is reported with its line and column, as contract §1 asks), and each line gets its
TPP, ECCN, governing tier and whether it could ship under License Exception LPP — computed by the
rules package once per distinct item and per distinct (country, date), never re-implemented.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from aiexport.errors import InputError, LawError, ParameterNotFound, UnknownItem
from aiexport.rules.countries import Countries
from aiexport.rules.decide import Engine
from aiexport.rules.items import classify
from aiexport.rules.orders import Order, consignee_key
from aiexport.rules.ruleset import RuleSet

REQUIRED = ("order_id", "order_date", "quantity", "destination", "consignee_name")
TEXT = (
    "exporter", "item", "item_kind", "consignee_id", "consignee_address", "consignee_country",
    "consignee_hq_country", "consignee_phone", "consignee_email", "consignee_website",
    "consignee_registration", "consignee_officers", "end_use", "intermediate_name",
    "intermediate_country", "payer_name", "payer_country", "authorization",
)  # fmt: skip
NUMBERS = ("chips_per_unit", "tpp_per_unit", "die_area_mm2", "unit_price_usd")


_SAME_TYPE: dict[str, frozenset[str]] = {
    "DATE": frozenset({"DATE"}),
    "BIGINT": frozenset({"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER"}),
    "DOUBLE": frozenset({"DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT"}),
}
"""Source column types taken as they are for each contract type."""


@dataclass(frozen=True)
class LoadedOrders:
    """The `orders` table in a DuckDB connection, with its source."""

    con: duckdb.DuckDBPyConnection
    path: str
    rows: int
    line_offset: int  # line of row 1 (2 for a CSV with a header)


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def _scan(path: Path) -> tuple[str, int]:
    suffix = path.suffix.lower()
    p = str(path).replace("'", "''")
    if suffix == ".csv":
        return (
            f"read_csv('{p}', header=true, all_varchar=true, quote='\"', escape='\"', "
            "strict_mode=true, null_padding=false)",
            2,
        )
    if suffix == ".parquet":
        return f"read_parquet('{p}')", 1
    if suffix in (".jsonl", ".ndjson", ".json"):
        return f"read_json('{p}', format='newline_delimited', records=true)", 1
    raise InputError(
        f"unknown file type {suffix!r}: give a .csv, .parquet or .jsonl file", file=str(path)
    )


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that prints nothing: DuckDB's progress bar would draw on
    the terminal of whoever runs a long query (a command, a server)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def load_orders(path: str | Path, con: duckdb.DuckDBPyConnection | None = None) -> LoadedOrders:
    """Read an orders file (contract §1) into table `orders`; refuse it whole on a bad row.

    One pass over the file: the scan is typed and trimmed straight into `orders`. A Parquet
    column that already has the contract's type is taken as it is (nothing to check); text
    columns keep their original text next to the parsed value so that the checks below can
    tell "missing" from "not a number".
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    con = con or connect()
    scan, offset = _scan(path)
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"cannot read the orders file: {first}", file=str(path)) from None
    types = {r[0]: str(r[1]).upper() for r in described}
    cols = list(types)
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise InputError(
            f"missing required column(s) {', '.join(missing)}; see contract §1 for the names",
            file=str(path),
        )
    if "item" not in cols and "tpp_per_unit" not in cols:
        raise InputError("give an `item` or a `tpp_per_unit` column", file=str(path))

    def text(c: str) -> str:
        if c not in cols:
            return f"NULL::VARCHAR AS {_q(c)}"
        return f"NULLIF(trim(CAST({_q(c)} AS VARCHAR)), '') AS {_q(c)}"

    def typed(c: str, typ: str) -> bool:
        return c in cols and types[c] in _SAME_TYPE[typ]

    def num(c: str, typ: str) -> str:
        if c not in cols:
            return f"NULL::{typ} AS {_q(c)}"
        if typed(c, typ):
            return f"CAST({_q(c)} AS {typ}) AS {_q(c)}"
        return f"TRY_CAST(NULLIF(trim(CAST({_q(c)} AS VARCHAR)), '') AS {typ}) AS {_q(c)}"

    def orig(c: str, typ: str | None = None) -> str:
        # A column already of the right type cannot hold a malformed value: no original kept.
        if c not in cols or (typ is not None and typed(c, typ)):
            return "NULL::VARCHAR"
        return f"NULLIF(trim(CAST({_q(c)} AS VARCHAR)), '')"

    select = ",\n".join(
        [
            text("order_id"),
            num("order_date", "DATE"),
            num("quantity", "BIGINT"),
            f"upper({orig('destination')}) AS destination",
            text("consignee_name"),
            *(text(c) for c in TEXT),
            num("chips_per_unit", "BIGINT"),
            num("tpp_per_unit", "DOUBLE"),
            num("die_area_mm2", "DOUBLE"),
            num("unit_price_usd", "DOUBLE"),
            num("consignee_founded", "DATE"),
            f"{orig('order_date', 'DATE')} AS _order_date",
            f"{orig('quantity', 'BIGINT')} AS _quantity",
            f"{orig('chips_per_unit', 'BIGINT')} AS _chips_per_unit",
            f"{orig('tpp_per_unit', 'DOUBLE')} AS _tpp_per_unit",
            f"{orig('unit_price_usd', 'DOUBLE')} AS _unit_price_usd",
            f"{orig('consignee_founded', 'DATE')} AS _consignee_founded",
        ]
    )
    # Line numbers come from the file's row order, which must survive the scan.
    keep = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE orders AS SELECT row_number() OVER () AS rn, {select} "
            f"FROM {scan}"
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"cannot read the orders file: {first}", file=str(path)) from None
    finally:
        con.execute(f"SET preserve_insertion_order = {'true' if keep else 'false'}")
    checks = [
        ("order_id", "order_id IS NULL", "is required"),
        ("order_date", "order_date IS NULL AND _order_date IS NULL", "is required"),
        ("order_date", "order_date IS NULL AND _order_date IS NOT NULL", "is not a date YYYY-MM-DD"),
        ("quantity", "quantity IS NULL AND _quantity IS NULL", "is required"),
        ("quantity", "quantity IS NULL OR quantity <= 0", "must be a whole number > 0"),
        ("destination", "destination IS NULL OR NOT regexp_full_match(destination, '[A-Z]{2}')",
         "must be an ISO 3166-1 alpha-2 code"),
        ("consignee_name", "consignee_name IS NULL", "is required"),
        ("item", "item IS NULL AND tpp_per_unit IS NULL", "give an item or a tpp_per_unit"),
        ("chips_per_unit", "(_chips_per_unit IS NOT NULL AND chips_per_unit IS NULL) OR chips_per_unit <= 0",
         "must be a whole number > 0"),
        ("tpp_per_unit", "(_tpp_per_unit IS NOT NULL AND tpp_per_unit IS NULL) OR tpp_per_unit < 0",
         "must be a number >= 0"),
        ("unit_price_usd", "_unit_price_usd IS NOT NULL AND unit_price_usd IS NULL", "must be a number"),
        ("consignee_founded", "_consignee_founded IS NOT NULL AND consignee_founded IS NULL",
         "is not a date YYYY-MM-DD"),
    ]  # fmt: skip
    # All checks in one scan; the first failing check (in this order) is reported.
    firsts = con.execute(
        "SELECT "
        + ", ".join(f"min(rn) FILTER (WHERE {cond})" for _, cond, _ in checks)
        + " FROM orders"
    ).fetchall()[0]
    for (column, _, message), hit in zip(checks, firsts, strict=True):
        if hit is not None:
            raise InputError(message, file=str(path), line=int(hit) + offset - 1, column=column)
    dup = con.execute(
        "SELECT order_id, min(rn), max(rn) FROM orders GROUP BY order_id HAVING count(*) > 1 "
        "ORDER BY 3 LIMIT 1"
    ).fetchall()
    if dup:
        oid, first, again = dup[0]
        raise InputError(
            f"order_id {oid!r} repeats line {first + offset - 1}; order ids are unique within a file",
            file=str(path),
            line=int(again) + offset - 1,
            column="order_id",
        )
    n = con.execute("SELECT count(*) FROM orders").fetchall()
    rows = int(n[0][0]) if n else 0
    if rows == 0:
        raise InputError("the file has no orders", file=str(path))
    return LoadedOrders(con, str(path), rows, offset)


def enrich(lo: LoadedOrders, rules: RuleSet, engine: Engine | None = None) -> None:
    """Add consignee keys, TPP, ECCN, tiers and LPP eligibility to `orders` (table `lines`)."""
    con = lo.con
    engine = engine or Engine(rules)
    _consignee_keys(con)
    changes = _change_dates(rules)
    _items(con, rules, engine, lo.path, lo.line_offset, changes)
    _countries(con, rules, changes)
    eligible_since = _lpp_start(rules)
    # The tiers of each distinct (destination, location, HQ, day) once, then two joins of the
    # big table with small ones (a single five-way join made DuckDB pick a plan ~100× slower).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE combos AS
        SELECT c.*, d.tier AS d_tier, d.restricted AS d_restricted, d.hub AS d_hub,
               l.tier AS l_tier, h.tier AS h_tier, h.t3 AS h_t3
        FROM (SELECT DISTINCT destination, loc_country, hq_country, order_date FROM orders_k) c
        JOIN country_day d ON d.code = c.destination AND d.day = c.order_date
        JOIN country_day l ON l.code = c.loc_country AND l.day = c.order_date
        JOIN country_day h ON h.code = c.hq_country AND h.day = c.order_date
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE step1 AS
        SELECT o.*, k.ckey, i.eccn, i.tpp_per_ic, i.chips, i.lpp_item
        FROM orders_k o
        JOIN ckeys k USING (consignee_id_or_blank, consignee_name, loc_country)
        JOIN item_class i ON i.spec = o.spec AND i.order_date = o.order_date
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lines AS
        SELECT s.* EXCLUDE (lpp_item),
               c.d_tier, c.d_restricted, c.d_hub, c.l_tier, c.h_tier, c.h_t3,
               s.quantity * s.chips * s.tpp_per_ic AS tpp,
               s.quantity * s.chips AS ics,
               c.d_tier AS dest_tier, c.d_restricted AS dest_restricted, c.d_hub AS dest_hub,
               c.l_tier AS loc_tier, c.h_tier AS hq_tier, c.h_t3 AS hq_t3,
               greatest(c.d_tier, c.l_tier, c.h_tier) AS tier,
               (s.lpp_item AND s.order_date >= DATE '{eligible_since}'
                AND greatest(c.d_tier, c.l_tier, c.h_tier) = 2 AND NOT c.d_restricted
                AND NOT c.h_t3
                AND coalesce(upper(s."authorization"), 'LPP') = 'LPP'
                AND coalesce(s.end_use, 'unknown') <> 'resale') AS lpp_eligible
        FROM step1 s
        JOIN combos c USING (destination, loc_country, hq_country, order_date)
        """
    )
    con.execute("DROP TABLE step1")
    con.execute("DROP TABLE combos")


def _consignee_keys(con: duckdb.DuckDBPyConnection) -> None:
    """View `orders_k` (orders with their join keys) and table `ckeys`: a consignee's key is its
    id when it has one (set-wise, in SQL), else `consignee_key` of its name and country."""
    con.execute(
        """
        CREATE OR REPLACE TEMP VIEW orders_k AS
        SELECT *, coalesce(consignee_id, '') AS consignee_id_or_blank,
               upper(coalesce(consignee_country, destination)) AS loc_country,
               upper(coalesce(consignee_hq_country, consignee_country, destination)) AS hq_country,
               -- A JSON array: a NULL keeps its place and a '|' in a name cannot shift the rest
               -- (concat_ws skipped NULLs, so item 'x' with no kind met kind 'x' with no item).
               to_json([lower(item), lower(item_kind), chips_per_unit::VARCHAR,
                        tpp_per_unit::VARCHAR, die_area_mm2::VARCHAR])::VARCHAR AS spec
        FROM orders
        """
    )
    con.execute(
        r"""
        CREATE OR REPLACE TEMP TABLE ckeys AS
        SELECT consignee_id_or_blank, consignee_name, loc_country,
               CASE WHEN consignee_id_or_blank <> ''
                    THEN regexp_replace(consignee_id_or_blank, '^\s+|\s+$', '', 'g') END AS ckey
        FROM (SELECT DISTINCT consignee_id_or_blank, consignee_name, loc_country FROM orders_k)
        """
    )
    rows = con.execute(
        "SELECT DISTINCT consignee_name, loc_country FROM ckeys WHERE ckey IS NULL"
    ).fetchall()
    if not rows:
        return
    table = pa.table(
        {
            "consignee_name": [r[0] for r in rows],
            "loc_country": [r[1] for r in rows],
            "key": [consignee_key(None, name, cc) for name, cc in rows],
        }
    )
    con.register("ckeys_arrow", table)
    con.execute(
        """
        UPDATE ckeys SET ckey = a.key FROM ckeys_arrow a
        WHERE ckeys.ckey IS NULL AND ckeys.consignee_name = a.consignee_name
          AND ckeys.loc_country = a.loc_country
        """
    )
    con.unregister("ckeys_arrow")


def _items(
    con: duckdb.DuckDBPyConnection,
    rules: RuleSet,
    engine: Engine,
    path: str,
    offset: int,
    changes: tuple[dt.date, ...],
) -> None:
    # One row per (spec, day), so that each line joins one class: names that differ only in
    # case share a spec, and are classified as the first line that names them is. In file order
    # (first line of each): of several unknown items, the first is reported, not whichever
    # DuckDB's threads happened to hand over first.
    rows = con.execute(
        "SELECT spec, arg_min(item, rn), arg_min(item_kind, rn), any_value(chips_per_unit), "
        "any_value(tpp_per_unit), any_value(die_area_mm2), order_date "
        "FROM orders_k GROUP BY spec, order_date ORDER BY min(rn)"
    ).fetchall()
    out: dict[str, list[Any]] = {
        k: [] for k in ("spec", "order_date", "eccn", "tpp_per_ic", "chips", "lpp_item")
    }
    cache: dict[tuple[str, Any], tuple[str, float, int, bool]] = {}
    for spec, item, kind, chips, tpp, die, day in rows:
        regime = _regime(rules, day)
        try:
            eligible = rules.members("exceptions.lpp.eligible_eccns", day)
        except ParameterNotFound:
            eligible = frozenset()
        key = (spec, (regime, eligible, bisect.bisect_right(changes, day)))
        hit = cache.get(key)
        if hit is None:
            order = Order(
                order_id="x",
                order_date=day,
                exporter="",
                quantity=1,
                destination="US",
                consignee_name="x",
                item=item,
                item_kind=kind,
                chips_per_unit=chips,
                tpp_per_unit=None if tpp is None else Decimal(str(tpp)),
                die_area_mm2=None if die is None else Decimal(str(die)),
            )
            try:
                s = engine.item_spec(order)
                c = classify(s, rules, day, regime)
            except UnknownItem as exc:
                line = con.execute("SELECT min(rn) FROM orders_k WHERE spec = ?", [spec]).fetchall()
                raise InputError(
                    exc.message,
                    file=path,
                    line=int(line[0][0]) + offset - 1 if line else None,
                    column="item",
                ) from None
            hit = (c.eccn, float(c.tpp_per_ic), int(s.chips_per_unit), c.eccn in eligible)
            cache[key] = hit
        out["spec"].append(spec)
        out["order_date"].append(day)
        out["eccn"].append(hit[0])
        out["tpp_per_ic"].append(hit[1])
        out["chips"].append(hit[2])
        out["lpp_item"].append(hit[3])
    con.register("items_arrow", pa.table(out))
    con.execute("CREATE OR REPLACE TEMP TABLE item_class AS SELECT * FROM items_arrow")
    con.unregister("items_arrow")


def _regime(rules: RuleSet, day: dt.date) -> str:
    try:
        return str(rules.value("controls.regime", day))
    except ParameterNotFound:
        return "ear-2024"


def _change_dates(rules: RuleSet) -> tuple[dt.date, ...]:
    """Parameters change on few dates; orders between two change dates classify alike (their
    epoch, `bisect_right(changes, day)`, keys the per-run caches).

    Computed per run, not memoised by `id(rules)`: a rule set freed and another allocated at the
    same address (a worker unpickling one scenario's rules after another's) got the first one's
    dates."""
    ds: set[dt.date] = set()
    for p in rules.parameters.values():
        ds.update(v.start for v in p.values)
    return tuple(sorted(ds))


def _countries(
    con: duckdb.DuckDBPyConnection, rules: RuleSet, changes: tuple[dt.date, ...]
) -> None:
    rows = con.execute(
        """
        SELECT DISTINCT c, order_date FROM (
            SELECT destination AS c, order_date FROM orders_k UNION ALL
            SELECT loc_country, order_date FROM orders_k UNION ALL
            SELECT hq_country, order_date FROM orders_k)
        """
    ).fetchall()
    countries = Countries(rules)
    effective = _effective(rules)
    hubs = _hubs()
    out: dict[str, list[Any]] = {k: [] for k in ("code", "day", "tier", "restricted", "t3", "hub")}
    seen: dict[tuple[str, int], Any] = {}
    for code, day in rows:
        when = max(day, effective)
        key = (code, bisect.bisect_right(changes, when))
        st = seen.get(key)
        if st is None:
            st = seen[key] = countries.status(code, when)
        out["code"].append(code)
        out["day"].append(day)
        out["tier"].append(st.tier)
        out["restricted"].append(st.restricted_740_2)
        out["t3"].append(st.macau_or_d5)
        out["hub"].append(code in hubs)
    con.register("cd_arrow", pa.table(out))
    con.execute("CREATE OR REPLACE TEMP TABLE country_day AS SELECT * FROM cd_arrow")
    con.unregister("cd_arrow")


def _effective(rules: RuleSet) -> dt.date:
    # The latest dated value, as the engine reads it: not the one in force on the day of the
    # run, which would make the same orders classify differently on another day.
    try:
        return dt.date.fromisoformat(str(rules.param("controls.effective_date").values[-1].value))
    except (ParameterNotFound, LawError, ValueError):
        return dt.date(2025, 1, 13)


def _lpp_start(rules: RuleSet) -> dt.date:
    """First day the LPP allowance exists in the rule set (its first dated value)."""
    try:
        p = rules.param("exceptions.lpp.annual_limit_tpp")
    except ParameterNotFound:
        return dt.date.max
    return min(v.start for v in p.values)


def lpp_limit(rules: RuleSet, year: int) -> Decimal | None:
    """The LPP allowance for a calendar year: the value in force on 1 January, or on the rule's
    first day in the year it took effect."""
    day = max(dt.date(year, 1, 1), _lpp_start(rules))
    if day.year != year:
        return None
    try:
        return rules.number("exceptions.lpp.annual_limit_tpp", day)
    except ParameterNotFound:
        return None


def _hubs() -> frozenset[str]:
    from aiexport.intel.signals import TRANSSHIPMENT_HUBS

    return TRANSSHIPMENT_HUBS
