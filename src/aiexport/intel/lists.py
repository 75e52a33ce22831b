"""Restricted-party lists in the Consolidated Screening List (CSL) format, with snapshots.

trade.gov publishes the CSL as JSON (`{"results": [...]}`, one object per entry, `addresses` a list
of objects) and as CSV (one row per entry, multi-valued cells `;`-separated, each address written
`street, city, state, postal code, country`). Both load into `ListEntry` records.

Lists go missing or shrink overnight (the CSL lost ~15,000 SDN entries on 2024-05-06,
developerportal#146). Every load is therefore compared with the last load of the same file: the
entry count, per source, is kept in a small state file and a drop of more than `DROP_WARNING`
is reported. The list's SHA-256 is stamped on every screening result.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiexport.errors import InputError

DROP_WARNING = 0.05
# Source names as the CSL writes them, by their short code.
SOURCE_CODES: dict[str, str] = {
    "entity list": "EL",
    "specially designated nationals": "SDN",
    "unverified list": "UVL",
    "military end user": "MEU",
    "denied persons list": "DPL",
    "nonproliferation sanctions": "ISN",
    "sectoral sanctions identifications": "SSI",
    "foreign sanctions evaders": "FSE",
    "itar debarred": "DTC",
}
_MULTI = re.compile(r"\s*;\s*")


@dataclass(frozen=True)
class ListEntry:
    """One restricted party."""

    entry_id: str
    source: str
    source_name: str
    name: str
    alt_names: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    entity_type: str = ""
    programs: tuple[str, ...] = ()
    start_date: str = ""
    federal_register_notice: str = ""
    license_requirement: str = ""
    license_policy: str = ""
    remarks: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.alt_names)


@dataclass(frozen=True)
class ScreeningList:
    """The entries of one or more list files, with where they came from."""

    entries: tuple[ListEntry, ...]
    sources: tuple[str, ...]
    sha256: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def version(self) -> str:
        return self.sha256[:12]

    def by_source(self) -> Counter[str]:
        return Counter(e.source for e in self.entries)


def bundled_list_path() -> Path:
    """The synthetic list shipped for tests and the demo (fictional parties only)."""
    return Path(str(resources.files("aiexport") / "data" / "lists" / "synthetic_csl.csv"))


def source_code(source: str) -> str:
    low = source.lower()
    for needle, code in SOURCE_CODES.items():
        if needle in low:
            return code
    m = re.search(r"\(([A-Z]{2,5})\)", source)
    return m.group(1) if m else source.strip()[:12] or "UNKNOWN"


def _split(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(v for v in _MULTI.split(str(value).strip()) if v)


def _country_of_address(address: str) -> str | None:
    last = address.rsplit(",", 1)[-1].strip()
    return last.upper() if re.fullmatch(r"[A-Za-z]{2}", last) else None


def _entry(raw: dict[str, Any], where: str) -> ListEntry:
    name = str(raw.get("name") or "").strip()
    if not name:
        raise InputError("an entry has no `name`", file=where)
    source_name = str(raw.get("source") or "").strip()
    countries: list[str] = []
    addresses = raw.get("addresses")
    if isinstance(addresses, list):
        for a in addresses:
            if isinstance(a, dict) and a.get("country"):
                countries.append(str(a["country"]).upper())
    elif addresses:
        for a in _split(addresses):
            c = _country_of_address(a)
            if c:
                countries.append(c)
    for key in ("country", "nationalities", "citizenships"):
        countries.extend(c.upper() for c in _split(raw.get(key)) if len(c) == 2)
    return ListEntry(
        entry_id=str(raw.get("_id") or raw.get("id") or raw.get("entity_number") or name),
        source=source_code(source_name) if source_name else "UNKNOWN",
        source_name=source_name,
        name=name,
        alt_names=_split(raw.get("alt_names")),
        countries=tuple(dict.fromkeys(countries)),
        entity_type=str(raw.get("type") or ""),
        programs=_split(raw.get("programs")),
        start_date=str(raw.get("start_date") or ""),
        federal_register_notice=str(raw.get("federal_register_notice") or ""),
        license_requirement=str(raw.get("license_requirement") or ""),
        license_policy=str(raw.get("license_policy") or ""),
        remarks=str(raw.get("remarks") or ""),
    )


def _parse(data: bytes, where: str) -> list[ListEntry]:
    text = data.decode("utf-8-sig", errors="strict")
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not valid JSON ({exc.msg} at line {exc.lineno}); give a CSL JSON or CSV file",
                file=where,
            ) from None
        rows = doc.get("results") if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise InputError("a CSL JSON file has a `results` list", file=where)
        return [_entry(r, where) for r in rows if isinstance(r, dict)]
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "name" not in reader.fieldnames:
        raise InputError(
            "not a CSL file: a CSV needs a header row with at least `name` (and `source`, "
            "`alt_names`, `addresses` ...)",
            file=where,
        )
    return [_entry(r, where) for r in reader]


def load_lists(
    paths: list[Path] | list[str] | tuple[Path | str, ...],
    *,
    state_file: Path | None = None,
) -> ScreeningList:
    """Read list files (CSL JSON or CSV) and compare them with their last load.

    Raises `InputError` for a missing, unreadable or malformed file. A file whose entry count
    (overall or for one source) fell by more than 5 % since it was last loaded, or that is
    empty, gives a warning in `ScreeningList.warnings`; nothing is refused, since a real list
    may shrink after delistings, but a person should look.
    """
    if not paths:
        raise InputError("give at least one list file (CSL JSON or CSV)")
    entries: list[ListEntry] = []
    warnings: list[str] = []
    digest = hashlib.sha256()
    state_path = state_file or default_state_file()
    state = _read_state(state_path)
    for p in paths:
        path = Path(p)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the list file: {exc.strerror}", file=str(path)) from None
        try:
            got = _parse(data, str(path))
        except UnicodeDecodeError:
            raise InputError("the list file is not UTF-8 text", file=str(path)) from None
        except csv.Error as exc:
            raise InputError(f"malformed CSV: {exc}", file=str(path)) from None
        digest.update(data)
        counts = Counter(e.source for e in got)
        key = str(path.resolve())
        warnings.extend(_compare(str(path), len(got), counts, state.get(key)))
        state[key] = {
            "entries": len(got),
            "by_source": dict(counts),
            "sha256": hashlib.sha256(data).hexdigest(),
            "loaded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        entries.extend(got)
    _write_state(state_path, state)
    return ScreeningList(
        entries=tuple(entries),
        sources=tuple(str(p) for p in paths),
        sha256=digest.hexdigest(),
        warnings=tuple(warnings),
    )


def _compare(where: str, n: int, counts: Counter[str], last: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    if n == 0:
        out.append(f"{where}: the list has no entries; screening against it finds nothing")
    if not last:
        return out
    before = int(last.get("entries", 0))
    if before and n < before * (1 - DROP_WARNING):
        out.append(
            f"{where}: {n:,} entries, down from {before:,} at the last load "
            f"({last.get('loaded_at', '?')}); check the list before relying on it"
        )
    for src, was in (last.get("by_source") or {}).items():
        now = counts.get(src, 0)
        if (
            was
            and now < was * (1 - DROP_WARNING)
            and not (before and n < before * (1 - DROP_WARNING))
        ):
            out.append(f"{where}: source {src} has {now:,} entries, down from {was:,}")
    return out


def default_state_file() -> Path:
    """Where list snapshots are remembered: $AIEXPORT_STATE_DIR, else the XDG state directory."""
    base = os.environ.get("AIEXPORT_STATE_DIR") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "aiexport"
    )
    return Path(base) / "lists.json"


def _read_state(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _write_state(path: Path, state: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1, sort_keys=True), "utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only loses the comparison with the next load
