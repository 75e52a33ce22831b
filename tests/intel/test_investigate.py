from __future__ import annotations

import datetime as dt
import json
from importlib import resources
from pathlib import Path

import pytest

from aiexport.errors import InputError
from aiexport.intel import investigate
from aiexport.intel.investigate import Investigation

SAMPLE = Path(str(resources.files("aiexport") / "data" / "sample_world"))
CONTRACT_FIELDS = {"case_id", "score", "signals", "parties", "order_ids", "tpp_total", "summary"}
CODES = {
    "STRUCTURING", "SHARED_IDENTIFIERS", "TRANSSHIPMENT_HUB", "FORWARDER_CONSIGNEE",
    "NEW_ENTITY_LARGE_ORDER", "PAYER_MISMATCH", "UNDERVALUED", "PRE_DEADLINE_SURGE",
    "RESTRICTED_PARTY_MATCH", "HQ_IN_TIER3", "LINE_OF_BUSINESS_MISMATCH",
}  # fmt: skip


@pytest.fixture(scope="module")
def sample() -> Investigation:
    return investigate(SAMPLE / "orders.parquet")


def test_cases_follow_contract(sample: Investigation) -> None:
    doc = json.loads(json.dumps(sample.to_json(), default=str))
    assert doc["cases"]
    scores = [c["score"] for c in doc["cases"]]
    assert scores == sorted(scores, reverse=True)
    for c in doc["cases"]:
        assert set(c) >= CONTRACT_FIELDS
        assert 0 <= c["score"] <= 1
        assert set(c["signals"]) <= CODES
        assert c["order_ids"] and c["parties"] and c["summary"]


def test_planted_structuring_rings_are_found(sample: Investigation) -> None:
    """The sample world is a test fixture here, not a tuning set: only structuring is checked."""
    truth = json.loads((SAMPLE / "truth.json").read_text())
    rings = [s for s in truth["schemes"] if s["kind"] == "structuring"]
    top = [set(c.order_ids) for c in sample.cases[: 2 * len(truth["schemes"])]]
    for ring in rings:
        ids = set(ring["order_ids"])
        assert any(2 * len(ids & c) >= len(ids) for c in top), ring["scheme_id"]
    structuring = [c for c in sample.cases if "STRUCTURING" in [s.code for s in c.signals]]
    assert structuring
    why = next(s.why for s in structuring[0].signals if s.code == "STRUCTURING")
    assert "26,900,000" in why  # the allowance comes from the law files


def test_same_input_same_case_ids(sample: Investigation) -> None:
    again = investigate(SAMPLE / "orders.csv")
    assert [c.case_id for c in again.cases] == [c.case_id for c in sample.cases]


def test_bad_orders_are_refused_with_line_and_column(tmp_path: Path) -> None:
    header = "order_id,order_date,exporter,item,quantity,destination,consignee_name\n"
    cases = {
        "date": (
            header + "A,2025-01-01,x,H100-SXM5,1,IN,Foo\nB,2025-13-01,x,H100-SXM5,1,IN,Bar\n",
            "line 3, column 'order_date'",
        ),
        "qty": (header + "A,2025-01-01,x,H100-SXM5,0,IN,Foo\n", "column 'quantity'"),
        "dup": (
            header + "A,2025-01-01,x,H100-SXM5,1,IN,Foo\nA,2025-01-02,x,H100-SXM5,1,IN,Foo\n",
            "repeats line 2",
        ),
        "item": (header + "A,2025-01-01,x,NO-SUCH-CHIP,1,IN,Foo\n", "column 'item'"),
        "missing": ("order_id,order_date\nA,2025-01-01\n", "missing required column"),
    }
    for name, (text, message) in cases.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text)
        with pytest.raises(InputError, match=message):
            investigate(p)
    with pytest.raises(InputError, match="no such file"):
        investigate(tmp_path / "absent.csv")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(InputError, match="unknown file type"):
        investigate(bad)


