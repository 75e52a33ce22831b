"""Rule scenarios: the regulation's cases written as YAML, run through the decision engine.

Each file under `scenarios/` is a list of tests in the style of OpenFisca's YAML tests::

    - name: A full sentence a policy person can read and check against the rule.
      date: 2025-06-01            # order_date (unless `input` gives one)
      rules: diffusion-2025       # optional; a bundled rule set or `rulesets/<file>.yaml`
      input: {item: H100-SXM5, quantity: 100, destination: IN}   # contract §1 columns
      quota: {"lpp/acme/2025": 20000000}                          # optional preset balances
      licenses: [...]             # optional registered licenses
      veus: [...]                 # optional registered Data Center VEUs
      expected:                   # any subset of contract §2 fields, plus:
        status: license_exception #   obligations (exact, any order) or obligations_include,
        authority: LPP            #   quota (a subset of the quota record, or null),
        reasons_include: [lpp.limit]   # rule ids that must (or must not) appear

A stream of orders (`orders: [...]`, `expected: [...]`) is decided in (order_date, input position)
order with the quota state carried from one order to the next, as `aiexport screen` does.

Files are loaded strictly: an unknown key anywhere is a failure that names the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aiexport.io.orders import KNOWN_COLUMNS, RowParser
from aiexport.rules import Engine, LicenseInfo, MemoryQuota, RuleSet, VeuInfo, load_rule_set
from aiexport.rules.params import read_yaml
from aiexport.screen import decide_all

HERE = Path(__file__).parent / "scenarios"
TEST_KEYS = {"name", "date", "rules", "input", "orders", "quota", "licenses", "veus", "expected"}
EXPECTED_KEYS = {
    "order_id",
    "eccn",
    "status",
    "authority",
    "review_policy",
    "destination_tier",
    "tpp_total",
    "h100_equivalents",
    "obligations",
    "obligations_include",
    "obligations_exclude",
    "quota",
    "rule_set",
    "reasons_include",
    "reasons_exclude",
}
QUOTA_KEYS = {"account", "used_tpp", "limit_tpp", "remaining_tpp", "draws", "accounts"}
LICENSE_KEYS = {"license_id", "destination", "consignee", "tpp", "valid_from", "valid_until"}
VEU_KEYS = {
    "veu_id",
    "kind",
    "holder",
    "hq_country",
    "countries",
    "valid_from",
    "valid_until",
    "holder_name",
}
DEFAULTS: dict[str, Any] = {
    "exporter": "US Exporter Inc",
    "consignee_name": "Acme Compute",
    "quantity": 1,
}


class ScenarioFileError(Exception):
    """A scenario file is malformed; the message names the file."""


@dataclass(frozen=True)
class Scenario:
    file: str
    name: str
    rules: str
    orders: tuple[dict[str, Any], ...]
    expected: tuple[dict[str, Any], ...]
    quota: dict[str, Decimal] = field(default_factory=dict)
    licenses: tuple[LicenseInfo, ...] = ()
    veus: tuple[VeuInfo, ...] = ()


def _fail(path: Path, message: str) -> ScenarioFileError:
    return ScenarioFileError(f"{path.name}: {message}")


def _check_keys(path: Path, where: str, raw: Any, allowed: set[str] | frozenset[str]) -> None:
    if not isinstance(raw, dict):
        raise _fail(path, f"{where} must be a mapping")
    unknown = set(raw) - set(allowed)
    if unknown:
        raise _fail(path, f"{where}: unknown keys {sorted(map(str, unknown))}")


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _license(path: Path, where: str, raw: Any) -> LicenseInfo:
    _check_keys(path, where, raw, LICENSE_KEYS)
    return LicenseInfo(
        license_id=str(raw["license_id"]),
        destination=str(raw["destination"]),
        consignee=None if raw.get("consignee") is None else str(raw["consignee"]),
        tpp=Decimal(str(raw["tpp"])),
        valid_from=_day(raw["valid_from"]),
        valid_until=_day(raw["valid_until"]),
    )


def _veu(path: Path, where: str, raw: Any) -> VeuInfo:
    _check_keys(path, where, raw, VEU_KEYS)
    return VeuInfo(
        veu_id=str(raw["veu_id"]),
        kind=raw["kind"],
        holder=str(raw["holder"]),
        hq_country=str(raw["hq_country"]),
        countries=frozenset(raw.get("countries") or ()),
        valid_from=_day(raw["valid_from"]),
        valid_until=None if raw.get("valid_until") is None else _day(raw["valid_until"]),
        holder_name=raw.get("holder_name"),
    )


def _order_row(path: Path, where: str, raw: Any, date: Any, n: int) -> dict[str, Any]:
    _check_keys(path, where, raw, KNOWN_COLUMNS)
    row = {**DEFAULTS, "order_id": f"T{n}", **raw}
    if "order_date" not in row:
        if date is None:
            raise _fail(path, f"{where}: give the test's `date:` or the order's `order_date`")
        row["order_date"] = date
    return row


def _expected(path: Path, where: str, raw: Any) -> dict[str, Any]:
    _check_keys(path, where, raw, EXPECTED_KEYS)
    quota = raw.get("quota")
    if quota is not None:
        _check_keys(path, f"{where}.quota", quota, QUOTA_KEYS)
    return dict(raw)


def load_file(path: Path) -> list[Scenario]:
    """Every scenario in one file, validated strictly."""
    try:
        raw = read_yaml(path)
    except Exception as exc:  # the law loader's error already names the file
        raise _fail(path, str(exc)) from exc
    if not isinstance(raw, list) or not raw:
        raise _fail(path, "a scenario file is a non-empty list of tests")
    out: list[Scenario] = []
    seen: set[str] = set()
    for i, test in enumerate(raw, start=1):
        where = f"test {i}"
        _check_keys(path, where, test, TEST_KEYS)
        name = test.get("name")
        if not isinstance(name, str) or len(name.split()) < 4 or not name.rstrip().endswith("."):
            raise _fail(path, f"{where}: `name` must be a full sentence ending with a period")
        if name in seen:
            raise _fail(path, f"{where}: duplicate name {name!r}")
        seen.add(name)
        where = f"test {name!r}"
        if ("input" in test) == ("orders" in test):
            raise _fail(path, f"{where}: give exactly one of `input:` or `orders:`")
        date = test.get("date")
        if "input" in test:
            orders = [_order_row(path, f"{where}.input", test["input"], date, 1)]
            expected = [_expected(path, f"{where}.expected", test.get("expected"))]
        else:
            if not isinstance(test["orders"], list) or not isinstance(test.get("expected"), list):
                raise _fail(path, f"{where}: `orders:` and `expected:` must both be lists")
            if len(test["orders"]) != len(test["expected"]):
                raise _fail(path, f"{where}: one `expected` entry per order")
            orders = [
                _order_row(path, f"{where}.orders[{n}]", o, date, n)
                for n, o in enumerate(test["orders"], start=1)
            ]
            expected = [
                _expected(path, f"{where}.expected[{n}]", e)
                for n, e in enumerate(test["expected"], start=1)
            ]
        quota = test.get("quota") or {}
        if not isinstance(quota, dict):
            raise _fail(path, f"{where}: `quota:` maps accounts to TPP")
        rules = str(test.get("rules") or "diffusion-2025")
        if rules.endswith((".yaml", ".yml")):
            ruleset_path = HERE / rules
            if not ruleset_path.exists():
                raise _fail(path, f"{where}: no rule-set file {rules}")
            rules = str(ruleset_path)
        out.append(
            Scenario(
                file=path.name,
                name=name,
                rules=rules,
                orders=tuple(orders),
                expected=tuple(expected),
                quota={str(k): Decimal(str(v)) for k, v in quota.items()},
                licenses=tuple(
                    _license(path, f"{where}.licenses", x) for x in test.get("licenses") or []
                ),
                veus=tuple(_veu(path, f"{where}.veus", x) for x in test.get("veus") or []),
            )
        )
    return out


def scenario_files() -> list[Path]:
    return sorted(HERE.glob("*.yaml"))


def all_scenarios() -> Iterator[Any]:
    for path in scenario_files():
        for sc in load_file(path):
            yield pytest.param(sc, id=f"{path.stem}: {sc.name}")


_RULE_SETS: dict[str, RuleSet] = {}
_ENGINES: dict[str, Engine] = {}


def engine_for(rules: str) -> Engine:
    if rules not in _ENGINES:
        _RULE_SETS[rules] = load_rule_set(rules)
        _ENGINES[rules] = Engine(_RULE_SETS[rules])
    return _ENGINES[rules]


def _num(value: Any) -> Decimal:
    return Decimal(str(value))


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, (int, Decimal, float)) and not isinstance(expected, bool):
        return (
            actual is not None and not isinstance(actual, bool) and _num(actual) == _num(expected)
        )
    return bool(actual == expected)


def check(record: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """Differences between a decision record and the expected fields (empty when they agree)."""
    problems: list[str] = []
    rules_seen = [r["rule"] for r in record["reasons"]]
    for key, want in expected.items():
        if key == "obligations":
            if sorted(record["obligations"]) != sorted(want):
                problems.append(f"obligations: got {record['obligations']}, want {want}")
        elif key == "obligations_include":
            missing = [o for o in want if o not in record["obligations"]]
            if missing:
                problems.append(f"obligations {record['obligations']} lack {missing}")
        elif key == "obligations_exclude":
            present = [o for o in want if o in record["obligations"]]
            if present:
                problems.append(f"obligations {record['obligations']} should not have {present}")
        elif key == "reasons_include":
            missing = [r for r in want if r not in rules_seen]
            if missing:
                problems.append(f"reasons {rules_seen} lack {missing}")
        elif key == "reasons_exclude":
            present = [r for r in want if r in rules_seen]
            if present:
                problems.append(f"reasons {rules_seen} should not have {present}")
        elif key == "quota":
            got = record["quota"]
            if want is None:
                if got is not None:
                    problems.append(f"quota: got {got}, want none")
                continue
            if got is None:
                problems.append(f"quota: got none, want {want}")
                continue
            for qk, qv in want.items():
                if qv is None and got.get(qk) is None:
                    continue
                if not _same(got.get(qk), qv):
                    problems.append(f"quota.{qk}: got {got.get(qk)!r}, want {qv!r}")
        elif not _same(record.get(key), want):
            problems.append(f"{key}: got {record.get(key)!r}, want {want!r}")
    return problems


def run(sc: Scenario) -> list[dict[str, Any]]:
    """Decide the scenario's orders in sequence and return the contract §2 records."""
    engine = engine_for(sc.rules)
    quota = MemoryQuota()
    quota.balances.update(sc.quota)
    quota.licenses.update({lic.license_id: lic for lic in sc.licenses})
    quota.veus.update({v.veu_id: v for v in sc.veus})
    parser = RowParser(sc.file)
    orders = [parser.parse(row, n, n - 1) for n, row in enumerate(sc.orders, start=1)]
    return [d.to_record() for d in decide_all(orders, engine, quota, file=sc.file)]


