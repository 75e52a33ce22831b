"""Planted evasion schemes and the legitimate look-alikes a good detector must not flag.

Typologies follow `../shared/research/enforcement.md` §1 (T1 front buyers, T3 third-country payers,
T5 hub resellers, T7 multi-hop routes, T12 deadline stockpiling) and the signals of §2 (S01 payer
mismatch, S02 new entity buying big, S04 line-of-business mismatch, S05 thin footprint, S06
forwarder as consignee, S07 hub routing, S08 shared identifiers, S09 structuring, S10 surge, S14
Tier 3 parent). Every member draws its own subset of signals: no scheme is uniformly loud.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from typing import Any

from aiexport.world import _names as nm
from aiexport.world._core import (
    AUTH_FIXED,
    PAYER_SELF,
    LineBuffer,
    day_of,
)
from aiexport.world._parties import DISAMBIGUATE, Party, PartyBook, make_party, random_date
from aiexport.world.calibration import (
    COMPLIANCE_DATE,
    COUNTRY_BY_CODE,
    EFFECTIVE_DATE,
    EXPORTERS,
    ITEM_BY_ID,
    LPP_DESTINATIONS,
    PRICE_NOISE_SD,
    SERVER_PRICE_FACTOR,
    VOLUME_DISCOUNT_PER_DECADE,
    WORLD_END,
    WORLD_START,
)

HIGH_END = (
    "H100-SXM5",
    "H200",
    "B200",
    "H100-PCIe",
    "MI300X",
    "A100-SXM4",
    "L40S",
    "Gaudi3",
    "MI325X",
    "GB200",
)
SERVER_ITEMS = ("H100-SXM5", "H200", "B200", "GB200", "MI300X")


@dataclass
class Group:
    """One planted scheme or one set of look-alikes, as it will appear in truth.json."""

    tag: int
    kind: str
    is_scheme: bool
    summary: str
    signals: list[str]
    members: list[tuple[int, str, list[str]]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    tpp: dict[tuple[int, int], int] = field(default_factory=dict)
    lpp_tpp: dict[tuple[int, int], int] = field(default_factory=dict)
    order_ids: list[str] = field(default_factory=list)
    n_lines: int = 0


@dataclass
class Planter:
    r: random.Random
    book: PartyBook
    events: LineBuffer
    lpp_limit: dict[int, int]
    groups: list[Group] = field(default_factory=list)
    inter_pool: list[tuple[str, str]] = field(default_factory=list)
    payer_pool: list[tuple[str, str]] = field(default_factory=list)
    auth_pool: list[str] = field(default_factory=lambda: list(AUTH_FIXED))
    _pool_index: dict[tuple[str, str, str], int] = field(default_factory=dict)

    # --- pools ---------------------------------------------------------------------------------

    def inter(self, name: str, country: str) -> int:
        return self._intern("i", name, country, self.inter_pool)

    def payer(self, name: str, country: str) -> int:
        return self._intern("p", name, country, self.payer_pool)

    def auth(self, value: str) -> int:
        key = ("a", value, "")
        if key not in self._pool_index:
            self._pool_index[key] = len(self.auth_pool)
            self.auth_pool.append(value)
        return self._pool_index[key]

    def _intern(self, kind: str, name: str, country: str, pool: list[tuple[str, str]]) -> int:
        key = (kind, name, country)
        if key not in self._pool_index:
            self._pool_index[key] = len(pool)
            pool.append((name, country))
        return self._pool_index[key]

    # --- building blocks -----------------------------------------------------------------------

    def group(self, kind: str, is_scheme: bool, summary: str, signals: list[str]) -> Group:
        g = Group(len(self.groups), kind, is_scheme, summary, signals)
        self.groups.append(g)
        return g

    def exporter(self) -> int:
        return self.r.choices(range(len(EXPORTERS)), weights=[w for _, w in EXPORTERS])[0]

    def price(self, item: str, on: dt.date, computer: bool, chips: int, gpus: int) -> float:
        f = ITEM_BY_ID[item]
        years = (on - WORLD_START).days / 365.25
        base = f.price_usd * max(0.4, 1.0 - f.decline_per_year * years)
        noise = math.exp(self.r.gauss(0.0, PRICE_NOISE_SD))
        disc = 1.0 - VOLUME_DISCOUNT_PER_DECADE * math.log10(max(gpus, 1))
        return base * noise * disc * (chips * SERVER_PRICE_FACTOR if computer else 1.0)

    def line(
        self,
        g: Group,
        party: int,
        on: dt.date,
        item: str,
        gpus: int,
        *,
        end_use: str,
        server: bool = False,
        inter: int = -1,
        payer: int = -1,
        auth: int = -1,
        price_factor: float = 1.0,
    ) -> int:
        """Add one order line of about `gpus` GPUs; return the TPP it carries."""
        f = ITEM_BY_ID[item]
        computer = server and f.server_gpus > 1 and gpus >= f.server_gpus
        chips = f.server_gpus if computer else 1
        qty = max(1, gpus // chips)
        total = qty * chips
        price = self.price(item, on, computer, chips, total) * price_factor
        self.events.add(
            day=day_of(on),
            party=party,
            item=item,
            computer=computer,
            quantity=qty,
            chips=chips,
            price=price,
            end_use=end_use,
            exporter=self.exporter(),
            inter=inter,
            payer=payer,
            auth=auth,
            tag=g.tag,
        )
        tpp = total * f.tpp
        key = (party, on.year)
        g.tpp[key] = g.tpp.get(key, 0) + tpp
        country = self.book.parties[party].country
        if f.lpp_eligible and country in LPP_DESTINATIONS:
            g.lpp_tpp[key] = g.lpp_tpp.get(key, 0) + tpp
        g.n_lines += 1
        return tpp

    def item_on(self, on: dt.date, choices: tuple[str, ...]) -> str:
        ok = [i for i in choices if ITEM_BY_ID[i].launch <= on]
        return self.r.choice(ok or ["H100-SXM5"])

    def add_party(self, p: Party, background: bool = False) -> int:
        p.background = background
        return self.book.add(p)

    def forwarder_name(self, country: str) -> str:
        stem = nm.company_stem(self.r, country)
        suffix = nm.pick(self.r, nm.PROFILES[country].suffixes)
        return nm.company_name(stem, nm.pick(self.r, nm.FORWARDER_WORDS), suffix)

    # --- typologies ----------------------------------------------------------------------------

    def structuring(self) -> Group:
        """Shells that each stay under the LPP allowance per calendar year; the ring is far above.

        All lines are 3A090.a datacenter parts shipped to Tier 2 destinations outside
        § 740.2(a)(9)(ii), so every line would plausibly go out under LPP.
        """
        r = self.r
        limit_share = (0.55, 0.93)
        hubs = ("SG", "MY", "TH", "ID", "IN", "MX", "IL", "PL", "TR", "BR")
        countries = r.sample(hubs, k=r.choice((1, 1, 2)))
        n_shells = r.randint(4, 10)
        year = r.choice((2025, 2026))
        start = random_date(
            r,
            max(dt.date(year, 1, 10), COMPLIANCE_DATE + dt.timedelta(days=7)),
            dt.date(year, 9, 30),
        )
        end = min(start + dt.timedelta(days=r.randint(60, 300)), WORLD_END)
        people = r.choice(("zh", "zh", "hk", nm.PROFILES[countries[0]].people))
        officers = [nm.person(r, people) for _ in range(r.randint(2, 3))]
        base_addr = [nm.street_address(r, c) for c in countries]
        base_phone = [(c, nm.phone_number(r, c)) for c in countries]
        stem = r.choice(nm.PROFILES["CN"].stems + nm.TECH_STEMS)
        shared_domain = r.random() < 0.5
        domain = nm.domain_for(stem, "trading", countries[0])
        payer_cc = r.choice(("HK", "CN", "HK", "AE"))
        payer_name = (
            f"{nm.company_stem(r, payer_cc)} {r.choice(('Trading', 'Holdings', 'Investment'))} "
            f"{nm.pick(r, nm.PROFILES[payer_cc].suffixes)}"
        )
        use_payer = r.random() < 0.6
        items = tuple(r.sample(HIGH_END[:8], k=r.randint(1, 3)))
        g = self.group(
            "structuring",
            True,
            f"{n_shells} shells in {', '.join(countries)} split 3A090.a purchases so each stays "
            f"under the LPP allowance while the ring takes several times it",
            ["STRUCTURING", "SHARED_IDENTIFIERS"],
        )
        g.extra["officers"] = [f"{g_} {s}" for s, g_ in officers]
        g.extra["shared"] = {
            "addresses": [
                nm.format_address(r, st, ci_, po, COUNTRY_BY_CODE[c].name, noisy=False)
                for (st, ci_, po), c in zip(base_addr, countries, strict=True)
            ],
            "phones": [nm.format_phone(r, c, d, noisy=False) for c, d in base_phone],
            "email": f"@{domain}" if shared_domain else f"{nm.handle_for(stem)}…@free-mail",
        }
        if use_payer:
            g.extra["payers"] = [{"name": payer_name, "country": payer_cc}]
        for _ in range(n_shells):
            country = r.choice(countries)
            ci = countries.index(country)
            links = [k for k in ("officer", "address", "phone", "email") if r.random() < 0.5]
            if not links:
                links = [r.choice(("officer", "address", "phone", "email"))]
            sig = ["STRUCTURING"]
            first = random_date(r, start, start + (end - start) // 3)
            if r.random() < 0.75:
                founded = first - dt.timedelta(days=r.randint(20, 400))
                sig.append("NEW_ENTITY")
            else:
                founded = random_date(r, dt.date(2012, 1, 1), dt.date(2021, 12, 31))
            if r.random() < 0.45:
                s_stem = nm.stem_variant(r, stem)
                sig.append("SIMILAR_NAME")
            else:
                s_stem = nm.company_stem(r, country)
            word = r.choice(
                (
                    "Technology",
                    "Tech",
                    "Trading",
                    "Digital",
                    "Data",
                    "Computing",
                    "Solutions",
                    "Systems",
                    "Cloud",
                )
            )
            suffix = nm.legal_suffix(r, country)
            p = make_party(
                r,
                country,
                "smb",
                stem=s_stem,
                word=word,
                founded=founded,
                website=r.random() < 0.4,
                n_officers=1,
            )
            p.name = nm.company_name(s_stem, word, suffix)
            if "officer" in links:
                chosen = r.sample(officers, k=r.randint(1, len(officers)))
                names = [nm.format_person(r, s, g_, noisy=True) for s, g_ in chosen]
                if r.random() < 0.5:
                    names.append(p.officers)
                p.officers = "; ".join(names)
            if "address" in links:
                street, city, post = base_addr[ci]
                p.address = nm.format_address(
                    r, street, city, post, COUNTRY_BY_CODE[country].name, noisy=True
                )
            if "phone" in links:
                pc, digits = base_phone[ci]
                p.phone = nm.format_phone(r, pc, digits, noisy=True)
            if "email" in links:
                if shared_domain:
                    p.email = f"{nm.email_local(r, stem)}@{domain}"
                else:
                    p.email = nm.free_mail_address(r, stem)
                    p.website = ""
                    sig.append("FREE_MAIL")
            sig.extend("SHARED_" + k.upper() for k in links)
            idx = self.add_party(p)
            g.members.append((idx, "shell", sig))
            # Orders: per calendar year, a budget under the allowance, split over a few lines.
            dates = sorted(random_date(r, first, end) for _ in range(r.randint(2, 8)))
            for yr in sorted({d.year for d in dates}):
                ydates = [d for d in dates if d.year == yr]
                budget = self.lpp_limit[yr] * r.uniform(*limit_share)
                cuts = sorted(r.random() for _ in range(len(ydates) - 1))
                shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
                for on, share in zip(ydates, shares, strict=True):
                    item = self.item_on(on, items)
                    gpus = int(budget * share // ITEM_BY_ID[item].tpp)
                    if gpus < 1:
                        continue
                    payer = -1
                    if use_payer and r.random() < 0.5:
                        payer = self.payer(payer_name, payer_cc)
                        if "PAYER_MISMATCH" not in sig:
                            sig.append("PAYER_MISMATCH")
                    elif r.random() < 0.5:
                        payer = PAYER_SELF
                    pf = 1.0
                    if r.random() < 0.08:
                        pf = r.uniform(0.35, 0.55)
                        if "UNDERVALUED" not in sig:
                            sig.append("UNDERVALUED")
                    self.line(
                        g,
                        idx,
                        on,
                        item,
                        gpus,
                        server=r.random() < 0.5,
                        end_use=r.choice(("datacenter", "training", "inference", "development")),
                        payer=payer,
                        price_factor=pf,
                        auth=self.auth("LPP") if r.random() < 0.7 else -1,
                    )
        return g

    def transshipment(self) -> Group:
        """Hub consignees fed through rotating forwarders and paid for from a third country."""
        r = self.r
        hubs = r.sample(("SG", "MY", "TH", "AE", "ID", "VN"), k=r.choice((1, 2)))
        n = r.randint(2, 5)
        fwds = []
        for _ in range(r.randint(2, 4)):
            fc = r.choice([*hubs, "HK"])
            fwds.append((self.forwarder_name(fc), fc))
        payers = []
        for _ in range(r.randint(1, 2)):
            pc = r.choice(("HK", "CN", "HK", *(h for h in ("AE", "SG") if h not in hubs)))
            payers.append(
                (
                    f"{nm.company_stem(r, pc)} "
                    f"{r.choice(('International Trading', 'Supply Chain', 'Holdings'))} "
                    f"{nm.pick(r, nm.PROFILES[pc].suffixes)}",
                    pc,
                )
            )
        start = random_date(r, dt.date(2024, 11, 1), dt.date(2026, 6, 30))
        end = min(start + dt.timedelta(days=r.randint(90, 360)), WORLD_END)
        g = self.group(
            "transshipment",
            True,
            f"{n} consignees in {', '.join(hubs)} take large server orders through freight "
            "forwarders, paid from a third country, for onward shipment",
            ["TRANSSHIPMENT_HUB", "FORWARDER_CONSIGNEE", "PAYER_MISMATCH"],
        )
        g.extra["forwarders"] = [{"name": a, "country": b} for a, b in fwds]
        g.extra["payers"] = [{"name": a, "country": b} for a, b in payers]
        phone = None
        for _ in range(n):
            country = r.choice(hubs)
            sig = ["TRANSSHIPMENT_HUB"]
            new = r.random() < 0.6
            founded = (
                start - dt.timedelta(days=r.randint(30, 500))
                if new
                else random_date(r, dt.date(2005, 1, 1), dt.date(2020, 1, 1))
            )
            if new:
                sig.append("NEW_ENTITY")
            p = make_party(
                r,
                country,
                "distributor",
                founded=founded,
                word=r.choice(
                    (
                        "Trading",
                        "Technology Trading",
                        "Electronics",
                        "Global Supply",
                        "Digital Trade",
                    )
                ),
                free_mail=r.random() < 0.3,
                website=r.random() < 0.5,
            )
            if p.email.split("@")[1] in nm.FREE_MAIL:
                sig.append("FREE_MAIL")
            if phone is not None and r.random() < 0.4:
                p.phone = nm.format_phone(r, phone[0], phone[1], noisy=True)
                sig.append("SHARED_PHONE")
            elif phone is None:
                phone = (country, nm.phone_number(r, country))
                p.phone = nm.format_phone(r, country, phone[1], noisy=False)
            idx = self.add_party(p)
            g.members.append((idx, "consignee", sig))
            for _ in range(r.randint(3, 12)):
                on = random_date(r, start, end)
                item = self.item_on(on, SERVER_ITEMS)
                gpus = 8 * r.randint(2, 48)
                inter = self.inter(*r.choice(fwds)) if r.random() < 0.8 else -1
                payer = self.payer(*r.choice(payers)) if r.random() < 0.75 else -1
                if inter >= 0 and "FORWARDER_CONSIGNEE" not in sig:
                    sig.append("FORWARDER_CONSIGNEE")
                if payer >= 0 and "PAYER_MISMATCH" not in sig:
                    sig.append("PAYER_MISMATCH")
                pf = r.uniform(1.2, 1.5) if r.random() < 0.2 else 1.0
                auth = -1
                if on >= EFFECTIVE_DATE and r.random() < 0.3:
                    auth = self.auth("LPP")
                self.line(
                    g,
                    idx,
                    on,
                    item,
                    gpus,
                    server=True,
                    end_use=r.choice(("resale", "datacenter", "unknown", "storage")),
                    inter=inter,
                    payer=payer,
                    auth=auth,
                    price_factor=pf,
                )
        return g

    def front(self) -> Group:
        """Off-profile companies (a realtor, a tea trader) buying datacenter GPUs."""
        r = self.r
        n = r.randint(1, 3)
        countries = ("MY", "TH", "SG", "ID", "AE", "JP", "TW", "IN", "MX")
        start = random_date(r, dt.date(2024, 10, 15), dt.date(2026, 8, 31))
        g = self.group(
            "front",
            True,
            f"{n} recently formed companies whose line of business does not fit (real estate, "
            "trading, consumer goods) buy datacenter GPUs in volume",
            ["LINE_OF_BUSINESS_MISMATCH", "NEW_ENTITY_LARGE_ORDER"],
        )
        payer = None
        # Several fronts of one scheme are paid for by the same third-country party (ALX: HK and
        # PRC payers; Janford: wires from the PRC; enforcement.md T3); a lone front sometimes
        # pays for itself.
        if n > 1 or r.random() < 0.6:
            pc = r.choice(("HK", "CN"))
            payer = (f"{nm.company_stem(r, pc)} Trading {nm.pick(r, nm.PROFILES[pc].suffixes)}", pc)
            g.extra["payers"] = [{"name": payer[0], "country": payer[1]}]
        for _ in range(n):
            country = r.choice(countries)
            sig = ["LINE_OF_BUSINESS_MISMATCH"]
            word = r.choice(nm.OFF_PROFILE_WORDS)
            thin = r.random() < 0.7
            founded = start - dt.timedelta(days=r.randint(15, 330))
            p = make_party(
                r,
                country,
                "enterprise",
                word=word,
                founded=founded,
                free_mail=thin,
                website=not thin,
                n_officers=1,
            )
            sig.append("NEW_ENTITY_LARGE_ORDER")
            if thin:
                sig.append("THIN_FOOTPRINT")
            idx = self.add_party(p)
            g.members.append((idx, "front", sig))
            for _ in range(r.randint(2, 6)):
                on = random_date(r, start, min(start + dt.timedelta(days=240), WORLD_END))
                item = self.item_on(on, SERVER_ITEMS)
                py = -1
                if payer is not None and r.random() < 0.7:
                    py = self.payer(*payer)
                    if "PAYER_MISMATCH" not in sig:
                        sig.append("PAYER_MISMATCH")
                auth = -1
                tier = COUNTRY_BY_CODE[country].tier
                if on >= EFFECTIVE_DATE and r.random() < 0.5:
                    auth = self.auth("AIA" if tier == 1 else "LPP")
                self.line(
                    g,
                    idx,
                    on,
                    item,
                    8 * r.randint(4, 50),
                    server=True,
                    end_use=r.choice(("datacenter", "development", "training")),
                    payer=py,
                    auth=auth,
                )
        return g

    def surge(self) -> Group:
        """Hub consignees of one buyer that pile up orders before the compliance date, then stop.

        Stockpiling is done by one buyer, or by buyers linked to each other, never by strangers
        who happen to order at the same time (enforcement.md §1 T12, C18, C19): the H20
        stockpile was ordered by a handful of Chinese firms; the ~1M H20s went through their
        usual channels; a Chinese appliance maker ordered 300 H100 servers through a Malaysian
        broker that set up a Malaysian shell for it; Megaspeed bought through its Malaysian
        subsidiary Speedmatrix. So the members here are entities of one principal: each shares
        at least one identifier with the others, written with the noise of real records, a
        director (as the registry writes the name), the principal's phone, the principal paying
        from a third country, or the principal's freight forwarder. A detector that sees only
        timing cannot group them; one that links co-surging consignees through what they share
        can.
        """
        r = self.r
        n = r.randint(2, 4)
        countries = ("MY", "MY", "TH", "SG", "IN", "ID")
        lo = COMPLIANCE_DATE - dt.timedelta(days=r.randint(60, 90))
        hi = COMPLIANCE_DATE - dt.timedelta(days=1)
        g = self.group(
            "surge",
            True,
            f"{n} hub consignees of one buyer multiply their orders in the {(hi - lo).days} days "
            f"before the {COMPLIANCE_DATE.isoformat()} compliance date, then fall silent",
            ["PRE_DEADLINE_SURGE", "SHARED_IDENTIFIERS"],
        )
        g.extra["window"] = {"start": lo.isoformat(), "end": hi.isoformat()}
        officer = nm.person(r, "zh")
        home = r.choice(countries)
        phone = (home, nm.phone_number(r, home))
        pc = r.choice(("HK", "CN", "HK", "SG"))
        principal = (
            f"{nm.company_stem(r, pc)} {r.choice(('Holdings', 'Investment', 'Technology'))} "
            f"{nm.pick(r, nm.PROFILES[pc].suffixes)}",
            pc,
        )
        fwd_country = r.choice((home, "HK"))
        forwarder = (self.forwarder_name(fwd_country), fwd_country)
        g.extra["officers"] = [f"{officer[1]} {officer[0]}"]
        g.extra["shared"] = {"phones": [nm.format_phone(r, phone[0], phone[1], noisy=False)]}
        g.extra["payers"] = [{"name": principal[0], "country": principal[1]}]
        g.extra["forwarders"] = [{"name": forwarder[0], "country": forwarder[1]}]
        kinds = ("officer", "phone", "payer", "forwarder")
        # What every member shares (the principal's phone, payments or forwarder); a director,
        # written with the registry's noise, and the other ties are extra.
        anchor = r.choice(kinds[1:])
        for _ in range(n):
            country = r.choice(countries)
            sig = ["PRE_DEADLINE_SURGE"]
            new = r.random() < 0.5
            founded = (
                lo - dt.timedelta(days=r.randint(30, 300))
                if new
                else random_date(r, dt.date(2008, 1, 1), dt.date(2021, 1, 1))
            )
            if new:
                sig.append("NEW_ENTITY_LARGE_ORDER")
            p = make_party(r, country, "cloud", founded=founded)
            links = [anchor, *(k for k in kinds if k != anchor and r.random() < 0.3)]
            if "officer" in links:
                p.officers = nm.format_person(r, officer[0], officer[1], noisy=True)
                sig.append("SHARED_OFFICER")
            if "phone" in links:
                p.phone = nm.format_phone(r, phone[0], phone[1], noisy=True)
                sig.append("SHARED_PHONE")
            idx = self.add_party(p)
            g.members.append((idx, "consignee", sig))
            early = max(WORLD_START, founded + dt.timedelta(days=14))
            for _ in range(r.randint(0, 2) if early < lo - dt.timedelta(days=30) else 0):
                on = random_date(r, early, lo - dt.timedelta(days=30))
                self.line(
                    g,
                    idx,
                    on,
                    self.item_on(on, SERVER_ITEMS),
                    8 * r.randint(1, 4),
                    server=True,
                    end_use="datacenter",
                )
            n_lines = r.randint(8, 25)
            for k in range(n_lines):
                on = random_date(r, lo, hi)
                fwd = -1
                # The principal's forwarder and payment show on some lines, at least on one.
                if "forwarder" in links and (k == 0 or r.random() < 0.5):
                    fwd = self.inter(*forwarder)
                elif r.random() < 0.25:
                    fwd = self.inter(self.forwarder_name(country), country)
                payer = -1
                if "payer" in links and (k == 0 or r.random() < 0.6):
                    payer = self.payer(*principal)
                self.line(
                    g,
                    idx,
                    on,
                    self.item_on(on, SERVER_ITEMS),
                    8 * r.randint(4, 40),
                    server=True,
                    end_use=r.choice(("datacenter", "storage", "resale")),
                    inter=fwd,
                    payer=payer,
                )
            if "payer" in links:
                sig.append("PAYER_MISMATCH")
            if "forwarder" in links:
                sig.append("FORWARDER_CONSIGNEE")
        return g

    def hidden_tier3(self) -> Group:
        """Subsidiaries that declare a local headquarters while their parent sits in China/HK."""
        r = self.r
        pc = r.choice(("CN", "CN", "HK"))
        stem = nm.company_stem(r, pc)
        parent = make_party(
            r,
            pc,
            "enterprise",
            stem=stem,
            founded=random_date(r, dt.date(1998, 1, 1), dt.date(2016, 1, 1)),
        )
        parent_officers = [nm.person(r, "zh" if pc == "CN" else "hk") for _ in range(3)]
        parent_phone = "".join(ch for ch in parent.phone if ch.isdigit()).removeprefix("00")
        parent_phone = parent_phone.removeprefix(str(nm.PROFILES[pc].phone_cc))
        parent.officers = "; ".join(nm.format_person(r, s, g_, False) for s, g_ in parent_officers)
        pidx = self.add_party(parent)
        n = r.randint(1, 3)
        g = self.group(
            "hidden_tier3_hq",
            True,
            f"{n} subsidiaries of {parent.name} ({pc}) declare a local headquarters and buy "
            "3A090.a chips that their Tier 3 parent could not",
            ["HQ_IN_TIER3"],
        )
        g.extra["parent"] = {"party": pidx, "name": parent.name, "country": pc}
        g.members.append((pidx, "parent", ["HQ_IN_TIER3"]))
        # The parent buys China-market parts openly, so it is visible in the same data.
        for _ in range(r.randint(2, 6)):
            on = random_date(r, WORLD_START, dt.date(2025, 4, 10))
            self.line(
                g,
                pidx,
                on,
                r.choice(("H20", "L20", "L2")),
                r.randint(8, 400),
                server=True,
                end_use=r.choice(("datacenter", "inference")),
            )
        countries = ("SG", "MY", "IN", "AE", "JP", "TH", "ID", "MX")
        start = random_date(r, dt.date(2025, 1, 20), dt.date(2026, 6, 30))
        for _ in range(n):
            country = r.choice(countries)
            clues = [
                c for c in ("officer", "phone", "domain", "payer", "name") if r.random() < 0.45
            ]
            if not clues:
                clues = [r.choice(("officer", "phone", "domain", "payer", "name"))]
            word = r.choice(("Technology", "Cloud", "Digital", "Computing"))
            s_stem = stem if "name" in clues else nm.company_stem(r, country)
            p = make_party(
                r,
                country,
                "enterprise",
                stem=s_stem,
                word=word,
                founded=start - dt.timedelta(days=r.randint(60, 900)),
            )
            if "name" in clues:
                cname = COUNTRY_BY_CODE[country].name
                p.name = nm.company_name(
                    stem, f"{word} ({cname})", nm.pick(r, nm.PROFILES[country].suffixes)
                )
            declared = r.random() < 0.15
            p.hq_country = pc if declared else country
            sig = ["HQ_IN_TIER3", *("CLUE_" + c.upper() for c in clues)]
            if declared:
                sig.append("HQ_DECLARED")
            if "officer" in clues:
                s, g_ = r.choice(parent_officers)
                p.officers = "; ".join([nm.format_person(r, s, g_, noisy=True), p.officers])
            if "phone" in clues:
                # The parent's own number, as a subsidiary with no local switchboard lists it
                # (written in another format); a random number in the parent's country would
                # say "Tier 3" but not whose subsidiary it is.
                p.phone = nm.format_phone(r, pc, parent_phone, noisy=True)
            if "domain" in clues:
                p.email = f"{r.choice(('it', 'purchasing', 'ops'))}@{parent.email.split('@')[1]}"
                p.website = ""
            idx = self.add_party(p)
            g.members.append((idx, "subsidiary", sig))
            for _ in range(r.randint(2, 8)):
                on = random_date(r, start, min(start + dt.timedelta(days=300), WORLD_END))
                item = self.item_on(on, HIGH_END)
                payer = self.payer(parent.name, pc) if "payer" in clues else -1
                tier = COUNTRY_BY_CODE[country].tier
                auth = self.auth("AIA" if tier == 1 else "LPP") if r.random() < 0.5 else -1
                self.line(
                    g,
                    idx,
                    on,
                    item,
                    r.choice((8, 16, 32, 64, 128, 256)),
                    server=True,
                    end_use=r.choice(("datacenter", "training", "inference")),
                    payer=payer,
                    auth=auth,
                )
        return g

    # --- look-alikes ---------------------------------------------------------------------------

    def corporate_group(self) -> Group:
        """A Tier 1 multinational's subsidiaries: shared domain, officers and payer, all legal."""
        r = self.r
        hq = r.choice(("US", "JP", "KR", "GB", "DE", "FR"))
        stem = nm.company_stem(r, hq if hq in nm.PROFILES else "US")
        word = r.choice(("Cloud", "Compute", "Digital Infrastructure", "AI Cloud"))
        domain = nm.domain_for(stem, word, hq)
        directors = [nm.person(r, nm.PROFILES[hq].people) for _ in range(2)]
        parent_name = f"{stem} {word} {nm.pick(r, nm.PROFILES[hq].suffixes)}"
        countries = r.sample(
            ("IN", "SG", "MY", "IL", "PL", "BR", "MX", "AE", "SA", "TH"), k=r.randint(3, 6)
        )
        g = self.group(
            "corporate_group",
            False,
            f"Subsidiaries of {parent_name} ({hq}) share a domain, directors and a parent payer; "
            "they buy under licenses or a VEU authorization",
            ["SHARED_IDENTIFIERS", "PAYER_MISMATCH"],
        )
        veu = f"UVEU:{stem[:3].upper()}{r.randint(100, 999)}" if r.random() < 0.5 else None
        for country in countries:
            cname = COUNTRY_BY_CODE[country].name
            p = make_party(
                r,
                country,
                "cloud",
                stem=stem,
                word=word,
                founded=random_date(r, dt.date(2005, 1, 1), dt.date(2022, 1, 1)),
            )
            p.name = nm.company_name(
                stem, f"{word} {cname}", nm.pick(r, nm.PROFILES[country].suffixes)
            )
            p.email = f"procurement.{country.lower()}@{domain}"
            p.website = f"https://www.{domain}/{country.lower()}"
            p.hq_country = hq
            p.officers = "; ".join(
                [*(nm.format_person(r, s, g_, False) for s, g_ in directors), p.officers]
            )
            p.payer_alt_name = parent_name
            p.payer_alt_country = hq
            p.auth_default = veu
            p.weight = 30.0
            idx = self.add_party(p, background=True)
            g.members.append((idx, "subsidiary", ["SHARED_IDENTIFIERS"]))
        return g

    def similar_names(self, stems: list[str]) -> Group:
        """Unrelated legitimate companies whose names resemble planted shells."""
        r = self.r
        g = self.group(
            "similar_name",
            False,
            "Legitimate companies whose names resemble planted shells; nothing else is shared",
            ["SIMILAR_NAME"],
        )
        for stem in stems:
            country = r.choice(("TW", "JP", "DE", "IN", "SG", "MY", "KR", "GB", "AU"))
            seg = r.choice(("enterprise", "distributor", "smb"))
            word = r.choice(("Technology", "Tech", "Trading", "Digital", "Data", "Systems"))
            p = make_party(r, country, seg, stem=nm.stem_variant(r, stem), word=word)
            p.weight = 3.0
            idx = self.add_party(p, background=True)
            g.members.append((idx, "lookalike", ["SIMILAR_NAME"]))
        return g

    def legit_burst(self, party: int, kind: str, lo: dt.date, hi: dt.date, n: int) -> Group:
        """Extra orders from an established buyer in a short window (a cluster build-out)."""
        r = self.r
        p = self.book.parties[party]
        g = self.group(
            kind,
            False,
            f"{p.name} ({p.country}) builds out a cluster: {n} orders between "
            f"{lo.isoformat()} and {hi.isoformat()}",
            ["LEGIT_BURST"],
        )
        if kind == "legit_pre_deadline_buyer":
            g.summary += ", before the compliance date, and keeps buying after it"
            g.signals = ["PRE_DEADLINE_SURGE"]
        g.members.append((party, "buyer", list(g.signals)))
        for _ in range(n):
            on = random_date(r, lo, hi)
            self.line(
                g,
                party,
                on,
                self.item_on(on, SERVER_ITEMS),
                8 * r.randint(2, 32),
                server=True,
                end_use=r.choice(("datacenter", "training", "inference")),
                auth=self.auth(p.auth_default) if p.auth_default else -1,
            )
        return g

    def lpp_heavy_user(self) -> Group:
        """One established Tier 2 company that uses most of its LPP allowance, alone and lawfully."""
        r = self.r
        country = r.choice(("IN", "IL", "PL", "MX", "BR", "SG", "MY", "TR", "CH", "PT"))
        p = make_party(
            r,
            country,
            r.choice(("enterprise", "cloud", "research")),
            founded=random_date(r, dt.date(1990, 1, 1), dt.date(2018, 1, 1)),
        )
        idx = self.add_party(p)
        year = r.choice((2025, 2026))
        lo = max(dt.date(year, 1, 5), COMPLIANCE_DATE + dt.timedelta(days=1))
        share = r.uniform(0.6, 0.95)
        g = self.group(
            "lpp_heavy_user",
            False,
            f"{p.name} ({country}) takes {share:.0%} of its {year} LPP allowance in a few "
            "lawful orders; no other party is involved",
            ["NEAR_LPP_LIMIT"],
        )
        g.members.append((idx, "buyer", ["NEAR_LPP_LIMIT"]))
        n = r.randint(3, 10)
        cuts = sorted(r.random() for _ in range(n - 1))
        shares = [b - a for a, b in zip([0.0, *cuts], [*cuts, 1.0], strict=True)]
        item = r.choice(("H100-SXM5", "H200", "L40S", "MI300X"))
        for part in shares:
            on = random_date(r, lo, dt.date(year, 12, 20))
            gpus = int(self.lpp_limit[year] * share * part // ITEM_BY_ID[item].tpp)
            if gpus >= 1:
                self.line(g, idx, on, item, gpus, server=r.random() < 0.5,
                          end_use=r.choice(("training", "inference", "research")),
                          payer=PAYER_SELF, auth=self.auth("LPP"))  # fmt: skip
        return g

    def new_big_buyer(self) -> Group:
        """A young, well-funded AI lab in a Tier 1 country buying big: new, large, legitimate."""
        r = self.r
        country = r.choice(("FR", "GB", "JP", "DE", "KR", "CA", "SE"))
        p = make_party(
            r,
            country,
            "cloud",
            word=r.choice(("AI", "Labs", "Intelligence")),
            founded=random_date(r, dt.date(2023, 6, 1), dt.date(2024, 9, 1)),
        )
        p.weight = 20.0
        idx = self.add_party(p, background=True)
        g = self.group(
            "new_big_buyer",
            False,
            f"{p.name}, founded {p.founded}, buys large clusters under AIA",
            ["NEW_ENTITY_LARGE_ORDER"],
        )
        g.members.append((idx, "buyer", ["NEW_ENTITY_LARGE_ORDER"]))
        for _ in range(r.randint(2, 5)):
            on = random_date(r, EFFECTIVE_DATE, WORLD_END)
            self.line(
                g,
                idx,
                on,
                self.item_on(on, SERVER_ITEMS),
                8 * r.randint(32, 256),
                server=True,
                end_use="training",
                auth=self.auth("AIA"),
            )
        return g


def plant(
    r: random.Random,
    book: PartyBook,
    lpp_limit: dict[int, int],
    counts: dict[str, int],
) -> Planter:
    """Plant `counts[kind]` schemes of each kind, interleaved so any prefix has variety."""
    pl = Planter(r, book, LineBuffer(), lpp_limit)
    kinds = {
        "structuring": pl.structuring,
        "transshipment": pl.transshipment,
        "front": pl.front,
        "surge": pl.surge,
        "hidden_tier3_hq": pl.hidden_tier3,
    }
    left = dict(counts)
    while any(v > 0 for v in left.values()):
        for kind, fn in kinds.items():
            if left.get(kind, 0) > 0:
                fn()
                left[kind] -= 1
    return pl


def plant_lookalikes(pl: Planter, bg: list[int], counts: dict[str, int]) -> None:
    """Add legitimate look-alikes; `bg` are background party indices to draw established buyers."""
    r = pl.r
    for _ in range(counts.get("corporate_group", 0)):
        pl.corporate_group()
    stems: list[str] = []
    for g in pl.groups:
        if g.is_scheme:
            for idx, _, _ in g.members[:2]:
                words = [
                    w
                    for w in pl.book.parties[idx].name.split()
                    if w not in nm.PREFIX_FORMS and w not in DISAMBIGUATE
                ]
                if words:
                    stems.append(words[0])
    n_sim = counts.get("similar_name", 0)
    if stems and n_sim:
        pl.similar_names(stems[:n_sim])
    for _ in range(counts.get("new_big_buyer", 0)):
        pl.new_big_buyer()
    for _ in range(counts.get("lpp_heavy_user", 0)):
        pl.lpp_heavy_user()
    clouds = [i for i in bg if pl.book.parties[i].segment == "cloud"]
    my = [i for i in clouds if pl.book.parties[i].country in ("MY", "SG", "TH")]
    for _ in range(counts.get("legit_burst", 0)):
        if not clouds:
            break
        party = r.choice(clouds)
        lo = random_date(r, WORLD_START, WORLD_END - dt.timedelta(days=30))
        if abs((lo - COMPLIANCE_DATE).days) < 100:
            lo = lo + dt.timedelta(days=200)
        pl.legit_burst(
            party, "legit_burst", lo, lo + dt.timedelta(days=r.randint(7, 21)), r.randint(5, 15)
        )
    for _ in range(counts.get("legit_pre_deadline_buyer", 0)):
        if not my:
            break
        party = r.choice(my)
        pl.legit_burst(
            party,
            "legit_pre_deadline_buyer",
            dt.date(2025, 2, 1),
            COMPLIANCE_DATE + dt.timedelta(days=120),
            r.randint(8, 20),
        )


def describe_established(
    pl: Planter,
    bg: list[int],
    top: list[int],
    forwarder_users: list[int],
    free_mail: list[int],
) -> None:
    """Record background parties that look like they could be flagged but are legitimate."""
    if top:
        g = pl.group(
            "big_buyer", False, "The busiest legitimate buyers: many large orders", ["MANY_ORDERS"]
        )
        g.members.extend((i, "buyer", ["MANY_ORDERS"]) for i in top)
    hubs = [
        i
        for i in bg
        if pl.book.parties[i].segment == "distributor"
        and COUNTRY_BY_CODE[pl.book.parties[i].country].hub
        and (pl.book.parties[i].founded or WORLD_START) < dt.date(2013, 1, 1)
    ]
    if hubs:
        g = pl.group(
            "hub_distributor",
            False,
            "Long-established distributors in hub countries; they resell and sometimes "
            "use forwarders",
            ["TRANSSHIPMENT_HUB"],
        )
        g.members.extend((i, "distributor", ["TRANSSHIPMENT_HUB"]) for i in hubs[:25])
    if forwarder_users:
        g = pl.group(
            "forwarder_user",
            False,
            "Legitimate buyers that occasionally ship through a freight forwarder",
            ["FORWARDER_CONSIGNEE"],
        )
        g.members.extend((i, "buyer", ["FORWARDER_CONSIGNEE"]) for i in forwarder_users)
    if free_mail:
        g = pl.group(
            "free_mail_buyer",
            False,
            "Small legitimate buyers that use a free-mail address",
            ["FREE_MAIL"],
        )
        g.members.extend((i, "buyer", ["FREE_MAIL"]) for i in free_mail)


def lpp_destination(country: str) -> bool:
    return country in LPP_DESTINATIONS