def test_restricted_party_match_signal(tmp_path: Path, synthetic_list) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "o.csv"
    p.write_text(
        "order_id,order_date,exporter,item,quantity,destination,consignee_name,consignee_country\n"
        "A1,2025-06-01,Acme,H100-SXM5,8,AE,Kepler Data-Tech F.Z.E.,AE\n"
        "A2,2025-06-02,Acme,H100-SXM5,8,IN,Bharat Compute Pvt Ltd,IN\n"
    )
    inv = investigate(p, lists=synthetic_list)
    (case,) = [c for c in inv.cases if "RESTRICTED_PARTY_MATCH" in [s.code for s in c.signals]]
    assert case.order_ids == ["A1"]
    assert inv.lists == synthetic_list.version


def _line(oid: str, day: str, name: str, cc: str, officer: str) -> str:
    return f'{oid},{day},Acme,H100-SXM5,8,{cc},{name},{cc},"{officer}",2024-09-01\n'


def test_co_surging_consignees_linked_by_a_director_form_one_case(tmp_path: Path) -> None:
    """A director's name alone does not resolve two companies; two new consignees that both
    surge before the compliance date and share one are one case. Two that share a director but
    order steadily stay apart."""
    text = "order_id,order_date,exporter,item,quantity,destination,consignee_name,consignee_country,consignee_officers,consignee_founded\n"
    for i, day in enumerate(
        ("2025-03-01", "2025-03-20", "2025-04-02", "2025-04-15", "2025-05-01", "2025-05-10")
    ):
        text += _line(f"A{i}", day, "Alpha Cloud Sdn Bhd", "MY", "Zhang Wei")
        text += _line(f"B{i}", day, "Beta Hosting Pte Ltd", "SG", "WANG, Wei; Wei Zhang")
    for i, day in enumerate(
        ("2024-11-01", "2025-03-03", "2025-07-01", "2025-11-01", "2026-03-01", "2026-07-01")
    ):
        text += _line(f"C{i}", day, "Gamma Data Sdn Bhd", "MY", "Li Na")
        text += _line(f"D{i}", day, "Delta Compute Pte Ltd", "SG", "Li Na")
    p = tmp_path / "o.csv"
    p.write_text(text)
    inv = investigate(p)
    surge = [c for c in inv.cases if "PRE_DEADLINE_SURGE" in [s.code for s in c.signals]]
    assert len(surge) == 1 and len(surge[0].parties) == 2
    assert any(link["kind"].startswith("co-surge") for link in surge[0].links)
    for c in inv.cases:
        assert not ({"C0", "D0"} <= set(c.order_ids))


def test_parquet_lines_are_numbered_from_one(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "order_id": ["A", "B", "C"],
            "order_date": pa.array([dt.date(2025, 6, 1)] * 3, pa.date32()),
            "item": ["H100-SXM5"] * 3,
            "quantity": pa.array([1, 2, 0], pa.int64()),
            "destination": ["IN"] * 3,
            "consignee_name": ["Foo", "Bar", "Baz"],
        }
    )
    p = tmp_path / "o.parquet"
    pq.write_table(table, p)
    with pytest.raises(InputError, match="line 3, column 'quantity'"):
        investigate(p)
    # A typed column is taken as it is, and its values are still checked.
    chips = pa.array([8, 0, 8], pa.int64())
    pq.write_table(
        table.set_column(3, "quantity", pa.array([1, 2, 3])).append_column("chips_per_unit", chips),
        p,
    )
    with pytest.raises(InputError, match="line 2, column 'chips_per_unit'"):
        investigate(p)


def test_case_evidence_does_not_depend_on_the_order_links_arrive_in() -> None:
    """DuckDB returns unordered rows in an order that changes with thread scheduling; two
    relations of equal strength between the same pair must still be listed the same way."""
    from aiexport.intel.investigate import Relation, _cluster
    from aiexport.intel.resolve import Link

    parties: dict[str, dict[str, object]] = {p: {} for p in ("A", "B", "C")}
    links = [Link("A", "B", 0.5, ("phone",))]
    relations = [
        Relation("A", "B", "payer", "horizon holdings (SG)", 0.8),
        Relation("A", "B", "payer", "temasek trading (SG)", 0.8),
        Relation("A", "C", "payer", "horizon holdings (SG)", 0.8),
        Relation("B", "C", "forwarder", "x (HK)", 0.8),
    ]
    first = _cluster(parties, links, relations)
    assert _cluster(parties, links[::-1], relations[::-1]) == first
    [(members, evidence)], capped = first
    assert members == ["A", "B", "C"] and capped == 0
    assert [e["shared"] for e in evidence if e["kind"] == "payer"][:2] == [
        ["horizon holdings (SG)"],
        ["temasek trading (SG)"],
    ]


