"""Entity resolution of consignees with Splink on DuckDB.

Each distinct consignee (contract §1 identity: `consignee_id`, else normalised name + country)
becomes one record carrying its identifiers in normal form: name without legal forms, address
tokens, phone digits, e-mail domain, website, registry number and directors. Splink
(Fellegi-Sunter, m by expectation maximisation, u by random sampling, DuckDB backend) scores
the pairs that share a blocking key; pairs above `MATCH_THRESHOLD` are links, and the connected
components of the links are the resolved parties ("one ultimate consignee").

Generic values are demoted before any of this, as Senzing does: an identifier shared by more
consignees than a ring could plausibly have (a free-mail domain, a serviced-office address, a
common director name written as surname + initial) says nothing about who is linked, so it is
dropped from blocking and comparison. Without it one busy value would chain thousands of
unrelated buyers into a giant component.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa

from aiexport.intel._normalize import (
    FREE_MAIL,
    address_key,
    compact_key,
    email_domain,
    name_key,
    officer_keys,
    phone_key,
    website_domain,
)

MATCH_THRESHOLD = 0.15
"""Match probability from which two consignee records are linked."""
GENERIC_SHARE = 12
"""An identifier value held by more consignees than this is generic and ignored."""
IDENTIFIERS = ("phone", "address", "email_domain", "website", "registration")
STRONG = frozenset({"phone", "address", "email domain", "website", "registration"})
"""A link needs one of these, or two agreeing fields: a director's name alone (written as
registries write it, often surname and initial) or a similar name alone does not resolve."""


@dataclass(frozen=True)
class Link:
    """Two consignees resolved as linked, with the evidence."""

    left: str
    right: str
    probability: float
    shared: tuple[str, ...]


_FIELDS = (
    "name_key",
    "compact",
    "country",
    "address",
    "phone",
    "email_domain",
    "website",
    "registration",
    "officers",
)


def party_records(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Identifier normal forms of consignee rows (ckey, name, country, address, phone, ...)."""
    cols: dict[str, list[Any]] = {k: [] for k in ("unique_id", *_FIELDS)}
    uid = cols["unique_id"]
    out = [cols[k] for k in _FIELDS]
    for r in rows:
        uid.append(r["ckey"])
        rec = _record(
            r["name"],
            r.get("country"),
            r.get("address"),
            r.get("country_name"),
            r.get("phone"),
            r.get("email"),
            r.get("website"),
            r.get("registration"),
            r.get("officers"),
        )
        for col, v in zip(out, rec, strict=True):
            col.append(v)
    return pa.table(cols, schema=_SCHEMA)


@lru_cache(maxsize=1_000_000)
def _record(
    name: str,
    country: str | None,
    address: str | None,
    country_name: str | None,
    phone: str | None,
    email: str | None,
    website: str | None,
    registration: str | None,
    officers: str | None,
) -> tuple[Any, ...]:
    """One consignee's normal forms, memoised on its identity fields: the scenarios of one
    world share most consignees, and a worker serves several of them."""
    dom = email_domain(email)
    offs = officer_keys(officers)
    return (
        name_key(name) or None,
        compact_key(name) or None,
        country,
        address_key(_strip_country(address, country_name)),
        phone_key(phone),
        None if dom in FREE_MAIL else dom,
        website_domain(website),
        registration.strip().upper() if registration else None,
        tuple(offs) if offs else None,
    )


_SCHEMA = pa.schema(
    [
        ("unique_id", pa.string()),
        ("name_key", pa.string()),
        ("compact", pa.string()),
        ("country", pa.string()),
        ("address", pa.string()),
        ("phone", pa.string()),
        ("email_domain", pa.string()),
        ("website", pa.string()),
        ("registration", pa.string()),
        ("officers", pa.list_(pa.string())),
    ]
)


def _strip_country(address: str | None, country_name: str | None) -> str | None:
    if not address or not country_name:
        return address
    head, sep, tail = address.rpartition(",")
    return head if sep and tail.strip().lower() == country_name.lower() else address


def demote_generic(
    con: duckdb.DuckDBPyConnection, table: str, limit: int = GENERIC_SHARE
) -> dict[str, int]:
    """Null out identifier values shared by more than `limit` records; return counts demoted."""
    demoted: dict[str, int] = {}
    for col in IDENTIFIERS:
        n = con.execute(
            f"SELECT count(*) FROM (SELECT {col} FROM {table} WHERE {col} IS NOT NULL "
            f"GROUP BY 1 HAVING count(*) > {limit})"
        ).fetchall()
        demoted[col] = int(n[0][0]) if n else 0
        con.execute(
            f"UPDATE {table} SET {col} = NULL WHERE {col} IN (SELECT {col} FROM {table} "
            f"WHERE {col} IS NOT NULL GROUP BY 1 HAVING count(*) > {limit})"
        )
    generic = con.execute(
        f"SELECT o FROM (SELECT unnest(officers) AS o FROM {table}) GROUP BY 1 HAVING count(*) > {limit}"
    ).fetchall()
    demoted["officers"] = len(generic)
    if generic:
        con.execute(
            f"UPDATE {table} SET officers = list_filter(officers, lambda x: NOT list_contains($g, x))",
            {"g": [g[0] for g in generic]},
        )
    con.execute(f"UPDATE {table} SET officers = NULL WHERE len(officers) = 0")
    return demoted


