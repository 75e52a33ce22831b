"""Scenarios: a rule set plus the behaviour and enforcement assumptions of the simulator.

A scenario file is a rule-set file (`name`, `description`, `base`, `overrides`, see
`aiexport.rules.ruleset`) whose `extensions:` mapping carries one key, `simulation:`, with the
model's assumptions. Each assumption is a mapping ``{value: …, source: "…"}`` (`note:` optional):
the value and where it comes from, so every figure in a report can be traced the way every legal
parameter can. Defaults for every assumption live in `law/scenarios/assumptions.yaml`; a scenario
restates only what it changes, each change with its own source.

Validation is as strict as the law loader's: an unknown group or key, a missing `source`, a value
of the wrong type or out of range is a `LawError` naming the file and the dotted key
(``extensions.simulation.enforcement.cases_per_year``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiexport.errors import LawError, NotFound
from aiexport.rules.params import DatedValue, Reference, read_yaml
from aiexport.rules.ruleset import RuleSet, law_root, load_rule_set

ASSUMPTIONS_FILE = "assumptions.yaml"
_LEAF_KEYS = {"value", "source", "note"}


@dataclass(frozen=True, slots=True)
class Spec:
    """What one assumption may hold."""

    kind: type
    low: float | None = None
    high: float | None = None
    unit: str = ""
    label: str = ""


SCHEMA: dict[str, dict[str, Spec]] = {
    "enforcement": {
        "cases_per_year": Spec(
            int, 0, None, "cases/year", "Cases the enforcement analysts can work per year"
        ),
    },
    "evasion": {
        "shell_fill_share": Spec(
            float,
            0.01,
            1.0,
            "share",
            "Share of the LPP allowance an evader lets one shell take per year",
        ),
        "cost_per_shell_usd": Spec(
            float, 0, None, "USD/shell-year", "Cost of keeping one shell company for a year"
        ),
        "seed": Spec(int, 0, None, "", "Seed for the identities of new shells"),
    },
    "legitimate": {
        "license_review_days": Spec(
            float, 0, None, "days", "Days a license application waits for a decision"
        ),
        "wait_window_days": Spec(
            int,
            0,
            365,
            "days",
            "A buyer whose LPP allowance binds this close to year end waits for the new year",
        ),
        "case_by_case_approved": Spec(
            bool, None, None, "", "Case-by-case applications from legitimate buyers are approved"
        ),
    },
}


@dataclass(frozen=True, slots=True)
class Assumption:
    group: str
    key: str
    value: Any
    source: str
    note: str
    file: str
    spec: Spec

    @property
    def dotted(self) -> str:
        return f"{self.group}.{self.key}"


@dataclass(frozen=True)
class Scenario:
    """A named rule set plus the simulator's assumptions, each with its source."""

    name: str
    description: str
    rules: RuleSet
    assumptions: dict[str, Assumption]
    path: str

    def get(self, dotted: str) -> Any:
        return self.assumptions[dotted].value

    @property
    def cases_per_year(self) -> int:
        return int(self.get("enforcement.cases_per_year"))

    @property
    def shell_fill_share(self) -> float:
        return float(self.get("evasion.shell_fill_share"))

    @property
    def cost_per_shell_usd(self) -> float:
        return float(self.get("evasion.cost_per_shell_usd"))

    @property
    def seed(self) -> int:
        return int(self.get("evasion.seed"))

    @property
    def license_review_days(self) -> float:
        return float(self.get("legitimate.license_review_days"))

    @property
    def wait_window_days(self) -> int:
        return int(self.get("legitimate.wait_window_days"))

    @property
    def case_by_case_approved(self) -> bool:
        return bool(self.get("legitimate.case_by_case_approved"))

    def with_assumption(self, dotted: str, value: Any, source: str) -> Scenario:
        """A copy with one assumption changed (sweeps)."""
        old = self.assumptions[dotted]
        checked = _check_value(value, old.spec, source, f"extensions.simulation.{dotted}")
        new = dict(self.assumptions)
        new[dotted] = dataclasses.replace(old, value=checked, source=source, file=source)
        return dataclasses.replace(self, assumptions=new)

    def with_parameter(self, name: str, value: Decimal, source: str, suffix: str) -> Scenario:
        """A copy whose rule set gives the numeric parameter `name` the value `value` on every
        date it has a value (sweeps)."""
        param = self.rules.param(name)
        ref = (Reference(title=source),)
        values = tuple(
            DatedValue(v.start, v.value if v.value is None else value, ref) for v in param.values
        )
        params = dict(self.rules.parameters)
        params[name] = dataclasses.replace(param, values=values)
        rules = dataclasses.replace(
            self.rules, name=f"{self.rules.name}{suffix}", parameters=params
        )
        return dataclasses.replace(self, name=f"{self.name}{suffix}", rules=rules)


def scenarios_root() -> Path:
    return law_root() / "scenarios"


def available_scenarios() -> list[str]:
    """The bundled scenarios, by name."""
    return sorted(p.stem for p in scenarios_root().glob("*.yaml") if p.name != ASSUMPTIONS_FILE)


