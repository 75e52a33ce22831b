"""Consignees: the background population and the helpers planted schemes build theirs with.

A `Party` holds everything the orders file says about a consignee plus the few behaviours the
background sampler needs (how active it is, who else pays for it, which authority its exporter
usually cites). Parties are kept in one `PartyBook`; orders refer to them by index, and the orders
writer copies their attributes into each row with a vectorised `take`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from aiexport.world import _names as nm
from aiexport.world.calibration import (
    COUNTRIES,
    COUNTRY_BY_CODE,
    FREE_MAIL_SHARE_SMB,
    SEGMENTS,
    WORLD_START,
)


@dataclass(slots=True)
class Party:
    name: str
    country: str
    segment: str
    address: str = ""
    hq_country: str = ""
    government: bool = False
    phone: str = ""
    email: str = ""
    website: str = ""
    registration: str = ""
    officers: str = ""
    founded: dt.date | None = None
    weight: float = 0.0
    payer_alt_name: str | None = None
    payer_alt_country: str | None = None
    auth_default: str | None = None
    forwarder_rate: float = 0.0
    background: bool = True
    consignee_id: str = ""


DISAMBIGUATE = (
    "Global",
    "Asia",
    "International",
    "Advanced",
    "United",
    "First",
    "Smart",
    "Bright",
    "New",
    "Prime",
    "Grand",
    "Royal",
)


@dataclass
class PartyBook:
    parties: list[Party] = field(default_factory=list)
    _names: set[tuple[str, str]] = field(default_factory=set)

    def add(self, party: Party) -> int:
        """Add a party; a registry never holds two companies of one name in one country."""
        base = party.name
        k = 0
        while (party.name.casefold(), party.country) in self._names:
            word = DISAMBIGUATE[k % len(DISAMBIGUATE)]
            party.name = f"{word} {base}" if k < len(DISAMBIGUATE) else f"{base} {k}"
            k += 1
        self._names.add((party.name.casefold(), party.country))
        self.parties.append(party)
        return len(self.parties) - 1

    def __len__(self) -> int:
        return len(self.parties)

    def assign_ids(self, rng: np.random.Generator) -> None:
        """Give every party a random-looking id, so ids leak nothing about how it was made."""
        n = len(self.parties)
        seen: set[int] = set()
        values = rng.integers(0, 2**40, size=n + 16, dtype=np.int64).tolist()
        out: list[int] = []
        for v in values:
            if v not in seen:
                seen.add(v)
                out.append(v)
            if len(out) == n:
                break
        while len(out) < n:  # pragma: no cover - 2**40 space, practically unreachable
            v = int(rng.integers(0, 2**40))
            if v not in seen:
                seen.add(v)
                out.append(v)
        for party, v in zip(self.parties, out, strict=True):
            party.consignee_id = f"C{v:010X}"

    def to_arrow(self) -> pa.Table:
        """Consignee columns in contract §1 names, one row per party."""
        ps = self.parties
        return pa.table(
            {
                "consignee_id": pa.array([p.consignee_id for p in ps], pa.string()),
                "consignee_name": pa.array([p.name for p in ps], pa.string()),
                "consignee_address": pa.array([p.address or None for p in ps], pa.string()),
                "consignee_country": pa.array([p.country for p in ps], pa.string()),
                "consignee_hq_country": pa.array([p.hq_country or None for p in ps], pa.string()),
                "consignee_government": pa.array([p.government for p in ps], pa.bool_()),
                "consignee_phone": pa.array([p.phone or None for p in ps], pa.string()),
                "consignee_email": pa.array([p.email or None for p in ps], pa.string()),
                "consignee_website": pa.array([p.website or None for p in ps], pa.string()),
                "consignee_registration": pa.array(
                    [p.registration or None for p in ps], pa.string()
                ),
                "consignee_officers": pa.array([p.officers or None for p in ps], pa.string()),
                "consignee_founded": pa.array([p.founded for p in ps], pa.date32()),
            }
        )


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    span = max(0, (end - start).days)
    return start + dt.timedelta(days=nm.rint(rng, 0, span + 1))


def new_officers(rng: random.Random, country: str, k: int) -> list[tuple[str, str]]:
    people = nm.PROFILES[country].people
    return [nm.person(rng, people) for _ in range(k)]


def make_party(
    rng: random.Random,
    country: str,
    segment: str,
    *,
    stem: str | None = None,
    word: str | None = None,
    founded: dt.date | None = None,
    free_mail: bool = False,
    website: bool = True,
    n_officers: int | None = None,
) -> Party:
    """A legitimate-looking company with a full, self-consistent set of identifiers."""
    prof = nm.PROFILES[country]
    stem = stem or nm.company_stem(rng, country)
    if segment == "research":
        word = word or nm.pick(rng, nm.SEGMENT_WORDS["research"])
        city = nm.pick(rng, prof.cities)
        name = f"{city} {word}" if rng.random() < 0.5 else f"{stem} {word}"
        suffix = ""
    else:
        word = word or nm.pick(rng, nm.SEGMENT_WORDS[segment])
        suffix = nm.legal_suffix(rng, country)
        name = nm.company_name(stem, word, suffix)
        if rng.random() < 0.03:
            name = name.upper()
    domain = nm.domain_for(name.split()[0] if segment == "research" else stem, word, country)
    street, city, post = nm.street_address(rng, country)
    cname = COUNTRY_BY_CODE[country].name if country in COUNTRY_BY_CODE else country
    if founded is None:
        founded = random_date(rng, dt.date(1975, 1, 1), dt.date(2023, 6, 30))
    k = n_officers if n_officers is not None else nm.rint(rng, 1, 4)
    people = [*new_officers(rng, country, k)]
    if rng.random() < 0.12:
        # Foreign directors are common (expatriates, investors): alone they signal nothing.
        pool = nm.pick(rng, tuple(nm.SURNAMES))
        people[-1] = nm.person(rng, pool)
    # Registries and invoices write the same facts in many ways; the background is as noisy as
    # the planted parties, so formatting alone never gives a scheme away.
    officers = [nm.format_person(rng, s, g, noisy=True) for s, g in people]
    if free_mail:
        email = nm.free_mail_address(rng, stem)
    else:
        email = f"{nm.email_local(rng, stem)}@{domain}"
    return Party(
        name=name,
        country=country,
        segment=segment,
        address=nm.format_address(rng, street, city, post, cname, noisy=True),
        hq_country=country,
        government=False,
        phone=nm.format_phone(rng, country, nm.phone_number(rng, country), noisy=True),
        email=email,
        website=f"https://www.{domain}" if website and not free_mail else "",
        registration=nm.registration(rng, country, founded),
        officers="; ".join(officers),
        founded=founded,
    )


def build_background(
    book: PartyBook, rng: random.Random, nrng: np.random.Generator, n: int
) -> list[int]:
    """Create `n` background consignees across destinations and segments; return their indices.

    Every destination gets at least one consignee of each segment it can have, so the order-level
    destination shares can match the calibration whatever `n` is.
    """
    seg_names = [s.name for s in SEGMENTS]
    seg_p = np.array([s.consignee_share for s in SEGMENTS])
    seg_p = seg_p / seg_p.sum()
    cty_p = np.array([c.weight for c in COUNTRIES])
    cty_p = cty_p / cty_p.sum()
    countries = [c.code for c in COUNTRIES]
    idx: list[int] = []
    plan: list[tuple[str, str]] = [(c, s) for c in countries for s in seg_names]
    extra = max(0, n - len(plan))
    ci = nrng.choice(len(countries), size=extra, p=cty_p)
    si = nrng.choice(len(seg_names), size=extra, p=seg_p)
    plan += [(countries[int(a)], seg_names[int(b)]) for a, b in zip(ci, si, strict=True)]
    alphas: dict[str, float] = {s.name: s.activity_alpha for s in SEGMENTS}
    activity = nrng.pareto(1.0, size=len(plan)) + 1.0
    for (country, segment), act in zip(plan, activity, strict=True):
        free_mail = segment == "smb" and rng.random() < FREE_MAIL_SHARE_SMB
        founded = None
        if segment == "smb" and rng.random() < 0.3:
            founded = random_date(rng, dt.date(2019, 1, 1), WORLD_START)
        if segment == "distributor" and COUNTRY_BY_CODE[country].hub:
            founded = random_date(rng, dt.date(1985, 1, 1), dt.date(2012, 12, 31))
        # A few small legitimate buyers have an off-profile line of business (a realtor's
        # rendering workstation), so that signal alone is not a verdict.
        word = (
            nm.pick(rng, nm.OFF_PROFILE_WORDS) if segment == "smb" and rng.random() < 0.03 else None
        )
        p = make_party(
            rng,
            country,
            segment,
            word=word,
            founded=founded,
            free_mail=free_mail,
            website=segment != "smb" or rng.random() < 0.7,
        )
        if segment == "research" and rng.random() < 0.5:
            p.government = True
        # Pareto with the segment's shape: a few buyers place most of the segment's orders.
        p.weight = float(act) ** (1.0 / alphas[segment])
        if segment == "distributor":
            p.forwarder_rate = 0.06
        idx.append(book.add(p))
    return idx
