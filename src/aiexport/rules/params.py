"""Legal parameters: dated values, each with its citation (OpenFisca style).

A law file holds either one parameter (top-level `values:`) or several (top-level
`parameters:`). A parameter's name is its file's path under `law/` with dots, plus the key for
multi-parameter files: `law/exceptions/lpp.yaml` key `annual_limit_tpp` is
`exceptions.lpp.annual_limit_tpp`.

Values are keyed by effective date and must be written in ascending order. A dated entry has
`value:` (a number, string, list or mapping; `null` ends the parameter) or, for set-valued
parameters, `add:`/`remove:` deltas on the previous value. Every dated value needs a citation:
its own `reference:` or the parameter's. Numbers are read as exact `Decimal`s, never floats.

The loader is strict: unknown keys, duplicate keys, unsorted or malformed dates, a missing
reference, a delta on a non-set value are errors that name the file and the key.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from aiexport.errors import LawError, ParameterNotFound

Value = Decimal | str | bool | frozenset[str] | tuple[Any, ...] | Mapping[str, Any] | None

_FILE_KEYS = {"description", "values", "parameters", "reference", "unit", "documentation"}
_PARAM_KEYS = {"description", "values", "reference", "unit", "documentation"}
_VALUE_KEYS = {"value", "add", "remove", "reference", "note"}
_REF_KEYS = {"title", "page", "fr", "href"}


@dataclass(frozen=True, slots=True)
class Reference:
    """Where a value is written: a CFR section, the rule's page, a Federal Register cite."""

    title: str
    page: int | None = None
    fr: str | None = None
    href: str | None = None

    def render(self) -> str:
        """The citation as printed in reasons, e.g. `15 CFR 740.29(d) (IFR p.57)`."""
        extras = []
        if self.page is not None:
            extras.append(f"IFR p.{self.page}")
        if self.fr:
            extras.append(self.fr)
        return self.title + (f" ({'; '.join(extras)})" if extras else "")


@dataclass(frozen=True, slots=True)
class DatedValue:
    start: dt.date
    value: Value
    references: tuple[Reference, ...]
    citation: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.citation:
            rendered = "; ".join(r.render() for r in self.references)
            object.__setattr__(self, "citation", rendered)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A legal parameter whose value changes on dated steps."""

    name: str
    description: str
    unit: str | None
    values: tuple[DatedValue, ...]
    path: str
    starts: tuple[dt.date, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(v.start for v in self.values))

    def entry(self, day: dt.date) -> DatedValue:
        """The dated value in force on `day` (the latest one starting on or before it)."""
        i = bisect.bisect_right(self.starts, day) - 1
        if i < 0 or self.values[i].value is None:
            first = self.values[0].start.isoformat()
            raise ParameterNotFound(
                f"parameter {self.name!r} has no value on {day.isoformat()} "
                f"(values start {first}; see {self.path}). Use a date the rule set covers."
            )
        return self.values[i]

    def at(self, day: dt.date) -> Value:
        return self.entry(day).value

    def citation(self, day: dt.date) -> str:
        return self.entry(day).citation


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads floats as exact Decimals.

    Booleans are only `true`/`false`: YAML 1.1 would read Norway's code `NO` as false.
    """


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen[key] = loader.construct_object(value_node, deep=True)
    return seen


