"""The batch path gives exactly the per-order engine's decisions, record for record.

Hypothesis generates order streams built to stress the parts where the batch path does its own
work: many consignees sharing LPP allowances right at the boundary (an order refused for
exceeding the allowance draws nothing, so a later smaller one may still fit), several calendar
years, dates around the 2025-05-15 compliance date and the other dated changes, every item kind
(catalog chips with fractional TPP, `tpp_per_unit` overrides, computers with `chips_per_unit`,
model weights), Tier 1/2/3 destinations and headquarters, Macau and Hong Kong, every
`authorization` kind (unregistered LICENSE/UVEU/NVEU ids included), both rule sets and all three
input formats.
"""

from __future__ import annotations

import csv
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiexport.batch import decide_file, summarise
from aiexport.io.orders import read_orders
from aiexport.rules.decide import Engine
from aiexport.rules.quota import MemoryQuota
from aiexport.rules.ruleset import load_rule_set
from aiexport.screen import decide_all
from aiexport.screen import summarise as summarise_dets

ENGINES = {name: Engine(load_rule_set(name)) for name in ("diffusion-2025", "ear-2024")}

DATES = [
    "2025-01-13", "2025-03-31", "2025-04-01", "2025-05-14", "2025-05-15", "2025-05-16",
    "2025-06-30", "2025-07-01", "2025-12-31", "2026-01-01", "2026-01-14", "2026-01-15",
    "2026-02-02", "2026-02-03", "2026-07-10", "2026-12-31", "2027-01-01", "2027-06-30",
]  # fmt: skip
COUNTRIES = [
    "US",
    "DE",
    "JP",
    "IN",
    "AE",
    "SA",
    "SG",
    "BR",
    "MY",
    "IL",
    "VN",
    "CN",
    "HK",
    "MO",
    "RU",
    "KH",
    "NI",
]
ITEMS = [
    ("H100-SXM5", None, None),
    ("h100 sxm5", None, None),
    ("H20", None, None),
    ("L4", None, None),
    ("MI300X", None, None),
    ("RTX-4090", None, None),
    ("B200", None, None),
    ("HGX-H100-8", "computer", None),
    ("H100-SXM5", "computer", "8"),
    ("GB200-NVL72", None, None),
    ("L40S", "ic", None),
    ("Gaudi3", None, None),
]
AUTHS = [
    "", "", "", "LPP", "lpp", "AIA", "ACM", "ACA", "NAC", "LICENSE:L-1", "license: L-2",
    "LICENSE:7", "UVEU:V-1", "NVEU:N-1", "nveu:N-2",
]  # fmt: skip
END_USES = ["", "datacenter", "training", "inference", "development", "production", "storage",
            "research", "resale", "unknown"]  # fmt: skip
# TPP per unit that make LPP totals land exactly on 26,900,000 (and just above or below it).
BOUNDARY_TPP = [
    "26900000",
    "253000000",
    "790000000",
    "395000000",
    "13450000",
    "8966666.6",
    "2690000",
    "1345000.0",
    "26900001",
    "3200000",
    "0",
]

consignees = st.sampled_from(
    [
        ("c-1", "Alpha Compute", "IN", ""),
        ("c-2", "Beta Cloud", "AE", ""),
        ("", "Gamma  Labs, Inc.", "SG", ""),
        ("", "gamma labs inc", "SG", ""),
        ("c-4", "Delta AI", "MY", "CN"),
        ("c-5", "Epsilon", "DE", ""),
        ("c-6", "Zeta", "US", "HK"),
        ("c-7", "Eta Gov", "SA", ""),
        ("c-8", "Theta", "BR", "US"),
        ("c-9", "Iota", "MO", ""),
    ]
)