@pytest.mark.parametrize("scenario", list(all_scenarios()))
def test_scenario(scenario: Scenario) -> None:
    records = run(scenario)
    problems: list[str] = []
    for n, (record, want) in enumerate(zip(records, scenario.expected, strict=True), start=1):
        for p in check(record, want):
            problems.append(f"order {n} ({record['order_id']}): {p}")
    if problems:
        steps = "\n".join(
            f"  [{r['order_id']}] {x['rule']}: {x['text']}" for r in records for x in r["reasons"]
        )
        pytest.fail("\n".join(problems) + "\nreasons:\n" + steps, pytrace=False)


def test_there_are_enough_scenarios() -> None:
    count = sum(len(load_file(p)) for p in scenario_files())
    assert count >= 90, count


def test_every_authority_and_review_policy_is_exercised() -> None:
    authorities: set[str] = set()
    policies: set[str] = set()
    for path in scenario_files():
        for sc in load_file(path):
            for want in sc.expected:
                if "authority" in want:
                    authorities.add(want["authority"])
                if want.get("review_policy"):
                    policies.add(want["review_policy"])
    assert authorities >= {"NLR", "AIA", "ACA", "ACM", "LPP", "NAC", "UVEU", "NVEU", "LICENSE"}
    assert policies >= {
        "presumption_of_approval",
        "case_by_case",
        "presumption_of_denial",
        "policy_of_denial",
    }


