"""The law loader refuses malformed files, and every refusal names the file."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from aiexport.errors import LawError
from aiexport.rules import load_rule_set
from aiexport.rules.citations import load_citations
from aiexport.rules.params import load_file, load_tree

GOOD = """\
description: A test parameter
reference:
  - title: 15 CFR 740.29(d)
    page: 57
values:
  2025-01-13:
    value: 26900000
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path, fragment: str) -> LawError:
    with pytest.raises(LawError) as err:
        load_file(path, path.stem)
    assert str(path) in str(err.value), err.value
    assert fragment in str(err.value), err.value
    return err.value


def test_a_good_file_loads(tmp_path: Path) -> None:
    params = load_file(write(tmp_path, "lpp.yaml", GOOD), "lpp")
    assert params["lpp"].at(dt.date(2025, 6, 1)) == Decimal(26900000)
    assert params["lpp"].citation(dt.date(2025, 6, 1)) == "15 CFR 740.29(d) (IFR p.57)"


def test_numbers_are_exact_decimals_and_norway_is_not_false(tmp_path: Path) -> None:
    text = """\
description: Members and a share
parameters:
  members:
    reference: [{title: Supp. No. 5 to 15 CFR part 740, page: 59}]
    values: {2025-01-13: {value: [NO, SE]}}
  share:
    reference: [{title: Supp. No. 10 to 15 CFR part 748, page: 77}]
    values: {2025-01-13: 0.07}
"""
    params = load_file(write(tmp_path, "x.yaml", text), "x")
    assert params["x.members"].at(dt.date(2025, 2, 1)) == frozenset({"NO", "SE"})
    assert params["x.share"].at(dt.date(2025, 2, 1)) == Decimal("0.07")


@pytest.mark.parametrize(
    "text, fragment",
    [
        (GOOD + "unit: tpp\nsource: somewhere\n", "unknown top-level keys ['source']"),
        (
            GOOD.replace("    value: 26900000", "    value: 26900000\n    comment: x"),
            "unknown keys ['comment']",
        ),
        (GOOD.replace("    page: 57", "    page: 57\n    chapter: 2"), "unknown reference keys"),
        (
            "description: d\nparameters:\n  a:\n    values: {2025-01-01: 1}\n    reference: r\n"
            "    units: tpp\n",
            "unknown keys ['units']",
        ),
    ],
    ids=["top-level", "dated value", "reference", "parameter"],
)
def test_unknown_keys_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    refused(write(tmp_path, "unknown.yaml", text), fragment)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = GOOD + "  2025-01-13:\n    value: 1\n"
    refused(write(tmp_path, "dup.yaml", text), "duplicate key")


def test_duplicate_top_level_keys_are_refused(tmp_path: Path) -> None:
    refused(write(tmp_path, "dup2.yaml", "description: a\n" + GOOD), "duplicate key")


def test_unsorted_dates_are_refused(tmp_path: Path) -> None:
    text = GOOD + "  2024-01-01:\n    value: 1\n"
    refused(write(tmp_path, "unsorted.yaml", text), "dates must be ascending")


def test_missing_reference_is_refused(tmp_path: Path) -> None:
    text = "description: No citation anywhere\nvalues:\n  2025-01-13:\n    value: 1\n"
    refused(write(tmp_path, "uncited.yaml", text), "missing reference")


def test_a_reference_without_title_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace("  - title: 15 CFR 740.29(d)\n    page: 57", "  - page: 57")
    refused(write(tmp_path, "notitle.yaml", text), "needs a title")


@pytest.mark.parametrize("bad", ["2025-13-01", "2025/01/13", "13 January 2025", "'2025-1-32'"])
def test_malformed_dates_are_refused(tmp_path: Path, bad: str) -> None:
    text = GOOD.replace("  2025-01-13:", f"  {bad}:")
    refused(write(tmp_path, "baddate.yaml", text), "is not a date YYYY-MM-DD")


SET = """\
description: A country group
reference: [{title: Supp. No. 1 to 15 CFR part 740, page: 1}]
values:
  2023-01-01:
    value: [CN, RU]
  2024-03-15:
    %s
"""


def test_adding_a_present_member_is_refused(tmp_path: Path) -> None:
    refused(write(tmp_path, "d5.yaml", SET % "add: [RU]"), "cannot add present members ['RU']")


def test_removing_an_absent_member_is_refused(tmp_path: Path) -> None:
    refused(write(tmp_path, "d5.yaml", SET % "remove: [NI]"), "cannot remove absent members ['NI']")


def test_a_delta_needs_an_earlier_set(tmp_path: Path) -> None:
    text = GOOD + "  2026-01-01:\n    add: [US]\n"
    refused(write(tmp_path, "delta.yaml", text), "need an earlier set value")