def load_scenario(name_or_path: str) -> Scenario:
    """Load a bundled scenario by name, or a scenario (or plain rule-set) YAML file by path."""
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = scenarios_root() / f"{name_or_path}.yaml"
        if not path.exists():
            raise NotFound(
                f"no scenario {name_or_path!r}; choose one of {', '.join(available_scenarios())} "
                "or give the path of a scenario YAML file"
            )
    path = path.resolve()
    rules = load_rule_set(str(path))
    ext = dict(rules.extensions)
    unknown = set(ext) - {"simulation"}
    if unknown:
        raise LawError(
            str(path), f"unknown extensions {sorted(unknown)}; only `simulation:`", "extensions"
        )
    assumptions = _defaults()
    for layer_path, layer in _simulation_layers(path, ()):
        _merge(assumptions, layer, layer_path)
    missing = [
        f"{g}.{k}" for g, keys in SCHEMA.items() for k in keys if f"{g}.{k}" not in assumptions
    ]
    if missing:
        raise LawError(
            str(path), f"assumptions without a value: {missing}", "extensions.simulation"
        )
    return Scenario(rules.name, rules.description, rules, assumptions, str(path))


def _defaults() -> dict[str, Assumption]:
    path = scenarios_root() / ASSUMPTIONS_FILE
    raw = read_yaml(path)
    if not isinstance(raw, dict) or set(raw) != {"description", "simulation"}:
        raise LawError(
            str(path), "the assumptions file has exactly `description:` and `simulation:`"
        )
    out: dict[str, Assumption] = {}
    _merge(out, raw["simulation"], str(path))
    return out


def _simulation_layers(path: Path, chain: tuple[str, ...]) -> list[tuple[str, Any]]:
    """`extensions.simulation` of the file and of the scenario files it is based on, base first."""
    spath = str(path)
    if spath in chain:
        raise LawError(spath, "scenarios form a cycle", "base")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise LawError(spath, "a scenario is a mapping")
    layers: list[tuple[str, Any]] = []
    base = raw.get("base")
    if base is not None:
        base_path = _scenario_base(path, str(base))
        if base_path is not None:
            layers.extend(_simulation_layers(base_path, (*chain, spath)))
    ext = raw.get("extensions")
    if isinstance(ext, dict) and "simulation" in ext:
        layers.append((spath, ext["simulation"]))
    return layers


def _scenario_base(path: Path, base: str) -> Path | None:
    """The file a `base:` names when it is a scenario (not a bundled rule set)."""
    p = Path(base)
    if p.suffix in {".yaml", ".yml"}:
        p = p if p.is_absolute() else path.parent / p
        return p.resolve() if p.exists() else None
    if (law_root() / "rulesets" / f"{base}.yaml").exists():
        return None
    candidate = scenarios_root() / f"{base}.yaml"
    return candidate.resolve() if candidate.exists() else None


def _merge(into: dict[str, Assumption], layer: Any, path: str) -> None:
    top = "extensions.simulation"
    if not isinstance(layer, dict):
        raise LawError(path, "`simulation:` must be a mapping of groups", top)
    for group, body in layer.items():
        gkey = f"{top}.{group}"
        if group not in SCHEMA:
            raise LawError(path, f"unknown group; expected one of {sorted(SCHEMA)}", gkey)
        if not isinstance(body, dict):
            raise LawError(path, "a group is a mapping of assumptions", gkey)
        for key, leaf in body.items():
            lkey = f"{gkey}.{key}"
            spec = SCHEMA[group].get(str(key))
            if spec is None:
                raise LawError(
                    path, f"unknown assumption; expected one of {sorted(SCHEMA[group])}", lkey
                )
            if not isinstance(leaf, dict):
                raise LawError(path, "an assumption is a mapping {value, source}", lkey)
            bad = set(leaf) - _LEAF_KEYS
            if bad:
                raise LawError(path, f"unknown keys {sorted(bad)}", lkey)
            if "value" not in leaf:
                raise LawError(path, "missing `value`", lkey)
            source = leaf.get("source")
            if not isinstance(source, str) or not source.strip():
                raise LawError(
                    path, "missing `source` (cite it, or say why it is an assumption)", lkey
                )
            value = _check_value(leaf["value"], spec, path, lkey)
            note = leaf.get("note") or ""
            into[f"{group}.{key}"] = Assumption(
                str(group), str(key), value, source.strip(), str(note), path, spec
            )


def _check_value(value: Any, spec: Spec, path: str, key: str) -> Any:
    if spec.kind is bool:
        if not isinstance(value, bool):
            raise LawError(path, f"expected true or false, got {value!r}", key)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise LawError(path, f"expected a number, got {value!r}", key)
    if spec.kind is int and Decimal(value) != Decimal(value).to_integral_value():
        raise LawError(path, f"expected a whole number, got {value}", key)
    num = int(value) if spec.kind is int else float(value)
    if spec.low is not None and num < spec.low:
        raise LawError(path, f"{num} is below the minimum {spec.low}", key)
    if spec.high is not None and num > spec.high:
        raise LawError(path, f"{num} is above the maximum {spec.high}", key)
    return num


def change_dates(rules: RuleSet, skip_prefixes: tuple[str, ...] = ()) -> list[dt.date]:
    """Every date on which some parameter of the rule set changes (epochs of constant law)."""
    days = {
        v.start
        for name, p in rules.parameters.items()
        if not name.startswith(skip_prefixes)
        for v in p.values
    }
    return sorted(days)
