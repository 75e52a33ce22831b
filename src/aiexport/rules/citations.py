"""The citation table: every rule step the engine can take, with where it is written.

Code names a step by id (`lpp.limit`); `law/citations.yaml` says which CFR section and which
page of the rule it comes from. A data-health test checks that every id the engine uses exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aiexport.errors import LawError
from aiexport.rules.params import Reference, _references, read_yaml

_KEYS = {"title", "page", "fr", "href", "summary"}


@dataclass(frozen=True)
class Citations:
    """Rule-step id -> reference."""

    entries: dict[str, Reference]
    summaries: dict[str, str]
    path: str
    rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.rendered.update({k: ref.render() for k, ref in self.entries.items()})

    def __call__(self, rule_id: str) -> str:
        try:
            return self.rendered[rule_id]
        except KeyError:
            raise LawError(self.path, "no citation for this rule step", rule_id) from None


def load_citations(path: Path) -> Citations:
    raw = read_yaml(path)
    spath = str(path)
    if not isinstance(raw, dict) or set(raw) != {"description", "citations"}:
        raise LawError(spath, "expected exactly `description:` and `citations:`")
    entries: dict[str, Reference] = {}
    summaries: dict[str, str] = {}
    for rule_id, body in raw["citations"].items():
        if not isinstance(body, dict):
            raise LawError(spath, "a citation is a mapping", str(rule_id))
        unknown = set(body) - _KEYS
        if unknown:
            raise LawError(spath, f"unknown keys {sorted(unknown)}", str(rule_id))
        ref_raw = {k: v for k, v in body.items() if k != "summary"}
        refs = _references(ref_raw, spath, str(rule_id))
        entries[str(rule_id)] = refs[0]
        summaries[str(rule_id)] = str(body.get("summary") or "")
    return Citations(entries=entries, summaries=summaries, path=spath)
