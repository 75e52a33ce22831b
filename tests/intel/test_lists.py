from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiexport.errors import InputError
from aiexport.intel import bundled_list_path, load_lists


def test_bundled_csv_loads(synthetic_list) -> None:  # type: ignore[no-untyped-def]
    assert len(synthetic_list.entries) >= 20
    el = [e for e in synthetic_list.entries if e.source == "EL"]
    assert el and all(e.countries for e in el)
    first = el[0]
    assert first.alt_names and first.federal_register_notice and first.license_requirement
    assert len(synthetic_list.version) == 12


def test_csl_json(tmp_path: Path) -> None:
    doc = {
        "results": [
            {
                "name": "Example Compute Ltd",
                "source": "Entity List (EL) - Bureau of Industry and Security",
                "alt_names": ["Example Computing"],
                "addresses": [{"address": "1 Road", "city": "X", "country": "CN"}],
                "programs": [],
                "start_date": "2025-01-01",
                "federal_register_notice": "90 FR 1",
            }
        ]
    }
    p = tmp_path / "csl.json"
    p.write_text(json.dumps(doc))
    got = load_lists([p])
    (e,) = got.entries
    assert (e.source, e.countries, e.alt_names) == ("EL", ("CN",), ("Example Computing",))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("foo,bar\n1,2\n", "not a CSL file"),
        ('{"results": 3}', "`results` list"),
    ],
)
def test_bad_list_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InputError, match=message):
        load_lists([p])


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_lists([tmp_path / "nope.csv"])
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(InputError, match="UTF-8"):
        load_lists([p])


def test_a_drop_in_entries_is_reported(tmp_path: Path) -> None:
    full = bundled_list_path().read_text("utf-8").splitlines()
    p = tmp_path / "list.csv"
    p.write_text("\n".join(full) + "\n")
    assert load_lists([p]).warnings == ()
    p.write_text("\n".join(full[:-8]) + "\n")  # 8 of 20 entries gone
    warnings = load_lists([p]).warnings
    assert any("down from 20" in w for w in warnings)
    p.write_text(full[0] + "\n")
    assert any("no entries" in w for w in load_lists([p]).warnings)