@st.composite
def order_rows(draw: st.DrawFn, n: int) -> dict[str, str]:
    cid, name, country, hq = draw(consignees)
    kind = draw(st.sampled_from(["item", "item", "item", "tpp", "weights"]))
    row: dict[str, str] = {
        "order_id": f"O-{n}",
        "order_date": draw(st.sampled_from(DATES)),
        "exporter": draw(st.sampled_from(["Nvidia", "AMD", "Dell"])),
        "quantity": str(draw(st.sampled_from([1, 1, 2, 3, 10, 100, 849, 850, 1699, 1700, 5000]))),
        "destination": draw(st.sampled_from([country, country, *COUNTRIES])),
        "consignee_id": cid,
        "consignee_name": name,
        "consignee_country": draw(st.sampled_from(["", "", country])),
        "consignee_hq_country": hq or draw(st.sampled_from(["", "", "", *COUNTRIES])),
        "consignee_government": draw(st.sampled_from(["", "false", "true", "yes"])),
        "end_use": draw(st.sampled_from(END_USES)),
        "authorization": draw(st.sampled_from(AUTHS)),
    }
    if kind == "item":
        item, ikind, chips = draw(st.sampled_from(ITEMS))
        row.update(item=item, item_kind=ikind or "", chips_per_unit=chips or "")
        if draw(st.booleans()) and draw(st.booleans()):
            row["datacenter"] = draw(st.sampled_from(["false", "true"]))
    elif kind == "tpp":
        row.update(
            item=draw(st.sampled_from(["", "ASIC-1"])),
            tpp_per_unit=draw(st.sampled_from([*BOUNDARY_TPP, "4000", "5000.50", "1500"])),
            die_area_mm2=draw(st.sampled_from(["500", "800.0", "300"])),
            datacenter=draw(st.sampled_from(["", "true", "false"])),
            item_kind=draw(st.sampled_from(["", "computer", "ic"])),
            chips_per_unit=draw(st.sampled_from(["", "1", "4"])),
        )
        row["quantity"] = draw(st.sampled_from(["1", "1", "2", "3", "10"]))
    else:
        row.update(
            item="model-x",
            item_kind="model_weights",
            quantity="1",
            training_ops=draw(st.sampled_from(["1e25", "2E+26", "100000000000000000000000000"])),
            open_weights=draw(st.sampled_from(["", "false", "true"])),
        )
    return row


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, str]]:
    n = draw(st.integers(min_value=1, max_value=40))
    return [draw(order_rows(i)) for i in range(n)]


COLUMNS = [
    "order_id", "order_date", "exporter", "item", "item_kind", "quantity", "chips_per_unit",
    "tpp_per_unit", "die_area_mm2", "datacenter", "training_ops", "open_weights", "destination",
    "consignee_id", "consignee_name", "consignee_country", "consignee_hq_country",
    "consignee_government", "end_use", "authorization",
]  # fmt: skip


def write_orders(rows: list[dict[str, str]], path: Path) -> Path:
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=COLUMNS)
            w.writeheader()
            for r in rows:
                w.writerow({c: r.get(c, "") for c in COLUMNS})
    elif path.suffix == ".jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for r in rows:
                obj: dict[str, Any] = {c: v for c, v in r.items() if v != ""}
                if "quantity" in obj:
                    obj["quantity"] = int(obj["quantity"])
                fh.write(json.dumps(obj) + "\n")
    else:
        table = pa.table(
            {
                c: pa.array([r.get(c) or None for r in rows], pa.string())
                for c in COLUMNS
                if c != "quantity"
            }
        ).append_column("quantity", pa.array([int(r["quantity"]) for r in rows], pa.int64()))
        pq.write_table(table, path)
    return path