def test_both_bundled_rule_sets_and_a_scenario_rule_set_are_used() -> None:
    used = {sc.rules for p in scenario_files() for sc in load_file(p)}
    assert {"diffusion-2025", "ear-2024"} <= used
    assert any(r.endswith(".yaml") for r in used)


# -- the loader itself is strict -------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad_scenarios.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    "text, fragment",
    [
        (
            "- name: An order with a typo in its keys is refused.\n"
            "  date: 2025-06-01\n  input: {item: H100}\n  expectd: {status: x}\n",
            "unknown keys ['expectd']",
        ),
        (
            "- name: An order with an unknown column is refused.\n"
            "  date: 2025-06-01\n  input: {itme: H100}\n  expected: {}\n",
            "unknown keys ['itme']",
        ),
        (
            "- name: An expectation with an unknown field is refused.\n"
            "  date: 2025-06-01\n  input: {item: H100}\n  expected: {stauts: x}\n",
            "unknown keys ['stauts']",
        ),
        (
            "- name: A quota expectation with an unknown field is refused.\n"
            "  date: 2025-06-01\n  input: {item: H100}\n  expected: {quota: {acount: x}}\n",
            "unknown keys ['acount']",
        ),
        ("- name: short\n  date: 2025-06-01\n  input: {}\n  expected: {}\n", "full sentence"),
        (
            "- name: A duplicated key is refused by the strict loader.\n"
            "  date: 2025-06-01\n  date: 2025-06-02\n  input: {}\n  expected: {}\n",
            "duplicate key",
        ),
        (
            "- name: A stream needs one expectation per order.\n"
            "  date: 2025-06-01\n  orders: [{item: H100}, {item: H100}]\n  expected: [{}]\n",
            "one `expected` entry per order",
        ),
    ],
)
def test_scenario_loader_is_strict(tmp_path: Path, text: str, fragment: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as err:
        load_file(path)
    assert path.name in str(err.value)
    assert fragment in str(err.value)


def test_check_reports_each_difference() -> None:
    record: dict[str, Any] = {
        "status": "license_exception",
        "authority": "LPP",
        "obligations": ["A"],
        "quota": {"account": "lpp/x/2025", "used_tpp": 10},
        "reasons": [{"rule": "lpp.limit"}],
        "tpp_total": 10,
    }
    assert check(record, {"authority": "LPP", "tpp_total": Decimal(10)}) == []
    problems = check(
        record,
        {
            "authority": "AIA",
            "obligations": ["B"],
            "quota": {"used_tpp": 11},
            "reasons_include": ["aia.scope"],
        },
    )
    assert len(problems) == 4
