"""Scenario files are validated as strictly as the law: errors name the file and the key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from aiexport.errors import LawError, NotFound
from aiexport.simulate import available_scenarios, load_scenario

DAY = dt.date(2025, 6, 1)


def test_shipped_scenarios_load_with_sources() -> None:
    assert {"diffusion-2025", "ear-2024", "refinements-2025"} <= set(available_scenarios())
    for name in available_scenarios():
        sc = load_scenario(name)
        assert sc.name == name
        for a in sc.assumptions.values():
            assert a.source.strip(), a.dotted


def test_refinements_parameters() -> None:
    base = load_scenario("diffusion-2025")
    ref = load_scenario("refinements-2025")
    assert base.rules.number("exceptions.lpp.annual_limit_tpp", DAY) == 26_900_000
    assert ref.rules.number("exceptions.lpp.annual_limit_tpp", DAY) < 26_900_000
    assert ref.rules.members("countries.supp5b", DAY) == {"AE", "SA"}
    assert ref.cases_per_year > base.cases_per_year
    assert str(load_scenario("ear-2024").rules.value("controls.regime", DAY)) == "ear-2024"


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "my-scenario.yaml"
    p.write_text(body, encoding="utf-8")
    return p


HEAD = "name: mine\ndescription: test\nbase: diffusion-2025\n"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (
            "extensions:\n  simulation:\n    enforcment:\n      cases_per_year: {value: 1, source: x}\n",
            "extensions.simulation.enforcment",
        ),
        (
            "extensions:\n  simulation:\n    enforcement:\n      case_per_year: {value: 1, source: x}\n",
            "extensions.simulation.enforcement.case_per_year",
        ),
        (
            "extensions:\n  simulation:\n    enforcement:\n      cases_per_year: {value: 1}\n",
            "extensions.simulation.enforcement.cases_per_year",
        ),
        (
            "extensions:\n  simulation:\n    enforcement:\n      cases_per_year: {value: -3, source: x}\n",
            "extensions.simulation.enforcement.cases_per_year",
        ),
        (
            "extensions:\n  simulation:\n    enforcement:\n      cases_per_year: {value: many, source: x}\n",
            "extensions.simulation.enforcement.cases_per_year",
        ),
        (
            "extensions:\n  simulation:\n    evasion:\n      shell_fill_share: {value: 1.5, source: x}\n",
            "extensions.simulation.evasion.shell_fill_share",
        ),
        (
            "extensions:\n  simulation:\n    legitimate:\n      case_by_case_approved: {value: 1, source: x}\n",
            "extensions.simulation.legitimate.case_by_case_approved",
        ),
        (
            "extensions:\n  simulation:\n    legitimate:\n      wait_window_days: {value: 10, source: x, extra: 1}\n",
            "extensions.simulation.legitimate.wait_window_days",
        ),
        ("extensions:\n  other: {}\n", "extensions"),
        (
            "overrides:\n  exceptions.lpp.annual_limit_tpps:\n    values: {2025-01-13: {value: 1, reference: x}}\n",
            "exceptions.lpp.annual_limit_tpps",
        ),
        (
            "overrides:\n  exceptions.lpp.annual_limit_tpp:\n    values: {2025-01-13: {value: 1}}\n",
            "exceptions.lpp.annual_limit_tpp",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, body: str, key: str) -> None:
    path = _write(tmp_path, HEAD + body)
    with pytest.raises(LawError) as err:
        load_scenario(str(path))
    assert str(path) in err.value.message
    assert repr(key) in err.value.message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "simulation: {}\n")
    with pytest.raises(LawError) as err:
        load_scenario(str(path))
    assert str(path) in err.value.message and "simulation" in err.value.message


def test_scenario_on_scenario_merges_assumptions(tmp_path: Path) -> None:
    ref = Path(load_scenario("refinements-2025").path)
    path = _write(
        tmp_path,
        f"name: mine\ndescription: t\nbase: {ref}\nextensions:\n  simulation:\n    evasion:\n"
        "      cost_per_shell_usd: {value: 1000, source: a test}\n",
    )
    sc = load_scenario(str(path))
    assert sc.cost_per_shell_usd == 1000
    assert sc.cases_per_year == load_scenario("refinements-2025").cases_per_year
    assert sc.rules.number("exceptions.lpp.annual_limit_tpp", DAY) == 10_000_000


def test_unknown_scenario_name() -> None:
    with pytest.raises(NotFound):
        load_scenario("no-such-scenario")


def test_scenario_based_on_a_bundled_scenario_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: mine\ndescription: t\nbase: refinements-2025\n")
    sc = load_scenario(str(path))
    assert sc.rules.number("exceptions.lpp.annual_limit_tpp", DAY) == 10_000_000
    assert sc.cases_per_year == load_scenario("refinements-2025").cases_per_year