def assert_same(path: Path, engine: Engine) -> None:
    """Records, summaries and the Parquet output (the columns the batch path builds itself)."""
    from aiexport.io.decisions import write_records

    expected = decide_all(read_orders(path), engine, MemoryQuota(), file=str(path))
    got = decide_file(path, engine)
    assert list(got.records()) == [d.to_record() for d in expected]
    ref = path.with_name(path.stem + ".ref.parquet")
    write_records((d.to_record() for d in expected), ref)
    got.write(path.with_name(path.stem + ".batch.parquet"))
    assert pq.read_table(path.with_name(path.stem + ".batch.parquet")).equals(pq.read_table(ref))
    s1, s2 = summarise(got), summarise_dets(expected, engine.rules.name)
    assert s1.to_dict() == s2.to_dict()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=streams(),
    rule_set=st.sampled_from(["diffusion-2025", "diffusion-2025", "ear-2024"]),
    fmt=st.sampled_from([".csv", ".parquet", ".jsonl"]),
)
def test_batch_equals_per_order(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, str]], rule_set: str, fmt: str
) -> None:
    path = write_orders(rows, tmp_path_factory.mktemp("eq") / f"orders{fmt}")
    assert_same(path, ENGINES[rule_set])


def test_lpp_refusal_draws_nothing_so_a_smaller_order_fits(tmp_path: Path) -> None:
    """26.9M allowance: 20M fits, 10M is refused (would reach 30M), 6.9M then fits exactly, and nothing more fits."""
    rows = []
    for i, tpp in enumerate(["20000000", "10000000", "6900000", "5000"]):
        rows.append(
            {
                "order_id": f"L-{i}",
                "order_date": "2025-06-0" + str(i + 1),
                "exporter": "X",
                "item": "ASIC",
                "tpp_per_unit": tpp,
                "die_area_mm2": "100",
                "quantity": "1",
                "destination": "IN",
                "consignee_name": "Shared Allowance Ltd",
            }
        )
    path = write_orders(rows, tmp_path / "o.csv")
    engine = ENGINES["diffusion-2025"]
    assert_same(path, engine)
    got = [r["authority"] for r in decide_file(path, engine).records()]
    assert got == ["LPP", "LICENSE", "LPP", "LICENSE"]


