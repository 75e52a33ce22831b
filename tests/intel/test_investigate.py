from __future__ import annotations

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
