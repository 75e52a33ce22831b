"""Rule sets: named stacks of law files with overrides.

`diffusion-2025` is the law tree as published; other rule sets (`ear-2024`, scenario overlays)
name a `base` and override some parameters' dated values. Overrides are validated exactly like
the law files and must name parameters that exist.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from aiexport.errors import LawError, NotFound, ParameterNotFound
from aiexport.rules.citations import Citations, load_citations
from aiexport.rules.params import Parameter, Value, build_parameter, load_tree, read_yaml

DEFAULT_RULE_SET = "diffusion-2025"
_RULESET_KEYS = {"name", "description", "base", "overrides", "extensions"}


def law_root() -> Path:
    """The folder of the bundled law files."""
    return Path(str(resources.files("aiexport") / "law"))


@dataclass(frozen=True)
class RuleSet:
    """A named, immutable set of dated parameters plus the citation table."""

    name: str
    description: str
    parameters: dict[str, Parameter]
    citations: Citations
    extensions: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def param(self, name: str) -> Parameter:
        try:
            return self.parameters[name]
        except KeyError:
            raise ParameterNotFound(
                f"rule set {self.name!r} has no parameter {name!r}; "
                "run `aiexport rules` to list the parameters"
            ) from None

    def value(self, name: str, day: dt.date) -> Any:
        return self.param(name).at(day)

    def number(self, name: str, day: dt.date) -> Decimal:
        value = self.value(name, day)
        if not isinstance(value, Decimal):
            raise LawError(self.param(name).path, f"expected a number on {day}", name)
        return value

    def members(self, name: str, day: dt.date) -> frozenset[str]:
        value = self.value(name, day)
        if not isinstance(value, frozenset):
            raise LawError(self.param(name).path, f"expected a list of codes on {day}", name)
        return value

    def cite(self, name: str, day: dt.date) -> str:
        return self.param(name).citation(day)

    def in_force(self, day: dt.date) -> list[tuple[Parameter, Value, str]]:
        """Every parameter with a value on `day`: (parameter, value, citation)."""
        out = []
        for pname in sorted(self.parameters):
            p = self.parameters[pname]
            try:
                entry = p.entry(day)
            except ParameterNotFound:
                continue
            out.append((p, entry.value, p.citation(day)))
        return out

    def with_overrides(
        self, name: str, description: str, overrides: dict[str, Any], source: str
    ) -> RuleSet:
        """A new rule set whose named parameters get new dated values."""
        params = dict(self.parameters)
        if not isinstance(overrides, dict):
            raise LawError(source, "`overrides:` must be a mapping of parameter names")
        for pname, body in overrides.items():
            if pname not in params:
                raise LawError(source, "override of an unknown parameter", str(pname))
            base = params[pname]
            params[pname] = build_parameter(pname, body, source, ())
            params[pname] = Parameter(
                name=pname,
                description=params[pname].description or base.description,
                unit=params[pname].unit or base.unit,
                values=params[pname].values,
                path=source,
            )
        return RuleSet(
            name=name,
            description=description,
            parameters=params,
            citations=self.citations,
            extensions=dict(self.extensions),
            source=source,
        )


def available_rule_sets() -> list[str]:
    return sorted(p.stem for p in (law_root() / "rulesets").glob("*.yaml"))


@functools.cache
def _base_tree() -> tuple[dict[str, Parameter], Citations]:
    root = law_root()
    return load_tree(root), load_citations(root / "citations.yaml")


def load_rule_set(name_or_path: str = DEFAULT_RULE_SET) -> RuleSet:
    """Load a bundled rule set by name, or a rule-set/scenario YAML file by path."""
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return _load_file(path.resolve(), ())
    bundled = law_root() / "rulesets" / f"{name_or_path}.yaml"
    if not bundled.exists():
        raise NotFound(
            f"no rule set {name_or_path!r}; choose one of {', '.join(available_rule_sets())} "
            "or give the path of a YAML file"
        )
    return _cached(str(bundled))


@functools.cache
def _cached(path: str) -> RuleSet:
    return _load_file(Path(path), ())


def _load_file(path: Path, chain: tuple[str, ...]) -> RuleSet:
    spath = str(path)
    if spath in chain:
        raise LawError(spath, f"rule sets form a cycle: {' -> '.join((*chain, spath))}")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise LawError(spath, "a rule set is a mapping")
    unknown = set(raw) - _RULESET_KEYS
    if unknown:
        raise LawError(spath, f"unknown top-level keys {sorted(unknown)}")
    name = str(raw.get("name") or path.stem)
    description = str(raw.get("description") or "")
    if not description:
        raise LawError(spath, "missing `description`")
    base_name = raw.get("base")
    if base_name is None:
        if raw.get("overrides"):
            raise LawError(spath, "`overrides:` need a `base:` rule set")
        params, citations = _base_tree()
        rs = RuleSet(name, description, dict(params), citations, source=spath)
    else:
        base_path = Path(str(base_name))
        if base_path.suffix not in {".yaml", ".yml"}:
            base_path = law_root() / "rulesets" / f"{base_name}.yaml"
            if not base_path.exists():  # a bundled scenario (law/scenarios/) may serve as base
                base_path = law_root() / "scenarios" / f"{base_name}.yaml"
        elif not base_path.is_absolute():
            base_path = path.parent / base_path
        if not base_path.exists():
            raise LawError(spath, f"base rule set {base_name!r} not found", "base")
        base = _load_file(base_path.resolve(), (*chain, spath))
        rs = base.with_overrides(name, description, raw.get("overrides") or {}, spath)
    ext = raw.get("extensions")
    if ext is not None:
        if not isinstance(ext, dict):
            raise LawError(spath, "`extensions:` must be a mapping", "extensions")
        rs.extensions.update(ext)
    return rs
