"""Data health of the law files: every file loads strictly, every value is cited and in order,
every country code is real, every rule step the engine names is in the citation table, and the
figures are the ones the regulation states."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aiexport.rules import RuleSet, available_rule_sets, default_catalog, load_rule_set
from aiexport.rules.citations import load_citations
from aiexport.rules.countries import is_country_code
from aiexport.rules.items import normalise_id
from aiexport.rules.params import Parameter, load_tree, read_yaml
from aiexport.rules.ruleset import law_root

LAW = law_root()
RULES_SRC = Path(__file__).resolve().parents[2] / "src" / "aiexport" / "rules"
D = dt.date


def law_files() -> list[Path]:
    return sorted(LAW.rglob("*.yaml"))


def parameter_files() -> list[Path]:
    return [
        p
        for p in law_files()
        if p.relative_to(LAW).parts[0] not in {"rulesets", "scenarios"}
        and p.name != "citations.yaml"
    ]


@pytest.fixture(scope="module")
def tree() -> dict[str, Parameter]:
    return load_tree(LAW)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rule_set("diffusion-2025")


# -- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", law_files(), ids=lambda p: str(p.relative_to(LAW)))
def test_every_law_file_parses_strictly(path: Path) -> None:
    """No duplicate keys, no YAML 1.1 surprises (`NO` stays Norway)."""
    assert read_yaml(path) is not None


def test_the_parameter_tree_loads(tree: dict[str, Parameter]) -> None:
    assert len(tree) > 40
    assert {p.path for p in tree.values()} == {str(p) for p in parameter_files()}


@pytest.mark.parametrize("name", available_rule_sets())
def test_every_bundled_rule_set_loads(name: str) -> None:
    rs = load_rule_set(name)
    assert rs.name == name and rs.description


def _rule_set_overlays() -> list[Path]:
    out = []
    for p in sorted((LAW / "scenarios").glob("*.yaml")) if (LAW / "scenarios").exists() else []:
        raw = read_yaml(p)
        if isinstance(raw, dict) and "base" in raw:
            out.append(p)
    return out


@pytest.mark.parametrize("path", _rule_set_overlays(), ids=lambda p: p.name)
def test_every_scenario_rule_set_loads(path: Path) -> None:
    assert load_rule_set(str(path)).parameters


# -- every dated value is cited, in order ------------------------------------------------------


def _dated_blocks(raw: Any) -> Iterator[tuple[str, dict[Any, Any]]]:
    if "values" in raw:
        yield "", raw["values"]
    for key, body in (raw.get("parameters") or {}).items():
        yield str(key), body["values"]


@pytest.mark.parametrize("path", parameter_files(), ids=lambda p: str(p.relative_to(LAW)))
def test_dates_are_ascending_and_well_formed(path: Path) -> None:
    raw = read_yaml(path)
    for key, values in _dated_blocks(raw):
        days = [k if isinstance(k, dt.date) else dt.date.fromisoformat(str(k)) for k in values]
        assert days == sorted(days) and len(set(days)) == len(days), (path, key)


def test_every_dated_value_has_a_citation(tree: dict[str, Parameter]) -> None:
    for p in tree.values():
        for v in p.values:
            assert v.references, (p.name, v.start)
            for ref in v.references:
                assert ref.title.strip(), (p.name, v.start)
                cited = bool(ref.page is not None or ref.fr or ref.href)
                cited = cited or "CFR" in ref.title or ref.title.startswith("Not in the rule")
                assert cited, f"{p.name} {v.start}: {ref.title!r} names no CFR section or page"


def test_pages_are_within_the_rule(tree: dict[str, Parameter]) -> None:
    for p in tree.values():
        for v in p.values:
            for ref in v.references:
                assert ref.page is None or 1 <= ref.page <= 168, (p.name, ref)


# -- countries --------------------------------------------------------------------------------


def _country_params(tree: dict[str, Parameter]) -> list[Parameter]:
    return [p for n, p in tree.items() if n.startswith("countries.")]


def test_country_codes_are_iso_3166(tree: dict[str, Parameter]) -> None:
    for p in _country_params(tree):
        for v in p.values:
            value = v.value
            codes: list[str] = []
            if isinstance(value, frozenset):
                codes = list(value)
            elif isinstance(value, dict):
                codes = [*value.keys(), *map(str, value.values())]
            for code in codes:
                assert is_country_code(code), (p.name, v.start, code)


@pytest.mark.parametrize("path", parameter_files(), ids=lambda p: str(p.relative_to(LAW)))
def test_no_member_is_added_while_present_or_removed_while_absent(path: Path) -> None:
    raw = read_yaml(path)
    for key, values in _dated_blocks(raw):
        members: set[str] = set()
        for day, body in values.items():
            body = body if isinstance(body, dict) else {"value": body}
            if "value" in body:
                members = set(body["value"] or []) if isinstance(body["value"], list) else set()
                continue
            add, remove = set(body.get("add") or []), set(body.get("remove") or [])
            assert not add & members, (path.name, key, day, add & members)
            assert remove <= members, (path.name, key, day, remove - members)
            assert not add & remove, (path.name, key, day)
            members = (members | add) - remove


def _change_days(*params: Parameter) -> list[dt.date]:
    return sorted({v.start for p in params for v in p.values})


def test_supp5b_increase_never_exceeds_its_maximum(rules: RuleSet) -> None:
    inc = rules.param("allocation.country.supp5b_increase")
    top = rules.param("allocation.country.supp5b_max_increase")
    for day in _change_days(inc, top):
        assert rules.number(inc.name, day) <= rules.number(top.name, day), day


def test_supp5b_increase_is_within_every_rule_set() -> None:
    for name in available_rule_sets():
        rs = load_rule_set(name)
        inc = rs.param("allocation.country.supp5b_increase")
        top = rs.param("allocation.country.supp5b_max_increase")
        for day in _change_days(inc, top):
            assert rs.number(inc.name, day) <= rs.number(top.name, day), (name, day)


# -- rule steps and citations -----------------------------------------------------------------

_TABLE_IDS = (
    r'ctx\.add\(\s*f?"([^"]+)"',
    r'Reason\(\s*f?"([^"]+)"',
    r'_no\(\s*ctx,\s*[^,]+,\s*f?"([^"]+)"',
    r'(?<!rules\.)\bcite\(\s*f?"([^"]+)"\s*\)',
)
_PARAM_CITES = r'rules\.cite\(\s*"([^"]+)"\s*,'


def _expand(rule_id: str) -> list[str]:
    """`item.4a090{level}` stands for `item.4a090a` and `item.4a090b`."""
    if "{" not in rule_id:
        return [rule_id]
    return [re.sub(r"\{[^}]*\}", x, rule_id) for x in ("a", "b")]


def engine_rule_ids() -> set[str]:
    ids: set[str] = set()
    for path in sorted(RULES_SRC.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in _TABLE_IDS:
            for m in re.finditer(pattern, text):
                ids.update(_expand(m.group(1)))
    return ids


def test_the_scan_finds_the_engine_steps() -> None:
    ids = engine_rule_ids()
    assert len(ids) > 60
    assert {"lpp.limit", "aia.scope", "restrict.740_2", "item.4a090a", "lic.alloc_met"} <= ids


def test_every_rule_step_the_engine_names_is_cited() -> None:
    table = load_citations(LAW / "citations.yaml")
    missing = sorted(engine_rule_ids() - set(table.entries))
    assert not missing, f"add these rule steps to law/citations.yaml: {missing}"


def test_every_parameter_the_engine_cites_exists(tree: dict[str, Parameter]) -> None:
    for path in sorted(RULES_SRC.glob("*.py")):
        for m in re.finditer(_PARAM_CITES, path.read_text(encoding="utf-8")):
            assert m.group(1) in tree, (path.name, m.group(1))


def test_every_citation_names_a_section_and_a_page_or_fr() -> None:
    table = load_citations(LAW / "citations.yaml")
    for rule_id, ref in table.entries.items():
        assert re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", rule_id), rule_id
        assert ref.page is not None or ref.fr or ref.href, rule_id


# -- the catalog ------------------------------------------------------------------------------

CONTRACT_IDS = [
    "H100-SXM5",
    "H100-PCIe",
    "H800",
    "H200",
    "H20",
    "A100-SXM4",
    "A800",
    "L40S",
    "L40",
    "L20",
    "L4",
    "L2",
    "RTX-4090",
    "RTX-4090D",
    "RTX-5090",
    "B200",
    "B100",
    "GB200",
    "MI250X",
    "MI300X",
    "MI325X",
    "Gaudi2",
    "Gaudi3",
]


@pytest.mark.parametrize("ident", CONTRACT_IDS)
def test_contract_catalog_identifiers_resolve(ident: str) -> None:
    cat = default_catalog()
    for spelling in (ident, ident.lower(), ident.replace("-", " "), ident.replace("-", "_")):
        item = cat.get(spelling)
        assert item is not None, spelling
        assert normalise_id(item.item_id) == normalise_id(ident) or item.kind == "ic"
        assert item.ic.tpp > 0


# -- the figures are the regulation's ---------------------------------------------------------

JAN_2025 = D(2025, 1, 15)
TIER1 = [
    "AU",
    "BE",
    "CA",
    "DK",
    "FI",
    "FR",
    "DE",
    "IE",
    "IT",
    "JP",
    "NL",
    "NZ",
    "NO",
    "KR",
    "ES",
    "SE",
    "TW",
    "GB",
    "US",
]


def test_tier1_is_supplement_5_paragraph_a(rules: RuleSet) -> None:
    assert rules.members("countries.tier1", JAN_2025) == frozenset(TIER1)


def test_supplement_5_paragraph_b_was_empty_as_published(rules: RuleSet) -> None:
    assert rules.members("countries.supp5b", JAN_2025) == frozenset()


def test_d5_membership_by_date(rules: RuleSet) -> None:
    d5 = "countries.d5"
    assert len(rules.members(d5, JAN_2025)) == 23
    assert "NI" not in rules.members(d5, D(2024, 3, 14))
    assert "NI" in rules.members(d5, D(2024, 3, 15))
    assert "CY" in rules.members(d5, D(2024, 5, 29))
    assert "CY" not in rules.members(d5, D(2024, 5, 30))
    assert "KH" in rules.members(d5, D(2026, 2, 2))
    assert "KH" not in rules.members(d5, D(2026, 2, 3))
    assert len(rules.members(d5, D(2026, 2, 3))) == 22


def test_macau_is_named_beside_d5_and_hong_kong_takes_chinas_row(rules: RuleSet) -> None:
    assert "MO" not in rules.members("countries.d5", JAN_2025)
    assert rules.members("countries.macau", JAN_2025) == frozenset({"MO"})
    assert rules.value("countries.aliases", JAN_2025) == {"HK": "CN"}


def test_uae_moves_from_d4_to_a5_on_2026_07_10(rules: RuleSet) -> None:
    assert "AE" in rules.members("countries.d4", D(2026, 7, 9))
    assert "AE" not in rules.members("countries.a5", D(2026, 7, 9))
    assert "AE" not in rules.members("countries.d4", D(2026, 7, 10))
    assert "AE" in rules.members("countries.a5", D(2026, 7, 10))


@pytest.mark.parametrize(
    "name, value",
    [
        ("exceptions.lpp.annual_limit_tpp", 26_900_000),
        ("exceptions.lpp.preshipment_notice_tpp", 3_200_000),
        ("exceptions.lpp.certification_copy_days", 30),
        ("exceptions.aia.report_threshold_tpp", 253_000_000),
        ("exceptions.nac_aca.notice_days", 25),
        ("allocation.country.limit_tpp", 790_000_000),
        ("allocation.country.supp5b_max_increase", 1),
        ("allocation.uveu.max_share_outside_tier1", Decimal("0.25")),
        ("allocation.uveu.max_share_single_country", Decimal("0.07")),
        ("allocation.uveu.max_share_outside_us_for_us_hq", Decimal("0.50")),
        ("items.3a090.a1_tpp", 4800),
        ("items.3a090.a2_tpp", 1600),
        ("items.3a090.a2_pd", Decimal("5.92")),
        ("items.3a090.b1_tpp_min", 2400),
        ("items.3a090.b1_tpp_max", 4800),
        ("items.3a090.b1_pd_min", Decimal("1.6")),
        ("items.3a090.b1_pd_max", Decimal("5.92")),
        ("items.3a090.b2_tpp", 1600),
        ("items.3a090.b2_pd_min", Decimal("3.2")),
        ("items.3a090.b2_pd_max", Decimal("5.92")),
        ("items.3a090.note1_tpp", 4800),
        ("items.4e091.training_ops", Decimal("1e26")),
        ("items.4e091.derived_additional_ops", Decimal("2.5e25")),
        ("items.4e091.derived_additional_share", Decimal("0.25")),
    ],
)
def test_figures_match_the_regulation(rules: RuleSet, name: str, value: Decimal | int) -> None:
    assert rules.number(name, D(2025, 6, 1)) == Decimal(value)


def test_nveu_table_1(rules: RuleSet) -> None:
    table = {
        D(2025, 3, 31): 633_000_000,
        D(2025, 6, 30): 949_500_000,
        D(2025, 9, 30): 1_266_000_000,
        D(2025, 12, 31): 1_582_500_000,
        D(2026, 3, 31): 1_899_000_000,
        D(2026, 6, 30): 2_690_250_000,
        D(2026, 9, 30): 3_481_500_000,
        D(2026, 12, 31): 4_272_750_000,
        D(2027, 1, 1): 5_064_000_000,
        D(2027, 12, 31): 5_064_000_000,
    }
    for day, tpp in table.items():
        assert rules.number("allocation.nveu.installed_base_tpp", day) == tpp, day


def test_dates_of_the_rule(rules: RuleSet) -> None:
    assert rules.value("controls.regime", D(2025, 5, 14)) == "ear-2024"
    assert rules.value("controls.regime", D(2025, 5, 15)) == "diffusion"
    assert rules.value("controls.effective_date", D(2025, 6, 1)) == "2025-01-13"
    assert rules.value("controls.compliance_date", D(2025, 6, 1)) == "2025-05-15"
    assert rules.value("controls.supp10_security_in_force", D(2026, 1, 14)) is False
    assert rules.value("controls.supp10_security_in_force", D(2026, 1, 15)) is True
    assert load_rule_set("ear-2024").value("controls.regime", D(2026, 6, 1)) == "ear-2024"


def test_restriction_leaves_no_lpp(rules: RuleSet) -> None:
    allowed = rules.members("exceptions.restriction.allowed", D(2025, 6, 1))
    assert "LPP" not in allowed
    assert {"NAC", "ACA", "ACM", "AIA"} <= allowed
    assert rules.members("exceptions.restriction.aia_only_for", D(2025, 6, 1)) == {"4E091"}