def _construct_float(loader: _StrictLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    return Decimal(text)


def _construct_timestamp(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    """YAML dates, with impossible ones (2025-13-01) reported as YAML errors at their line."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a date YYYY-MM-DD ({exc})", node.start_mark
        ) from exc


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file strictly; errors name the file and the line."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise LawError(str(path), f"not valid YAML: {exc}") from exc


def _references(raw: Any, path: str, key: str) -> tuple[Reference, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    refs = []
    for item in items:
        if isinstance(item, str):
            refs.append(Reference(title=item))
            continue
        if not isinstance(item, dict):
            raise LawError(path, "a reference is a string or a mapping", key)
        unknown = set(item) - _REF_KEYS
        if unknown:
            raise LawError(path, f"unknown reference keys {sorted(unknown)}", key)
        if not item.get("title"):
            raise LawError(path, "a reference needs a title (the CFR section)", key)
        page = item.get("page")
        if page is not None and not isinstance(page, int):
            raise LawError(path, "reference page must be an integer", key)
        refs.append(
            Reference(
                title=str(item["title"]),
                page=page,
                fr=None if item.get("fr") is None else str(item["fr"]),
                href=None if item.get("href") is None else str(item["href"]),
            )
        )
    return tuple(refs)


def _plain(value: Any, path: str, key: str) -> Value:
    if value is None or isinstance(value, (str, bool, Decimal)):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return frozenset(value) if len(set(value)) == len(value) else _dup(path, key, value)
        return tuple(_plain(v, path, key) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v, path, key) for k, v in value.items()}
    raise LawError(path, f"unsupported value {value!r}", key)


def _dup(path: str, key: str, value: list[str]) -> frozenset[str]:
    dups = sorted({v for v in value if value.count(v) > 1})
    raise LawError(path, f"duplicate members {dups}", key)


def _date(raw: Any, path: str, key: str) -> dt.date:
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        return raw
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise LawError(path, f"{raw!r} is not a date YYYY-MM-DD", key) from exc


def build_parameter(
    name: str, raw: Any, path: str, inherited_refs: Sequence[Reference]
) -> Parameter:
    """Validate one parameter definition and build it."""
    if not isinstance(raw, dict):
        raise LawError(path, "a parameter is a mapping with `values:`", name)
    unknown = set(raw) - _PARAM_KEYS
    if unknown:
        raise LawError(path, f"unknown keys {sorted(unknown)}", name)
    if "values" not in raw or not isinstance(raw["values"], dict) or not raw["values"]:
        raise LawError(path, "missing or empty `values:`", name)
    own_refs = _references(raw.get("reference"), path, name) or tuple(inherited_refs)
    entries: list[DatedValue] = []
    previous: Value = None
    last_date: dt.date | None = None
    for raw_date, body in raw["values"].items():
        day = _date(raw_date, path, name)
        if last_date is not None and day <= last_date:
            raise LawError(path, f"dates must be ascending: {day} after {last_date}", name)
        last_date = day
        if not isinstance(body, dict):
            body = {"value": body}
        unknown = set(body) - _VALUE_KEYS
        if unknown:
            raise LawError(path, f"unknown keys {sorted(unknown)} on {day}", name)
        has_value = "value" in body
        has_delta = "add" in body or "remove" in body
        if has_value == has_delta:
            raise LawError(path, f"{day}: give either `value` or `add`/`remove`", name)
        if has_value:
            value = _plain(body["value"], path, name)
        else:
            if not isinstance(previous, frozenset):
                raise LawError(path, f"{day}: `add`/`remove` need an earlier set value", name)
            add = _plain(body.get("add") or [], path, name)
            remove = _plain(body.get("remove") or [], path, name)
            if not isinstance(add, frozenset) or not isinstance(remove, frozenset):
                raise LawError(path, f"{day}: `add`/`remove` are lists of codes", name)
            missing = remove - previous
            if missing:
                raise LawError(path, f"{day}: cannot remove absent members {sorted(missing)}", name)
            present = add & previous
            if present:
                raise LawError(path, f"{day}: cannot add present members {sorted(present)}", name)
            value = (previous | add) - remove
        refs = _references(body.get("reference"), path, name) or own_refs
        if not refs:
            raise LawError(path, f"{day}: missing reference (cite the CFR section)", name)
        entries.append(DatedValue(start=day, value=value, references=refs))
        previous = value
    return Parameter(
        name=name,
        description=str(raw.get("description") or ""),
        unit=None if raw.get("unit") is None else str(raw["unit"]),
        values=tuple(entries),
        path=path,
    )


def load_file(path: Path, name: str) -> dict[str, Parameter]:
    """Load one law file into its parameters."""
    raw = read_yaml(path)
    spath = str(path)
    if not isinstance(raw, dict):
        raise LawError(spath, "a law file is a mapping")
    unknown = set(raw) - _FILE_KEYS
    if unknown:
        raise LawError(spath, f"unknown top-level keys {sorted(unknown)}")
    if not raw.get("description"):
        raise LawError(spath, "missing `description`")
    if ("values" in raw) == ("parameters" in raw):
        raise LawError(spath, "give exactly one of `values:` (one parameter) or `parameters:`")
    file_refs = _references(raw.get("reference"), spath, name)
    if "values" in raw:
        single = {k: v for k, v in raw.items() if k in _PARAM_KEYS}
        return {name: build_parameter(name, single, spath, file_refs)}
    params = raw["parameters"]
    if not isinstance(params, dict) or not params:
        raise LawError(spath, "`parameters:` must be a non-empty mapping")
    return {
        f"{name}.{key}": build_parameter(f"{name}.{key}", body, spath, file_refs)
        for key, body in params.items()
    }


def load_tree(root: Path) -> dict[str, Parameter]:
    """Load every law file under `root` (except `rulesets/` and `citations.yaml`)."""
    out: dict[str, Parameter] = {}
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if rel.parts[0] in {"rulesets", "scenarios"} or rel.name == "citations.yaml":
            continue
        name = ".".join((*rel.parts[:-1], rel.stem))
        for pname, param in load_file(path, name).items():
            if pname in out:
                raise LawError(str(path), f"parameter {pname!r} is defined twice")
            out[pname] = param
    return out