def _settings() -> Any:
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.JaroWinklerAtThresholds("compact", [0.95, 0.88]),
            cl.ExactMatch("address").configure(term_frequency_adjustments=True),
            cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
            cl.ExactMatch("email_domain").configure(term_frequency_adjustments=True),
            cl.ExactMatch("website"),
            cl.ExactMatch("registration"),
            cl.ArrayIntersectAtSizes("officers", [2, 1]),
            cl.ExactMatch("country"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("address"),
            block_on("email_domain"),
            block_on("website"),
            block_on("registration"),
            block_on("compact"),
            block_on("officers", arrays_to_explode=["officers"]),
        ],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        max_iterations=20,
    )


MIN_TRAIN = 300
"""Below this many consignees there is too little to train on: pairs that share a strong
identifier are linked outright (Splink's deterministic linkage, written as one SQL join)."""


def _deterministic_pairs(con: duckdb.DuckDBPyConnection) -> str:
    cols = ("compact", "address", "phone", "email_domain", "website", "registration", "officers")
    sel = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in cols)
    cond = " OR ".join(f"l.{c} = r.{c}" for c in IDENTIFIERS)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE er_pairs AS
        SELECT l.unique_id AS unique_id_l, r.unique_id AS unique_id_r, 1.0 AS match_probability, {sel}
        FROM er_parties l JOIN er_parties r ON l.unique_id < r.unique_id AND ({cond})
        """
    )
    return "er_pairs"


Model = dict[str, Any]
"""A trained Splink model: settings with m and u probabilities and lambda, as Splink's
`save_model_to_json` writes them (JSON-serialisable, picklable)."""


def _splink_pairs(
    con: duckdb.DuckDBPyConnection, threshold: float, model: Model | None = None
) -> tuple[str, Model]:
    """Score the candidate pairs; train first (lambda, u by sampling, m by EM) unless a
    trained `model` is given, in which case its parameters are used as they are."""
    from splink import DuckDBAPI, Linker, block_on

    db = DuckDBAPI(con)
    sdf = db.register("er_parties", dataset_display_name="consignees")
    logging.getLogger("splink").setLevel(logging.ERROR)
    if model is not None:
        linker = Linker(sdf, copy.deepcopy(model), log_level=logging.ERROR)
    else:
        linker = Linker(sdf, _settings(), log_level=logging.ERROR)
        # EM sums match probabilities over rows that a parallel GROUP BY hands over in an
        # order that changes with thread scheduling: the float sums (and so m, u and the
        # links near the threshold) differed in the last bits from run to run. One thread
        # while training makes the model the same for the same orders.
        threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        con.execute("SET threads = 1")
        try:
            linker.training.estimate_probability_two_random_records_match(
                [block_on("phone"), block_on("address"), block_on("registration")], recall=0.7
            )
            linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=7)
            for rule in ("phone", "address"):
                try:
                    linker.training.estimate_parameters_using_expectation_maximisation(
                        block_on(rule), estimate_without_term_frequencies=True
                    )
                except Exception:  # too few pairs under this rule to train on: keep defaults
                    logging.getLogger(__name__).debug("EM skipped on %s", rule)
        finally:
            con.execute(f"SET threads = {int(threads)}")
    pred = linker.inference.predict(threshold_match_probability=threshold)
    return str(pred.physical_name), model if model is not None else linker.misc.save_model_to_json()


def resolve(
    con: duckdb.DuckDBPyConnection,
    records: pa.Table,
    *,
    threshold: float = MATCH_THRESHOLD,
    generic_share: int = GENERIC_SHARE,
    model: Model | None = None,
) -> tuple[list[Link], dict[str, int], Model | None]:
    """Link consignee records; return the links above `threshold`, the demoted counts and the
    Splink model used (trained here unless `model` is given; None when the records were too
    few to train on and were linked deterministically)."""
    con.register("_party_arrow", records)
    con.execute("CREATE OR REPLACE TABLE er_parties AS SELECT * FROM _party_arrow")
    con.unregister("_party_arrow")
    demoted = demote_generic(con, "er_parties", generic_share)
    n = con.execute("SELECT count(*) FROM er_parties").fetchall()
    if not n or n[0][0] < 2:
        return [], demoted, model
    used: Model | None = model
    if n[0][0] < MIN_TRAIN and model is None:
        tbl = _deterministic_pairs(con)
    else:
        tbl, used = _splink_pairs(con, threshold, model)
    rows = con.execute(
        f"""
        SELECT unique_id_l, unique_id_r, match_probability,
               phone_l = phone_r, address_l = address_r, email_domain_l = email_domain_r,
               website_l = website_r, registration_l = registration_r,
               len(list_intersect(officers_l, officers_r)) > 0, jaro_winkler_similarity(compact_l, compact_r) >= 0.88
        FROM {tbl} ORDER BY unique_id_l, unique_id_r
        """
    ).fetchall()
    names = ("phone", "address", "email domain", "website", "registration", "director", "name")
    links = []
    for a, b, p, *hits in rows:
        shared = tuple(nm for nm, hit in zip(names, hits, strict=True) if hit)
        if set(shared) & STRONG or len(shared) >= 2:
            links.append(Link(str(a), str(b), float(p), shared))
    return links, demoted, used