def test_value_and_delta_together_are_refused(tmp_path: Path) -> None:
    refused(write(tmp_path, "both.yaml", SET % "{value: [CN], add: [NI]}"), "give either")


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    text = SET.replace("[CN, RU]", "[CN, RU, CN]") % "add: [NI]"
    refused(write(tmp_path, "dupmembers.yaml", text), "duplicate members ['CN']")


def test_a_file_needs_exactly_values_or_parameters(tmp_path: Path) -> None:
    refused(write(tmp_path, "empty.yaml", "description: nothing\n"), "give exactly one of")


def test_a_parameter_defined_twice_in_a_tree_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "law", "a/b.yaml", GOOD)
    second = write(
        tmp_path / "law",
        "a.yaml",
        "description: d\nreference: [{title: 15 CFR 740, page: 1}]\n"
        "parameters:\n  b:\n    values: {2025-01-13: 1}\n",
    )
    with pytest.raises(LawError) as err:
        load_tree(tmp_path / "law")
    assert "defined twice" in str(err.value)
    assert str(second.parent) in str(err.value)


def test_citation_table_refuses_unknown_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "citations.yaml",
        "description: c\ncitations:\n  lpp.limit: {title: 15 CFR 740.29, page: 57, section: x}\n",
    )
    with pytest.raises(LawError) as err:
        load_citations(path)
    assert str(path) in str(err.value) and "unknown keys ['section']" in str(err.value)


# -- rule sets ---------------------------------------------------------------------------------


def rule_set(tmp_path: Path, name: str, body: str) -> Path:
    return write(tmp_path, f"{name}.yaml", f"name: {name}\ndescription: test rule set\n{body}")


def refused_rule_set(path: Path, fragment: str, names: Path | None = None) -> None:
    with pytest.raises(LawError) as err:
        load_rule_set(str(path))
    assert str(names or path) in str(err.value), err.value
    assert fragment in str(err.value), err.value


def test_a_good_override_applies(tmp_path: Path) -> None:
    path = rule_set(
        tmp_path,
        "half-lpp",
        "base: diffusion-2025\noverrides:\n  exceptions.lpp.annual_limit_tpp:\n"
        "    values: {2025-01-13: {value: 13450000, reference: [{title: Scenario, page: 57}]}}\n",
    )
    rs = load_rule_set(str(path))
    assert rs.name == "half-lpp"
    assert rs.number("exceptions.lpp.annual_limit_tpp", dt.date(2025, 6, 1)) == 13450000


def test_override_of_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    path = rule_set(
        tmp_path,
        "typo",
        "base: diffusion-2025\noverrides:\n  exceptions.lpp.anual_limit_tpp:\n"
        "    values: {2025-01-13: {value: 1, reference: [{title: x, page: 1}]}}\n",
    )
    refused_rule_set(path, "override of an unknown parameter")


def test_override_without_reference_is_refused(tmp_path: Path) -> None:
    path = rule_set(
        tmp_path,
        "uncited",
        "base: diffusion-2025\noverrides:\n  exceptions.lpp.annual_limit_tpp:\n"
        "    values: {2025-01-13: 1}\n",
    )
    refused_rule_set(path, "missing reference")


def test_unknown_rule_set_keys_are_refused(tmp_path: Path) -> None:
    path = rule_set(tmp_path, "extra", "base: diffusion-2025\nparameters: {}\n")
    refused_rule_set(path, "unknown top-level keys ['parameters']")


def test_missing_base_is_refused(tmp_path: Path) -> None:
    path = rule_set(tmp_path, "orphan", "base: no-such-rules\n")
    refused_rule_set(path, "base rule set 'no-such-rules' not found")


def test_overrides_need_a_base(tmp_path: Path) -> None:
    path = rule_set(
        tmp_path,
        "baseless",
        "overrides:\n  exceptions.lpp.annual_limit_tpp:\n    values: {2025-01-13: 1}\n",
    )
    refused_rule_set(path, "need a `base:`")


def test_a_cycle_of_rule_sets_is_refused(tmp_path: Path) -> None:
    a = rule_set(tmp_path, "a", "base: b.yaml\n")
    rule_set(tmp_path, "b", "base: a.yaml\n")
    refused_rule_set(a, "rule sets form a cycle", names=a)


def test_a_rule_set_based_on_itself_is_refused(tmp_path: Path) -> None:
    me = rule_set(tmp_path, "me", "base: me.yaml\n")
    refused_rule_set(me, "rule sets form a cycle")


def test_a_rule_set_with_a_duplicate_key_is_refused(tmp_path: Path) -> None:
    path = rule_set(tmp_path, "twice", "base: diffusion-2025\nbase: ear-2024\n")
    refused_rule_set(path, "duplicate key")