def test_of_several_unknown_items_the_first_in_the_file_is_reported(tmp_path: Path) -> None:
    """DuckDB's DISTINCT hands rows over in hash order (on these 100 lines, the last line's item
    came first): the item classified first, and so the error, must follow the file."""
    p = tmp_path / "o.csv"
    day = dt.date(2025, 2, 1)
    rows = ["order_id,order_date,quantity,destination,consignee_name,item"]
    for i in range(100):
        item = "NOPE-FIRST" if i == 0 else "NOPE-LAST" if i == 99 else "H100-SXM5"
        rows.append(f"o{i},{day + dt.timedelta(days=i)},1,IN,Buyer {i % 7},{item}")
    p.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="NOPE-FIRST") as err:
        investigate(p)
    assert "line 2" in str(err.value)


def test_an_item_named_in_two_cases_on_one_day_counts_each_order_once(tmp_path: Path) -> None:
    """'H100-SXM5' and 'h100-sxm5' are one item: one class row for the day, so each line joins
    one class (two rows made every such order count twice)."""
    from aiexport.intel._orders import enrich, load_orders
    from aiexport.rules.ruleset import DEFAULT_RULE_SET, load_rule_set

    p = tmp_path / "o.csv"
    p.write_text(
        "order_id,order_date,quantity,destination,consignee_name,item\n"
        "a,2025-06-02,8,IN,Buyer,H100-SXM5\n"
        "b,2025-06-02,8,IN,Buyer,h100-sxm5\n",
        encoding="utf-8",
    )
    lo = load_orders(p)
    enrich(lo, load_rule_set(DEFAULT_RULE_SET))
    got = lo.con.execute("SELECT order_id, ics FROM lines ORDER BY order_id").fetchall()
    assert got == [("a", 8), ("b", 8)]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_unknown_item_is_reported_on_its_own_line_in_every_format(
    tmp_path: Path, fmt: str
) -> None:
    """A Parquet row 1 is line 1; a CSV's is line 2 (after the header)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table(
        {
            "order_id": ["a", "b"],
            "order_date": ["2025-06-02", "2025-06-03"],
            "quantity": [1, 1],
            "destination": ["IN", "IN"],
            "consignee_name": ["Buyer", "Buyer"],
            "item": ["H100-SXM5", "NOPE-9"],
        }
    )
    p = tmp_path / f"o.{fmt}"
    if fmt == "csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(t, p)
    else:
        pq.write_table(t, p)
    with pytest.raises(InputError, match="NOPE-9") as err:
        investigate(p)
    assert err.value.line == (3 if fmt == "csv" else 2)


def test_an_item_named_only_as_a_kind_is_not_the_item_of_that_name(tmp_path: Path) -> None:
    """Item 'accel' with no kind and kind 'accel' with no item are two specs: a key that
    skipped the missing one made them one, and each line joined both class rows."""
    from aiexport.intel._orders import enrich, load_orders
    from aiexport.rules.ruleset import DEFAULT_RULE_SET, load_rule_set

    p = tmp_path / "o.csv"
    p.write_text(
        "order_id,order_date,quantity,destination,consignee_name,item,item_kind,tpp_per_unit\n"
        "a,2025-06-02,8,IN,Buyer,accel,,1000\n"
        "b,2025-06-02,8,IN,Buyer,,accel,1000\n",
        encoding="utf-8",
    )
    lo = load_orders(p)
    enrich(lo, load_rule_set(DEFAULT_RULE_SET))
    assert lo.con.execute("SELECT count(*) FROM item_class").fetchall() == [(2,)]
    got = lo.con.execute("SELECT order_id, tpp FROM lines ORDER BY order_id").fetchall()
    assert got == [("a", 8000.0), ("b", 8000.0)]


def test_duckdb_connections_draw_no_progress_bar() -> None:
    """A long query would otherwise draw DuckDB's progress bar on the user's terminal."""
    from aiexport.intel._orders import connect

    con = connect()
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchall() == [(False,)]
