"""Every column of contract §1, with valid codes, dates and values."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pyarrow.parquet as pq
import pycountry

from aiexport.io.orders import read_orders
from aiexport.world import ORDER_COLUMNS, generate_world

from .conftest import World

CONTRACT_COLUMNS = (
    "order_id", "order_date", "exporter", "item", "item_kind", "quantity", "chips_per_unit",
    "tpp_per_unit", "die_area_mm2", "datacenter", "memory_bandwidth_gbps", "training_ops",
    "open_weights", "unit_price_usd", "destination", "consignee_id", "consignee_name",
    "consignee_address", "consignee_country", "consignee_hq_country", "consignee_government",
    "consignee_phone", "consignee_email", "consignee_website", "consignee_registration",
    "consignee_officers", "consignee_founded", "end_use", "intermediate_name",
    "intermediate_country", "payer_name", "payer_country", "authorization",
)  # fmt: skip
CATALOG_IDS = {
    "H100-SXM5", "H100-PCIe", "H800", "H200", "H20", "A100-SXM4", "A800", "L40S", "L40", "L20",
    "L4", "L2", "RTX-4090", "RTX-4090D", "RTX-5090", "B200", "B100", "GB200", "MI250X", "MI300X",
    "MI325X", "Gaudi2", "Gaudi3",
}  # fmt: skip
END_USES = {"datacenter", "training", "inference", "development", "production", "storage",
            "research", "resale", "unknown"}  # fmt: skip
AUTH = re.compile(r"^(LPP|AIA|ACM|ACA|NAC|(LICENSE|UVEU|NVEU):\S+)$")
ISO = {c.alpha_2 for c in pycountry.countries}


def test_columns_are_the_contract_in_order(world: World) -> None:
    assert tuple(ORDER_COLUMNS) == CONTRACT_COLUMNS
    with (world.path / "orders.csv").open(encoding="utf-8", newline="") as f:
        assert tuple(next(csv.reader(f))) == CONTRACT_COLUMNS
    assert tuple(pq.read_schema(world.path / "orders.parquet").names) == CONTRACT_COLUMNS


def test_values_are_valid(world: World) -> None:
    ids: set[str] = set()
    last = dt.date.min
    for row in world.rows:
        assert row["order_id"] not in ids
        ids.add(row["order_id"])
        day = row["order_date"]
        assert dt.date(2024, 10, 1) <= day <= dt.date(2026, 12, 31)
        assert day >= last, "orders are written in date order"
        last = day
        assert row["exporter"] and row["consignee_name"]
        assert row["item"] in CATALOG_IDS
        assert row["item_kind"] in ("ic", "computer")
        assert row["quantity"] > 0 and row["chips_per_unit"] > 0
        if row["item_kind"] == "computer":
            assert row["chips_per_unit"] in (8, 72)
        assert row["unit_price_usd"] > 0
        for col in ("destination", "consignee_country", "consignee_hq_country"):
            assert row[col] in ISO, (col, row[col])
        for col in ("intermediate_country", "payer_country"):
            assert row[col] is None or row[col] in ISO
        assert (row["intermediate_name"] is None) == (row["intermediate_country"] is None)
        assert (row["payer_name"] is None) == (row["payer_country"] is None)
        assert row["end_use"] in END_USES
        assert row["authorization"] is None or AUTH.match(row["authorization"])
        assert row["consignee_founded"] <= day, "a company is founded before it orders"
        for col in ("consignee_id", "consignee_address", "consignee_phone", "consignee_email",
                    "consignee_registration", "consignee_officers"):  # fmt: skip
            assert row[col], col


def test_project_reader_accepts_both_files(tmp_path: Path) -> None:
    generate_world(tmp_path, seed=3, orders=1_500)
    csv_orders = read_orders(tmp_path / "orders.csv")
    pq_orders = read_orders(tmp_path / "orders.parquet")
    assert len(csv_orders) == len(pq_orders) == 1_500
    for a, b in zip(csv_orders[::97], pq_orders[::97], strict=True):
        assert (a.order_id, a.quantity, a.unit_price_usd, a.consignee_founded, a.payer_name) == (
            b.order_id, b.quantity, b.unit_price_usd, b.consignee_founded, b.payer_name,
        )  # fmt: skip
