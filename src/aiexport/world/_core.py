"""Order lines in columnar form, and the vectorised background sampler.

An order line is first held as a handful of numpy columns of small integers (`Lines`): the day,
the consignee's index in the `PartyBook`, the item's index in `calibration.ITEMS`, codes for the
end use and exporter, and references into string pools for forwarders, payers and authorities.
Background lines and planted lines share this form, so they can be merged, sorted by date and
turned into contract columns in one vectorised pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aiexport.world.calibration import (
    AUTHORIZATION_GIVEN_SHARE,
    COUNTRIES,
    EFFECTIVE_DATE,
    EXPORTERS,
    FORWARDER_SHARE,
    H20_LICENSE_DATE,
    ITEMS,
    MAX_GPUS_PER_LINE,
    PAYER_GIVEN_SHARE,
    PRICE_NOISE_SD,
    SEGMENTS,
    SERVER_PRICE_FACTOR,
    SERVER_SHARE_SXM,
    VOLUME_DISCOUNT_PER_DECADE,
    WORLD_END,
    WORLD_START,
)

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]

END_USES: tuple[str, ...] = (
    "datacenter",
    "training",
    "inference",
    "development",
    "production",
    "storage",
    "research",
    "resale",
    "unknown",
)
END_USE_CODE = {e: i for i, e in enumerate(END_USES)}
ITEM_CODE = {f.item: i for i, f in enumerate(ITEMS)}
SEG_CODE = {s.name: i for i, s in enumerate(SEGMENTS)}
COUNTRY_CODE = {c.code: i for i, c in enumerate(COUNTRIES)}
N_DAYS = (WORLD_END - WORLD_START).days + 1

PAYER_SELF = -2
PAYER_ALT = -3
AUTH_PARTY_LICENSE = -2
AUTH_PARTY_DEFAULT = -3

ITEM_TPP = np.array([f.tpp for f in ITEMS], dtype=np.int64)
ITEM_PRICE = np.array([f.price_usd for f in ITEMS], dtype=np.float64)
ITEM_DECLINE = np.array([f.decline_per_year for f in ITEMS], dtype=np.float64)
ITEM_SXM = np.array([f.form == "sxm" for f in ITEMS], dtype=np.bool_)
ITEM_SERVER = np.array([max(1, f.server_gpus) for f in ITEMS], dtype=np.int64)
ITEM_LPP = np.array([f.lpp_eligible for f in ITEMS], dtype=np.bool_)
SEG_LOG_MEDIAN = np.log(np.array([s.gpus_median for s in SEGMENTS]))
SEG_SIGMA = np.array([s.gpus_sigma for s in SEGMENTS])
_eu = np.cumsum(
    np.array([[dict(s.end_uses).get(e, 0.0) for e in END_USES] for s in SEGMENTS]), axis=1
)
END_USE_CDF = _eu / _eu[:, -1:]
_ex = np.cumsum([w for _, w in EXPORTERS])
EXPORTER_CDF = _ex / _ex[-1]


def day_of(d: dt.date) -> int:
    return (d - WORLD_START).days


def date_of(day: int) -> dt.date:
    return WORLD_START + dt.timedelta(days=day)


@dataclass
class Lines:
    """A batch of order lines as parallel numpy columns."""

    day: I64
    party: I64
    item: I64
    computer: B
    quantity: I64
    chips: I64
    price: F64
    end_use: I64
    exporter: I64
    inter: I64
    payer: I64
    auth: I64
    tag: I64

    @staticmethod
    def empty() -> Lines:
        z = np.zeros(0, dtype=np.int64)
        return Lines(z, z, z, np.zeros(0, np.bool_), z, z, np.zeros(0), z, z, z, z, z, z)

    def __len__(self) -> int:
        return len(self.day)

    def take(self, idx: I64) -> Lines:
        return Lines(*(getattr(self, f)[idx] for f in _FIELDS))

    @staticmethod
    def concat(parts: list[Lines]) -> Lines:
        return Lines(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = (
    "day",
    "party",
    "item",
    "computer",
    "quantity",
    "chips",
    "price",
    "end_use",
    "exporter",
    "inter",
    "payer",
    "auth",
    "tag",
)


@dataclass
class LineBuffer:
    """Planted order lines, appended one at a time and frozen into `Lines` once."""

    rows: list[tuple[int, ...]] = field(default_factory=list)
    prices: list[float] = field(default_factory=list)

    def add(
        self,
        *,
        day: int,
        party: int,
        item: str,
        computer: bool,
        quantity: int,
        chips: int,
        price: float,
        end_use: str,
        exporter: int,
        inter: int = -1,
        payer: int = -1,
        auth: int = -1,
        tag: int = -1,
    ) -> None:
        self.rows.append(
            (
                day,
                party,
                ITEM_CODE[item],
                int(computer),
                quantity,
                chips,
                END_USE_CODE[end_use],
                exporter,
                inter,
                payer,
                auth,
                tag,
            )
        )
        self.prices.append(round(price, 2))

    def freeze(self) -> Lines:
        if not self.rows:
            return Lines.empty()
        a = np.array(self.rows, dtype=np.int64)
        lines = Lines(
            a[:, 0],
            a[:, 1],
            a[:, 2],
            a[:, 3].astype(np.bool_),
            a[:, 4],
            a[:, 5],
            np.array(self.prices, dtype=np.float64),
            a[:, 6],
            a[:, 7],
            a[:, 8],
            a[:, 9],
            a[:, 10],
            a[:, 11],
        )
        return lines.take(np.argsort(lines.day, kind="stable"))


# --- calibration as arrays -------------------------------------------------------------------


def day_weights() -> F64:
    """Relative order volume per day: compound growth, quiet weekends."""
    from aiexport.world.calibration import ANNUAL_GROWTH, WEEKEND_FACTOR

    days = np.arange(N_DAYS)
    growth = (1.0 + ANNUAL_GROWTH) ** (days / 365.25)
    weekday = (np.arange(N_DAYS) + WORLD_START.weekday()) % 7
    return np.asarray(growth * np.where(weekday >= 5, WEEKEND_FACTOR, 1.0), dtype=np.float64)


def month_index(day: I64) -> I64:
    """Months since WORLD_START for each day index."""
    months = np.array(
        [
            (date_of(d).year - WORLD_START.year) * 12 + date_of(d).month - WORLD_START.month
            for d in range(N_DAYS)
        ],
        dtype=np.int64,
    )
    return months[day]


N_MONTHS = int(month_index(np.array([N_DAYS - 1]))[0]) + 1


def item_weights(on: dt.date, china: bool) -> F64:
    """Relative share of each item among background lines on a date (calibration.ITEMS)."""
    years = (on - WORLD_START).days / 365.25
    w = np.zeros(len(ITEMS))
    for i, f in enumerate(ITEMS):
        if f.china_sku != china or f.launch > on:
            continue
        if f.item == "H20" and on >= H20_LICENSE_DATE:
            continue
        w[i] = f.weight * max(0.1, (1.0 - 2.0 * f.decline_per_year)) ** years
    return np.asarray(w / w.sum(), dtype=np.float64)


def _item_table() -> F64:
    """Item probabilities per (month, china) — shape (N_MONTHS * 2, n_items)."""
    out = np.zeros((N_MONTHS * 2, len(ITEMS)))
    for m in range(N_MONTHS):
        y, mo = divmod(WORLD_START.month - 1 + m, 12)
        on = dt.date(WORLD_START.year + y, mo + 1, 15)
        out[2 * m] = item_weights(on, False)
        out[2 * m + 1] = item_weights(on, True)
    return out


def unit_price(
    nrng: np.random.Generator, item: I64, day: I64, computer: B, chips: I64, gpus: I64
) -> F64:
    years = day / 365.25
    base = ITEM_PRICE[item] * np.clip(1.0 - ITEM_DECLINE[item] * years, 0.4, None)
    noise = np.exp(nrng.normal(0.0, PRICE_NOISE_SD, size=len(item)))
    disc = 1.0 - VOLUME_DISCOUNT_PER_DECADE * np.log10(np.maximum(gpus, 1))
    per_unit = base * noise * disc * np.where(computer, chips * SERVER_PRICE_FACTOR, 1.0)
    return np.asarray(np.round(per_unit, 2), dtype=np.float64)


@dataclass
class Background:
    """Everything the background sampler needs, as arrays indexed by party or code."""

    party_index: I64
    cdf: F64
    party_seg: I64
    party_china: B
    party_tier: I64
    party_country: I64
    party_fwd_rate: F64
    party_has_alt: B
    party_has_default: B
    fwd_start: I64
    fwd_count: I64
    item_cdf: F64 = field(default_factory=lambda: np.cumsum(_item_table(), axis=1))
    months: I64 = field(default_factory=lambda: month_index(np.arange(N_DAYS)))

    def sample(self, nrng: np.random.Generator, day: I64) -> Lines:
        n = len(day)
        pick = np.searchsorted(self.cdf, nrng.random(n) * self.cdf[-1], side="right")
        pick = np.minimum(pick, len(self.party_index) - 1)
        party = self.party_index[pick]
        seg = self.party_seg[pick]
        china = self.party_china[pick]

        item = np.zeros(n, dtype=np.int64)
        key = self.months[day] * 2 + china.astype(np.int64)
        u = nrng.random(n)
        for k in np.unique(key).tolist():
            mask = key == k
            item[mask] = np.searchsorted(self.item_cdf[k], u[mask], side="right")
        item = np.minimum(item, len(ITEMS) - 1)

        gpus = np.ceil(np.exp(nrng.normal(SEG_LOG_MEDIAN[seg], SEG_SIGMA[seg]))).astype(np.int64)
        gpus = np.clip(gpus, 1, MAX_GPUS_PER_LINE)
        computer = ITEM_SXM[item] & (gpus >= 4) & (nrng.random(n) < SERVER_SHARE_SXM)
        chips = np.where(computer, ITEM_SERVER[item], 1)
        quantity = np.where(computer, np.maximum(1, np.rint(gpus / chips)), gpus).astype(np.int64)
        price = unit_price(nrng, item, day, computer, chips, quantity * chips)

        end_use = (nrng.random(n)[:, None] > END_USE_CDF[seg]).sum(axis=1)
        end_use = np.minimum(end_use, len(END_USES) - 1)

        exporter = np.searchsorted(EXPORTER_CDF, nrng.random(n), side="right")
        exporter = np.minimum(exporter, len(EXPORTERS) - 1)

        ci = self.party_country[pick]
        fwd = nrng.random(n) < np.maximum(FORWARDER_SHARE, self.party_fwd_rate[pick])
        fwd &= self.fwd_count[ci] > 0
        slot = (nrng.random(n) * np.maximum(self.fwd_count[ci], 1)).astype(np.int64)
        inter = np.where(fwd, self.fwd_start[ci] + slot, -1)

        given = nrng.random(n) < PAYER_GIVEN_SHARE
        alt = self.party_has_alt[pick] & (nrng.random(n) < 0.5)
        payer = np.where(given, np.where(alt, PAYER_ALT, PAYER_SELF), -1)

        tier = self.party_tier[pick]
        after = day >= day_of(EFFECTIVE_DATE)
        stated = (nrng.random(n) < AUTHORIZATION_GIVEN_SHARE) & after & ITEM_LPP[item]
        use_default = self.party_has_default[pick] & (nrng.random(n) < 0.8) & after
        auth = np.full(n, -1, dtype=np.int64)
        auth = np.where(stated & (tier == 1), AUTH_AIA, auth)
        small = quantity * chips * ITEM_TPP[item] <= 3_200_000
        auth = np.where(stated & (tier == 2) & small, AUTH_LPP, auth)
        auth = np.where(stated & (tier == 2) & ~small, AUTH_PARTY_LICENSE, auth)
        auth = np.where(stated & (tier == 4), AUTH_PARTY_LICENSE, auth)
        auth = np.where(use_default, AUTH_PARTY_DEFAULT, auth)

        return Lines(
            day.astype(np.int64),
            party,
            item,
            computer,
            quantity,
            chips,
            price,
            end_use.astype(np.int64),
            exporter.astype(np.int64),
            inter,
            payer,
            auth,
            np.full(n, -1, dtype=np.int64),
        )


# Fixed authority codes (indices into the authority pool, which starts with these).
AUTH_FIXED: tuple[str, ...] = ("AIA", "LPP", "ACA", "NAC", "ACM")
AUTH_AIA = 0
AUTH_LPP = 1