def test_realistic_mix_parquet_output_identical(tmp_path: Path) -> None:
    """The benchmark's generator, 3,000 orders: Parquet tables and JSONL bytes are identical."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from aiexport.io.decisions import write_records
    from screen import generate_orders  # type: ignore[import-not-found]

    src = tmp_path / "orders.parquet"
    pq.write_table(generate_orders(3000, seed=3), src)
    engine = ENGINES["diffusion-2025"]
    dets = decide_all(read_orders(src), engine, MemoryQuota(), file=str(src))
    write_records((d.to_record() for d in dets), tmp_path / "ref.parquet")
    write_records((d.to_record() for d in dets), tmp_path / "ref.jsonl")
    got = decide_file(src, engine)
    got.write(tmp_path / "batch.parquet")
    got.write(tmp_path / "batch.jsonl")
    a, b = pq.read_table(tmp_path / "batch.parquet"), pq.read_table(tmp_path / "ref.parquet")
    assert a.schema.equals(b.schema, check_metadata=True)
    assert a.equals(b)
    assert (tmp_path / "batch.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_tpp_totals_are_exact_decimals(tmp_path: Path) -> None:
    rows = [
        {
            "order_id": "D-1",
            "order_date": "2025-06-01",
            "exporter": "X",
            "item": "MI300X",
            "quantity": "3",
            "destination": "IN",
            "consignee_name": "A",
        }
    ]
    path = write_orders(rows, tmp_path / "o.csv")
    rec = next(decide_file(path, ENGINES["diffusion-2025"]).records())
    assert Decimal(str(rec["tpp_total"])) == Decimal("20919.2") * 3


def test_uveu_shares_and_lpp_streams(tmp_path: Path) -> None:
    """A US-headquartered UVEU holder ships at home, then abroad until a share would break;
    consignees at the LPP boundary share dates with it. Both paths must agree on every order."""
    rows: list[dict[str, str]] = []
    dests = ["US"] * 6 + ["IN", "DE", "IN", "IN", "IN", "JP", "IN", "IN", "IN", "IN"]
    for i, dest in enumerate(dests):
        rows.append(
            {
                "order_id": f"U-{i}",
                "order_date": f"2025-07-{i + 1:02d}",
                "exporter": "X",
                "item": "H100-SXM5",
                "quantity": str(100 + 37 * i),
                "destination": dest,
                "consignee_id": "hyperscaler",
                "consignee_name": "Hyperscaler Inc",
                "consignee_country": "US",
                "authorization": "UVEU:HS-1",
            }
        )
    for i in range(12):
        rows.append(
            {
                "order_id": f"P-{i}",
                "order_date": f"2025-07-{i + 1:02d}",
                "exporter": "Y",
                "item": "",
                "tpp_per_unit": ["2690000", "3000000", "5000.5"][i % 3],
                "die_area_mm2": "500",
                "quantity": str(1 + i % 4),
                "destination": ["IN", "MY", "BR"][i % 3],
                "consignee_name": f"Shell {i % 2}",
                "authorization": ["", "LPP", "AIA"][i % 3],
            }
        )
    for fmt in (".csv", ".parquet"):
        assert_same(write_orders(rows, tmp_path / f"u{fmt}"), ENGINES["diffusion-2025"])


def test_world_bulk_pass_identical_to_per_order(tmp_path: Path) -> None:
    """The synthetic world (Zipf consignees at their LPP allowances, AIA totals crossing the
    certification threshold, license reviews reading allocations while cited licenses draw them,
    fractional TPP): the bulk pass decides orders of every kind it models, and the Parquet and
    JSONL outputs equal the per-order engine's, byte for byte."""
    from aiexport.batch._vector import K_AIA, K_LIC, K_LPP, K_READ
    from aiexport.io.decisions import write_records
    from aiexport.world import generate_world

    generate_world(tmp_path / "w", seed=11, orders=20_000)
    src = tmp_path / "w" / "orders.parquet"
    engine = ENGINES["diffusion-2025"]
    got = decide_file(src, engine)
    assert got.vec is not None
    kinds = set(got.vec.kind.tolist())
    assert {K_AIA, K_LPP, K_READ, K_LIC} <= kinds, kinds
    assert got.vec.rows.size > got.n // 3
    # Some LPP allowance is refused part-way: the kernel takes over from the exact total.
    assert any(q and q[0].account.startswith("lpp/") for q in got.quota.values())
    got.write(tmp_path / "batch.parquet")
    got.write(tmp_path / "batch.jsonl")
    dets = decide_all(read_orders(src), engine, MemoryQuota(), file=str(src))
    write_records((d.to_record() for d in dets), tmp_path / "ref.parquet")
    write_records((d.to_record() for d in dets), tmp_path / "ref.jsonl")
    a, b = pq.read_table(tmp_path / "batch.parquet"), pq.read_table(tmp_path / "ref.parquet")
    assert a.equals(b)
    assert (tmp_path / "batch.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


@pytest.mark.parametrize("fmt", [".csv", ".parquet", ".jsonl"])
def test_padded_and_non_ascii_edges_read_as_the_reference_reads_them(
    tmp_path: Path, fmt: str
) -> None:
    """The readers' fast paths for text that needs no stripping (plain ASCII edges) against the
    reference: padded ids and items, and names starting or ending in non-ASCII space or
    letters."""
    names = [" Acme Ltd ", "\u00a0Acme Ltd", "Zeta\u3000", "\u00e9toile", "Plain Ltd", "Zeta"]
    ids = [" O-0 ", "\u00a0O-1", "O-2\u3000", "\u00e9-3", "O-4", "O-5\t"]
    rows = [
        {
            "order_id": ids[i],
            "order_date": f"2025-06-{i + 1:02d}",
            "exporter": "X",
            "item": " ASIC " if i % 3 == 0 else "ASIC",
            "tpp_per_unit": "5000000",
            "die_area_mm2": "100",
            "quantity": "1",
            "destination": "IN",
            "consignee_name": name,
        }
        for i, name in enumerate(names)
    ]
    assert_same(write_orders(rows, tmp_path / f"o{fmt}"), ENGINES["diffusion-2025"])
